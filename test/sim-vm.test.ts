/**
 * The simulator's Proxmox behaviour: download-url (checksum, no network, version gates), template
 * creation with import-from, linked clones, locks, VMID collisions, start/agent, cloud-init snippets,
 * task faults, resize.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type GuestHooks, type Simulator } from '../src/sim/index.js';
import { simClient, type SimClient } from './sim-client.js';
import { generateEd25519KeyPair } from '../src/ssh/keys.js'; // ssh2's generator makes a malformed key ~1 in 256

/** A qcow2 header announcing an 8 GiB virtual disk. */
function fakeQcow2(virtualSize = 8 * 1024 ** 3): Buffer {
  const b = Buffer.alloc(4096);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(3, 4);
  b.writeBigUInt64BE(BigInt(virtualSize), 24);
  return b;
}

/** Guest hooks whose boots finish only when the test says so. */
function controlledGuests(): GuestHooks & { release(vmid: number): void; booted: Array<{ vmid: number; userData?: string }> } {
  const waiting = new Map<number, () => void>();
  const early = new Set<number>();
  const booted: Array<{ vmid: number; userData?: string }> = [];
  return {
    booted,
    release(vmid) {
      const r = waiting.get(vmid);
      if (r) r();
      else early.add(vmid);
    },
    async boot(vm) {
      if (!early.has(vm.vmid)) await new Promise<void>((r) => waiting.set(vm.vmid, r));
      booted.push({ vmid: vm.vmid, userData: vm.userData });
      return {
        interfaces: [
          {
            name: 'eth0',
            'hardware-address': 'bc:24:11:00:00:01',
            'ip-addresses': [{ 'ip-address': '127.0.10.5', 'ip-address-type': 'ipv4', prefix: 8 }],
          },
        ],
      };
    },
  };
}

const image = fakeQcow2();
const publicKey = generateEd25519KeyPair('me@host').publicKeyLine;
const sha256 = createHash('sha256').update(image).digest('hex');

describe('PVE 8.4 behaviour', () => {
  let sim: Simulator;
  let c: SimClient;
  const guests = controlledGuests();

  before(async () => {
    sim = await startSimulator({ speed: 0.01, sshHost: false, guest: guests });
    c = simClient(sim);
    sim.mirror.put('/stable/amd64-usr/current/flatcar_production_proxmoxve_image.img', image);
  });
  after(async () => {
    await c.close();
    await sim.close();
  });

  const imgUrl = () => `${sim.mirror.url}/stable/amd64-usr/current/flatcar_production_proxmoxve_image.img`;

  it('download-url fetches a loopback URL, verifies the checksum and lists the volume', async () => {
    const t = await c.task('POST', '/nodes/pve1/storage/local/download-url', {
      url: imgUrl(),
      content: 'import',
      filename: 'flatcar-4459.2.1-proxmoxve.qcow2',
      checksum: sha256,
      'checksum-algorithm': 'sha256',
    });
    assert.equal(t.exitstatus, 'OK');
    const vols = await c.ok<Array<{ volid: string; size: number; format: string }>>('GET', '/nodes/pve1/storage/local/content', {
      content: 'import',
    });
    const v = vols.find((x) => x.volid === 'local:import/flatcar-4459.2.1-proxmoxve.qcow2');
    assert.ok(v, JSON.stringify(vols));
    assert.equal(v.size, 8 * 1024 ** 3);
    assert.equal(v.format, 'qcow2');
  });

  it('download-url fails the task on a checksum mismatch, like PVE', async () => {
    const wrong = '0'.repeat(64);
    const t = await c.task('POST', '/nodes/pve1/storage/local/download-url', {
      url: imgUrl(),
      content: 'import',
      filename: 'other.qcow2',
      checksum: wrong,
      'checksum-algorithm': 'sha256',
    });
    assert.equal(t.exitstatus, `checksum mismatch: got '${sha256}' != expect '${wrong}'`);
    const log = await c.ok<Array<{ n: number; t: string }>>('GET', `/nodes/pve1/tasks/${encodeURIComponent(t.upid)}/log`);
    assert.equal(log[log.length - 1]!.t, `TASK ERROR: ${t.exitstatus}`);
    assert.equal(log[0]!.n, 1);
  });

  it('download-url of a non-loopback URL fails like wget without network', async () => {
    const t = await c.task('POST', '/nodes/pve1/storage/local/download-url', {
      url: 'https://stable.release.flatcar-linux.net/amd64-usr/current/flatcar_production_proxmoxve_image.img',
      content: 'import',
      filename: 'f.qcow2',
    });
    assert.match(t.exitstatus!, /^download failed: /);
  });

  it('download-url refuses an import filename with the wrong extension', async () => {
    const r = await c.call('POST', '/nodes/pve1/storage/local/download-url', {
      url: imgUrl(),
      content: 'import',
      filename: 'flatcar_production_proxmoxve_image.img',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body!.errors!.filename, 'invalid filename or wrong extension');
  });

  it('creates a template VM with import-from, converts it, and clones it linked by default', async () => {
    const create = await c.task('POST', '/nodes/pve1/qemu', {
      vmid: 9000,
      name: 'flatcar-4459-2-1',
      ostype: 'l26',
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
    });
    assert.equal(create.exitstatus, 'OK');
    const conf = await c.ok<Record<string, string>>('GET', '/nodes/pve1/qemu/9000/config');
    assert.equal(conf.scsi0, 'local-lvm:vm-9000-disk-0,discard=on,iothread=1,size=8G');
    assert.equal(conf.ide2, 'local-lvm:vm-9000-cloudinit,media=cdrom');
    assert.match(conf.net0!, /^virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr0$/);
    assert.match(conf.digest!, /^[0-9a-f]{40}$/);

    assert.equal((await c.task('POST', '/nodes/pve1/qemu/9000/template')).exitstatus, 'OK');
    const tconf = await c.ok<Record<string, string | number>>('GET', '/nodes/pve1/qemu/9000/config');
    assert.equal(tconf.template, 1);
    assert.equal(tconf.scsi0, 'local-lvm:base-9000-disk-0,discard=on,iothread=1,size=8G');

    const clone = await c.task('POST', '/nodes/pve1/qemu/9000/clone', { newid: 9001, name: 'homelab-server-1' });
    assert.equal(clone.exitstatus, 'OK');
    const cconf = await c.ok<Record<string, string>>('GET', '/nodes/pve1/qemu/9001/config');
    assert.equal(cconf.scsi0, 'local-lvm:base-9000-disk-0/vm-9001-disk-0,discard=on,iothread=1,size=8G');
    assert.equal(cconf.ide2, 'local-lvm:vm-9001-cloudinit,media=cdrom');
    assert.notEqual(cconf.net0, conf.net0, 'a clone gets a new MAC');
    assert.equal(cconf.template, undefined);

    const res = await c.ok<Array<{ vmid: number; template: number; name: string; status: string }>>('GET', '/cluster/resources', {
      type: 'vm',
    });
    assert.deepEqual(
      res.map((r) => [r.vmid, r.template, r.name, r.status]),
      [
        [9000, 1, 'flatcar-4459-2-1', 'stopped'],
        [9001, 0, 'homelab-server-1', 'stopped'],
      ],
    );
  });

  it('refuses VMID collisions, and nextid does not reserve', async () => {
    const r = await c.call('POST', '/nodes/pve1/qemu/9000/clone', { newid: 9001 });
    assert.equal(r.status, 500);
    assert.equal(r.body!.message, 'unable to create VM 9001: config file already exists\n');
    const create = await c.call('POST', '/nodes/pve1/qemu', { vmid: 9000 });
    assert.equal(create.status, 500);
    assert.equal(create.body!.message, "unable to create VM 9000 - VM 9000 already exists on node 'pve1'\n");
    const a = await c.ok<string>('GET', '/cluster/nextid');
    const b = await c.ok<string>('GET', '/cluster/nextid');
    assert.equal(a, '100');
    assert.equal(b, a);
  });

  it('refuses starting a template (task error)', async () => {
    const t = await c.task('POST', '/nodes/pve1/qemu/9000/status/start');
    assert.equal(t.exitstatus, "you can't start a vm if it's a template");
  });

  it('refuses deleting a template that has linked clones', async () => {
    const t = await c.task('DELETE', '/nodes/pve1/qemu/9000');
    assert.equal(t.exitstatus, "base volume 'base-9000-disk-0' is still in use by linked cloned");
  });

  it('resizes with +size, refuses shrinking', async () => {
    assert.equal((await c.task('PUT', '/nodes/pve1/qemu/9001/resize', { disk: 'scsi0', size: '+12G' })).exitstatus, 'OK');
    const conf = await c.ok<Record<string, string>>('GET', '/nodes/pve1/qemu/9001/config');
    assert.match(conf.scsi0!, /,size=20G$/);
    const shrink = await c.call('PUT', '/nodes/pve1/qemu/9001/resize', { disk: 'scsi0', size: '10G' });
    assert.equal(shrink.status, 500);
    assert.equal(shrink.body!.message, 'shrinking disks is not supported\n');
  });

  it('cicustom needs an existing snippet on a storage with snippets content', async () => {
    const missing = await c.call('PUT', '/nodes/pve1/qemu/9001/config', { cicustom: 'user=local:snippets/homelab-server-1.ign' });
    assert.equal(missing.status, 500);
    assert.equal(missing.body!.message, "volume 'local:snippets/homelab-server-1.ign' does not exist\n");
    mkdirSync(join(sim.storageRoot, 'snippets'), { recursive: true });
    writeFileSync(join(sim.storageRoot, 'snippets', 'homelab-server-1.ign'), '{"ignition":{"version":"3.4.0"}}');
    const ok = await c.call('PUT', '/nodes/pve1/qemu/9001/config', {
      cicustom: 'user=local:snippets/homelab-server-1.ign',
      ipconfig0: 'ip=dhcp',
      sshkeys: encodeURIComponent(publicKey),
    });
    assert.equal(ok.status, 200, ok.raw);
    // dump shows what Proxmox generates (the snippet replaces user-data only on the drive)
    const user = await c.ok<string>('GET', '/nodes/pve1/qemu/9001/cloudinit/dump', { type: 'user' });
    assert.match(user, /^#cloud-config\nhostname: homelab-server-1\n/);
    assert.ok(user.includes(`\nssh_authorized_keys:\n  - ${publicKey}\n`), user);
    const net = await c.ok<string>('GET', '/nodes/pve1/qemu/9001/cloudinit/dump', { type: 'network' });
    assert.match(
      net,
      /^version: 1\nconfig:\n    - type: physical\n      name: eth0\n      mac_address: '([0-9a-f]{2}:){5}[0-9a-f]{2}'\n      subnets:\n      - type: dhcp4\n/,
    );
    const meta = await c.ok<string>('GET', '/nodes/pve1/qemu/9001/cloudinit/dump', { type: 'meta' });
    assert.equal(
      meta,
      `instance-id: ${createHash('sha1')
        .update(user + net)
        .digest('hex')}\n`,
    );
  });

  it('a start regenerates the cloud-init drive: a vanished or oversized snippet fails it', async () => {
    const dir = join(sim.storageRoot, 'snippets');
    writeFileSync(join(dir, 'gone.ign'), '{}');
    writeFileSync(join(dir, 'big.ign'), Buffer.alloc(1024 * 1024 + 1, 0x20));
    assert.equal((await c.call('PUT', '/nodes/pve1/qemu/9001/config', { cicustom: 'user=local:snippets/gone.ign' })).status, 200);
    rmSync(join(dir, 'gone.ign'));
    assert.equal((await c.task('POST', '/nodes/pve1/qemu/9001/status/start')).exitstatus, "can't find file 'local:snippets/gone.ign'");
    assert.equal((await c.call('PUT', '/nodes/pve1/qemu/9001/config', { cicustom: 'user=local:snippets/big.ign' })).status, 200);
    assert.equal(
      (await c.task('POST', '/nodes/pve1/qemu/9001/status/start')).exitstatus,
      `file '${join(dir, 'big.ign')}' too long - aborting`,
    );
    assert.equal(
      (await c.call('PUT', '/nodes/pve1/qemu/9001/config', { cicustom: 'user=local:snippets/homelab-server-1.ign' })).status,
      200,
    );
  });

  it('the guest agent answers only after the guest booted', async () => {
    const notRunning = await c.call('GET', '/nodes/pve1/qemu/9001/agent/network-get-interfaces');
    assert.equal(notRunning.body!.message, 'VM 9001 is not running\n');
    assert.equal((await c.task('POST', '/nodes/pve1/qemu/9001/status/start')).exitstatus, 'OK');
    const before = await c.call('GET', '/nodes/pve1/qemu/9001/agent/network-get-interfaces');
    assert.equal(before.status, 500);
    assert.equal(before.body!.message, 'QEMU guest agent is not running\n');
    guests.release(9001);
    let after;
    for (let i = 0; i < 500; i++) {
      after = await c.call('GET', '/nodes/pve1/qemu/9001/agent/network-get-interfaces');
      if (after.status === 200) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(after!.status, 200);
    const result = (after!.body!.data as { result: Array<{ name: string; 'ip-addresses': Array<{ 'ip-address': string }> }> }).result;
    assert.equal(result[0]!['ip-addresses'][0]!['ip-address'], '127.0.10.5');
    assert.equal(guests.booted.find((b) => b.vmid === 9001)?.userData, '{"ignition":{"version":"3.4.0"}}');
    const again = await c.task('POST', '/nodes/pve1/qemu/9001/status/start');
    assert.equal(again.exitstatus, 'VM 9001 already running');
    const status = await c.ok<{ status: string }>('GET', '/nodes/pve1/qemu/9001/status/current');
    assert.equal(status.status, 'running');
  });

  it('a running VM cannot be destroyed; after stop it can', async () => {
    assert.equal((await c.task('DELETE', '/nodes/pve1/qemu/9001')).exitstatus, 'VM 9001 is running - destroy failed');
    assert.equal((await c.task('POST', '/nodes/pve1/qemu/9001/status/stop')).exitstatus, 'OK');
    assert.equal((await c.task('DELETE', '/nodes/pve1/qemu/9001')).exitstatus, 'OK');
    assert.equal((await c.call('GET', '/nodes/pve1/qemu/9001/config')).status, 500);
  });

  it('locks: a clone during template conversion, parallel clones to one VMID, a config change during a clone', async () => {
    const create = await c.task('POST', '/nodes/pve1/qemu', {
      vmid: 9100,
      name: 'tpl2',
      scsi0: 'local-lvm:1',
      ide2: 'local-lvm:cloudinit',
      net0: 'virtio,bridge=vmbr0',
    });
    assert.equal(create.exitstatus, 'OK');
    // pve1 slow: operations take far longer than the (unscaled) lock timeouts
    sim.faults.slowNode('pve1', 30);
    try {
      const upid = await c.ok<string>('POST', '/nodes/pve1/qemu/9100/template');
      // template: 1 is written at once, the disks become base volumes in the worker
      const early = await c.call('POST', '/nodes/pve1/qemu/9100/clone', { newid: 9101 });
      assert.equal(early.status, 500);
      assert.equal(early.body!.message, "Linked clone feature is not supported for drive 'scsi0'\n");
      const again = await c.call('POST', '/nodes/pve1/qemu/9100/template');
      assert.equal(again.status, 500);
      assert.equal(again.body!.message, "can't lock file '/var/lock/qemu-server/lock-9100.conf' - got timeout\n");
      assert.equal((await c.waitTask(upid)).exitstatus, 'OK');

      // two clones to the same new VMID: both pass the early checks; the second worker cannot get the target lock
      const [a, b] = await Promise.all([
        c.ok<string>('POST', '/nodes/pve1/qemu/9100/clone', { newid: 9102, name: 'n2' }),
        c.ok<string>('POST', '/nodes/pve1/qemu/9100/clone', { newid: 9102, name: 'n2b' }),
      ]);
      // the clone target is locked for the whole clone: a config change times out on the lock
      const during = await c.call('PUT', '/nodes/pve1/qemu/9102/config', { memory: 2048 });
      assert.equal(during.status, 500);
      assert.equal(during.body!.message, "can't lock file '/var/lock/qemu-server/lock-9102.conf' - got timeout\n");
      const results = [(await c.waitTask(a)).exitstatus, (await c.waitTask(b)).exitstatus].sort();
      assert.deepEqual(results, ['OK', "can't lock file '/var/lock/qemu-server/lock-9102.conf' - got timeout"]);
    } finally {
      sim.faults.slowNode('pve1', 1);
    }
    assert.equal((await c.call('PUT', '/nodes/pve1/qemu/9102/config', { memory: 2048 })).status, 200);
    assert.equal(
      (await c.call('POST', '/nodes/pve1/qemu/9100/clone', { newid: 9102 })).body!.message,
      'unable to create VM 9102: config file already exists\n',
    );
  });

  it('fails the Nth task of a type when asked, and cleans up the clone', async () => {
    sim.faults.failTask({ type: 'qmclone', nth: 1, message: 'clone failed: storage full' });
    const t = await c.task('POST', '/nodes/pve1/qemu/9100/clone', { newid: 9103 });
    assert.equal(t.exitstatus, 'clone failed: storage full');
    assert.equal((await c.call('GET', '/nodes/pve1/qemu/9103/config')).status, 500);
    assert.equal((await c.task('POST', '/nodes/pve1/qemu/9100/clone', { newid: 9103 })).exitstatus, 'OK');
    sim.faults.clear();
    const listed = await c.ok<Array<{ upid: string; type: string; id: string; status?: string; endtime?: number }>>(
      'GET',
      '/nodes/pve1/tasks',
      { typefilter: 'qmclone', vmid: 9100, source: 'all' },
    );
    assert.ok(listed.length >= 2);
    assert.ok(listed.some((x) => x.status === 'clone failed: storage full' && x.endtime));
    assert.ok(listed.every((x) => x.type === 'qmclone' && x.id === '9100'));
    const errorsOnly = await c.ok<Array<{ status: string }>>('GET', '/nodes/pve1/tasks', { typefilter: 'qmclone', errors: 1 });
    assert.ok(errorsOnly.length >= 1 && errorsOnly.every((x) => x.status !== 'OK'));
    const tasks = sim.tasks().filter((x) => x.type === 'qmclone');
    assert.ok(tasks.every((x) => x.status === 'stopped' && x.endedAt! >= x.startedAt));
    assert.match(tasks[0]!.upid, /^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmclone:9000:root@pam!flatcar-k3s:$/);
  });
});

describe('PVE 8.3 gates', () => {
  let sim: Simulator;
  let c: SimClient;
  before(async () => {
    sim = await startSimulator({ speed: 0, sshHost: false, pveVersion: '8.3.5' });
    c = simClient(sim);
  });
  after(async () => {
    await c.close();
    await sim.close();
  });

  it('download-url does not know content=import before 8.4', async () => {
    const r = await c.call('POST', '/nodes/pve1/storage/local/download-url', {
      url: `${sim.mirror.url}/x.qcow2`,
      content: 'import',
      filename: 'x.qcow2',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body!.errors!.content, "value 'import' does not have a value in the enumeration 'iso, vztmpl'");
  });

  it('reports version 8.3.5 and lists local without import content', async () => {
    assert.equal((await c.ok<{ version: string }>('GET', '/version')).version, '8.3.5');
    const st = await c.ok<{ content: string }>('GET', '/storage/local');
    assert.ok(!st.content.split(',').includes('import'));
  });
});

describe('PVE 8.2 gates', () => {
  it('has no import content type at all', async () => {
    const sim = await startSimulator({ speed: 0, sshHost: false, pveVersion: '8.2.4' });
    const c = simClient(sim);
    try {
      const r = await c.call('PUT', '/storage/local', { content: 'iso,vztmpl,backup,snippets,import' });
      assert.equal(r.status, 400);
      assert.equal(r.body!.errors!.content, "storage does not support content type 'import'");
    } finally {
      await c.close();
      await sim.close();
    }
  });
});

describe('two PVE nodes', () => {
  it("each node has its own 'local' directory unless the storage is shared", async () => {
    const sim = await startSimulator({ speed: 0, sshHost: false, pveNodes: 2 });
    const c = simClient(sim);
    try {
      mkdirSync(join(sim.storageRoot, 'snippets'), { recursive: true });
      writeFileSync(join(sim.storageRoot, 'snippets', 'n.ign'), '{}');
      const on = async (node: string) =>
        (await c.ok<Array<{ volid: string }>>('GET', `/nodes/${node}/storage/local/content`, { content: 'snippets' })).map((v) => v.volid);
      assert.deepEqual(await on('pve1'), ['local:snippets/n.ign']);
      assert.deepEqual(await on('pve2'), []);
      const onPve2 = await c.call('POST', '/nodes/pve2/qemu', {
        vmid: 300,
        ide2: 'local-lvm:cloudinit',
        cicustom: 'user=local:snippets/n.ign',
      });
      assert.equal(onPve2.status, 500);
      assert.equal(onPve2.body!.message, "volume 'local:snippets/n.ign' does not exist\n");
      assert.equal(
        (await c.task('POST', '/nodes/pve1/qemu', { vmid: 301, ide2: 'local-lvm:cloudinit', cicustom: 'user=local:snippets/n.ign' }))
          .exitstatus,
        'OK',
      );
      // a shared storage (here: marked shared) is the same directory everywhere
      sim.state.storages.get('local')!.shared = true;
      assert.deepEqual(await on('pve2'), ['local:snippets/n.ign']);
      const nodes = await c.ok<Array<{ node: string }>>('GET', '/nodes');
      assert.deepEqual(
        nodes.map((n) => n.node),
        ['pve1', 'pve2'],
      );
    } finally {
      await c.close();
      await sim.close();
    }
  });
});
