/**
 * The simulator's HTTPS front: authentication (token, ticket + CSRF), permissions, schema rejections
 * with Proxmox's error shape, unknown methods, request log redaction, fault injection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { simClient, type SimClient } from './sim-client.js';
import { generateEd25519KeyPair } from '../src/ssh/keys.js'; // ssh2's generator makes a malformed key ~1 in 256

const realKey = (): string => generateEd25519KeyPair('me@host').publicKeyLine;

let sim: Simulator;
let c: SimClient;

before(async () => {
  sim = await startSimulator({ speed: 0, sshHost: false });
  c = simClient(sim);
});
after(async () => {
  await c.close();
  await sim.close();
});

describe('TLS and auth', () => {
  it('serves a certificate whose SHA-256 fingerprint is the one it reports', async () => {
    assert.match(sim.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    // a client that pins only this certificate as CA connects; the fingerprint is checked on the socket
    const agent = new Agent({ connect: { ca: sim.certPem } });
    try {
      const r = await request(`${sim.url}/api2/json/version`, { dispatcher: agent, headers: { authorization: c.tokenAuth } });
      assert.equal(r.statusCode, 200);
      await r.body.text();
    } finally {
      await agent.close();
    }
  });

  it('accepts the API token and rejects a wrong secret with 401 and no body', async () => {
    const good = await c.call('GET', '/version');
    assert.equal(good.status, 200);
    assert.equal((good.body!.data as { version: string }).version, '8.4.1');
    const bad = await c.call('GET', '/version', undefined, {
      authorization: `PVEAPIToken=${sim.token.tokenId}=00000000-0000-0000-0000-000000000000`,
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.raw, '');
  });

  it('says "No ticket" without credentials', async () => {
    const r = await c.call('GET', '/nodes', undefined, { authorization: '' });
    assert.equal(r.status, 401);
  });

  it('issues a ticket for root@pam and requires the CSRF token on writes', async () => {
    const t = await c.call('POST', '/access/ticket', { username: sim.login.username, password: sim.login.password }, { authorization: '' });
    assert.equal(t.status, 200);
    const { ticket, CSRFPreventionToken } = t.body!.data as { ticket: string; CSRFPreventionToken: string };
    assert.match(ticket, /^PVE:root@pam:[0-9A-F]{8}::/);
    const cookie = `PVEAuthCookie=${encodeURIComponent(ticket)}`;
    const read = await c.call('GET', '/nodes', undefined, { authorization: '', cookie });
    assert.equal(read.status, 200);
    assert.equal((read.body!.data as unknown[]).length, 1);
    const noCsrf = await c.call('PUT', '/storage/local', { content: 'iso,vztmpl,backup,snippets,import' }, { authorization: '', cookie });
    assert.equal(noCsrf.status, 401);
    const withCsrf = await c.call(
      'PUT',
      '/storage/local',
      { content: 'iso,vztmpl,backup,snippets,import' },
      { authorization: '', cookie, csrfpreventiontoken: CSRFPreventionToken },
    );
    assert.equal(withCsrf.status, 200);
  });

  it('refuses a wrong password with 401 "authentication failure"', async () => {
    const r = await c.call('POST', '/access/ticket', { username: 'root@pam', password: 'wrong' }, { authorization: '' });
    assert.equal(r.status, 401);
    assert.equal(r.body!.message, 'authentication failure\n');
  });

  it('authenticates before routing: an unknown path without credentials is 401, with them 501', async () => {
    assert.equal((await c.call('GET', '/nodes/pve1/nonsense', undefined, { authorization: '' })).status, 401);
    const r = await c.call('GET', '/nodes/pve1/nonsense');
    assert.equal(r.status, 501);
    assert.equal(r.body!.message, "Method 'GET /nodes/pve1/nonsense' not implemented\n");
  });

  it('gives 403 "Permission check failed (path, priv)" to a token without privileges, and hides objects from lists', async () => {
    const limited = { authorization: `PVEAPIToken=${sim.limitedToken.tokenId}=${sim.limitedToken.tokenSecret}` };
    const r = await c.call('POST', '/nodes/pve1/qemu/100/template', {}, limited);
    assert.equal(r.status, 403);
    assert.equal(r.body!.message, 'Permission check failed (/vms/100, VM.Allocate)\n');
    const list = await c.call('GET', '/cluster/resources', undefined, limited);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body!.data, []);
  });

  it('refuses root-only options (args, non-socket serial, import-from path) for tokens', async () => {
    const args = await c.call('POST', '/nodes/pve1/qemu', { vmid: 150, args: '-fw_cfg name=opt/x,file=/tmp/x' });
    assert.equal(args.status, 500);
    assert.equal(args.body!.message, "only root can set 'args' config\n");
    const serial = await c.call('POST', '/nodes/pve1/qemu', { vmid: 150, serial0: '/dev/ttyS0' });
    assert.equal(serial.status, 500);
    assert.equal(serial.body!.message, "only root can set 'serial0' config for real devices\n");
    const path = await c.call('POST', '/nodes/pve1/qemu', { vmid: 150, scsi0: 'local-lvm:0,import-from=/var/lib/vz/x.qcow2' });
    assert.equal(path.status, 403);
    assert.match(path.body!.message!, /Only root can pass arbitrary filesystem paths/);
  });
});

describe('schema validation (Proxmox error shape)', () => {
  const rejects = async (
    method: string,
    path: string,
    params: Record<string, string | number>,
    field: string,
    message: string | RegExp,
  ) => {
    const r = await c.call(method, path, params);
    assert.equal(r.status, 400, r.raw);
    assert.equal(r.body!.data, null);
    assert.equal(r.body!.message, 'Parameter verification failed.\n');
    const got = r.body!.errors![field];
    assert.ok(got, `no error for ${field}: ${r.raw}`);
    if (typeof message === 'string') assert.equal(got, message);
    else assert.match(got, message);
  };

  it('unknown parameter', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, bogus: 1 },
      'bogus',
      'property is not defined in schema and the schema does not allow additional properties',
    ));
  it('missing required parameter', () =>
    rejects('POST', '/nodes/pve1/qemu/100/clone', {}, 'newid', 'property is missing and it is not optional'));
  it('bad enum', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, ostype: 'linux' },
      'ostype',
      "value 'linux' does not have a value in the enumeration 'other, wxp, w2k, w2k3, w2k8, wvista, win7, win8, win10, win11, l24, l26, solaris'",
    ));
  it('number below minimum', () =>
    rejects('POST', '/nodes/pve1/qemu', { vmid: 200, cores: 0 }, 'cores', 'value must have a minimum value of 1'));
  it('vmid below 100', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 99 },
      'vmid',
      /^invalid format - value does not look like a valid VM ID|value must have a minimum value of 100/,
    ));
  it('pattern', () =>
    rejects('PUT', '/nodes/pve1/qemu/100/resize', { disk: 'scsi0', size: '20GB' }, 'size', 'value does not match the regex pattern'));
  it('boolean given as "true"', () =>
    rejects('POST', '/nodes/pve1/qemu/100/clone', { newid: 101, full: 'true' }, 'full', "type check ('boolean') failed - got 'true'"));
  it('unknown sub-key of a property string', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, net0: 'virtio,bridge=vmbr0,speed=10' },
      'net0',
      'invalid format - invalid key in comma-separated list property: speed\n',
    ));
  it('bad enum inside a property string', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, scsi0: 'local-lvm:8,discard=yes' },
      'scsi0',
      /^invalid format - format error\nscsi0\.discard: value 'yes' does not have a value in the enumeration 'ignore, on'\n$/,
    ));
  it('indexed parameter beyond its range', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, scsi31: 'local-lvm:8' },
      'scsi31',
      'property is not defined in schema and the schema does not allow additional properties',
    ));
  it('sshkeys must be URL-encoded', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, sshkeys: 'ssh-ed25519 AAAA me' },
      'sshkeys',
      'invalid format - invalid urlencoded string: ssh-ed25519 AAAA me\n',
    ));
  it('checksum requires checksum-algorithm', () =>
    rejects(
      'POST',
      '/nodes/pve1/storage/local/download-url',
      { url: 'http://127.0.0.1/x.qcow2', content: 'import', filename: 'x.qcow2', checksum: 'ab' },
      'checksum-algorithm',
      "missing property - 'checksum' requires this property",
    ));
  it('sshkeys must be valid public keys (ssh-keygen -l)', async () => {
    const bad = await c.call('POST', '/nodes/pve1/qemu', {
      vmid: 201,
      sshkeys: encodeURIComponent(`${realKey()}\nssh-ed25519 AAAAC3Nza me`),
    });
    assert.equal(bad.status, 500);
    assert.equal(bad.body!.message, 'SSH public key validation error\n');
  });
  it('import-from without the <storage>:0 syntax', () =>
    rejects(
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 200, scsi0: 'local-lvm:8,import-from=local:import/x.qcow2' },
      'scsi0',
      /'import-from' requires special syntax/,
    ));

  it('accepts the template create call of the brief', async () => {
    // validation passes; the call then fails only because the image was never downloaded
    const r = await c.call('POST', '/nodes/pve1/qemu', {
      vmid: 9000,
      name: 'flatcar-4459-2-1',
      ostype: 'l26',
      cpu: 'host',
      cores: 2,
      memory: 4096,
      scsihw: 'virtio-scsi-single',
      scsi0: 'local-lvm:0,import-from=local:import/flatcar-4459.2.1-proxmoxve.qcow2,discard=on,iothread=1',
      ide2: 'local-lvm:cloudinit',
      boot: 'order=scsi0',
      serial0: 'socket',
      vga: 'serial0',
      agent: 'enabled=1',
      net0: 'virtio,bridge=vmbr0',
      ipconfig0: 'ip=10.0.0.11/24,gw=10.0.0.1',
      sshkeys: encodeURIComponent(realKey()),
    });
    assert.equal(r.status, 500, r.raw);
    assert.equal(r.body!.message, "volume 'local:import/flatcar-4459.2.1-proxmoxve.qcow2' does not exist\n");
  });
});

describe('routing', () => {
  it('answers 501 for a path the API does not have', async () => {
    const r = await c.call('GET', '/nodes/pve1/nonsense');
    assert.equal(r.status, 501);
    assert.match(r.body!.message!, /not implemented/);
  });
  it('answers 501 "not implemented in simulator" for a real method it does not simulate', async () => {
    const r = await c.call('GET', '/cluster/ha/resources');
    assert.equal(r.status, 501);
    assert.match(r.body!.message!, /Method not implemented in simulator: GET \/cluster\/ha\/resources/);
  });
  it('fails the host lookup for an unknown node', async () => {
    const r = await c.call('GET', '/nodes/pve9/qemu');
    assert.equal(r.status, 500);
    assert.match(r.body!.message!, /^hostname lookup 'pve9' failed/);
  });
  it('knows a task only on its own node', async () => {
    const bad = await c.call('GET', '/nodes/pve1/tasks/nonsense/status');
    assert.equal(bad.status, 400);
    assert.equal(bad.body!.errors!.upid, 'unable to parse worker upid');
    const other = await c.call(
      'GET',
      `/nodes/pve1/tasks/${encodeURIComponent('UPID:pve2:00001234:00005678:6B092B81:qmstart:100:root@pam:')}/status`,
    );
    assert.equal(other.status, 400);
    assert.equal(other.body!.errors!.upid, 'no such task');
  });
});

describe('inspection and faults', () => {
  it('logs requests in order without secrets', async () => {
    await c.call('POST', '/access/ticket', { username: 'root@pam', password: 'hunter2-secret' }, { authorization: '' });
    const log = sim.requests();
    const last = log[log.length - 1]!;
    assert.equal(last.method, 'POST');
    assert.equal(last.path, '/access/ticket');
    assert.equal(last.status, 401);
    assert.equal(last.params.password, '<redacted>');
    const everything = JSON.stringify(log);
    assert.ok(!everything.includes('hunter2-secret'));
    assert.ok(!everything.includes(sim.token.tokenSecret));
    assert.ok(!everything.includes(sim.login.password));
    // also over HTTP
    const agent = new Agent({ connect: { ca: sim.certPem } });
    try {
      const r = await request(`${sim.url}/_sim/requests`, { dispatcher: agent });
      const text = await r.body.text();
      assert.ok(!text.includes('hunter2-secret'));
      assert.ok(JSON.parse(text).length >= log.length);
    } finally {
      await agent.close();
    }
  });

  it('fails the Nth matching request with the given status and message', async () => {
    sim.faults.add('GET /nodes/*/storage#2=503:storage is busy');
    assert.equal((await c.call('GET', '/nodes/pve1/storage')).status, 200);
    const second = await c.call('GET', '/nodes/pve1/storage');
    assert.equal(second.status, 503);
    assert.equal(second.body!.message, 'storage is busy\n');
    assert.equal((await c.call('GET', '/nodes/pve1/storage')).status, 200);
    sim.faults.clear();
  });

  it('drops the connection when asked', async () => {
    sim.faults.dropConnection({ method: 'GET', path: '/version', nth: 1 });
    await assert.rejects(c.call('GET', '/version'));
    assert.equal((await c.call('GET', '/version')).status, 200);
    sim.faults.clear();
  });

  it('takes fault specs over POST /_sim/faults', async () => {
    const agent = new Agent({ connect: { ca: sim.certPem } });
    try {
      const r = await request(`${sim.url}/_sim/faults`, {
        method: 'POST',
        dispatcher: agent,
        body: JSON.stringify({ spec: 'GET /cluster/nextid=500:nope' }),
      });
      assert.equal(r.statusCode, 200);
      await r.body.text();
    } finally {
      await agent.close();
    }
    const f = await c.call('GET', '/cluster/nextid');
    assert.equal(f.status, 500);
    assert.equal(f.body!.message, 'nope\n');
    sim.faults.clear();
    assert.equal((await c.call('GET', '/cluster/nextid')).body!.data, '100');
  });
});
