/**
 * Contract suite: the real Proxmox adapter (src/proxmox/client.ts) against the simulator over real
 * HTTPS on loopback. Auth, schema rejections, tasks, locks, VMIDs, TLS pinning, no double POSTs,
 * and the proxmox:connect step.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import {
  createProxmoxClient,
  withLockRetry,
  withFreeVmid,
  isVmidTaken,
  PveAmbiguousError,
  type ClientTuning,
  type PveClient,
} from '../src/proxmox/client.js';
import { RemoteError, UserError } from '../src/errors.js';
import type { ProxmoxClient } from '../src/proxmox/types.js';
import { ConfigSchema, type Config } from '../src/config/schema.js';
import { proxmoxSteps } from '../steps/proxmox/index.js';
import { STEP } from '../steps/ids.js';
import type { ConnectFacts } from '../steps/proxmox/connect.js';
import { createStepHarness } from './helpers/step-context.js';

const quick: ClientTuning = { sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))), recheckDelayMs: 0, taskPollMs: 20 };

async function connect(sim: Simulator, extra: Partial<Parameters<typeof createProxmoxClient>[0]> = {}, tuning: ClientTuning = quick) {
  return createProxmoxClient({ url: sim.url, ...sim.token, fingerprint: sim.fingerprint, ...extra }, tuning);
}

function configFor(sim: Simulator, proxmox: Record<string, unknown> = {}): Config {
  const base = sim.proxmoxConfig() as { proxmox: Record<string, unknown> };
  return ConfigSchema.parse({ cluster: { name: 'contract' }, proxmox: { ...base.proxmox, ...proxmox } });
}

const minimalVm = (vmid: number, extra: Record<string, string | number> = {}) => ({
  vmid,
  name: `vm-${vmid}`,
  memory: 512,
  cores: 1,
  net0: 'virtio,bridge=vmbr0',
  ...extra,
});

describe('proxmox client against the simulator', () => {
  let sim: Simulator;
  let client: ProxmoxClient & PveClient;
  before(async () => {
    sim = await startSimulator({ pveNodes: 2, speed: 0.01, sshHost: false });
    client = (await connect(sim)).client as ProxmoxClient & PveClient;
  });
  after(async () => {
    await client?.close();
    await sim?.close();
  });

  describe('auth', () => {
    test('token: connects, reports the pinned fingerprint and the PVE version', async () => {
      const { client: c, fingerprint } = await connect(sim);
      assert.equal(fingerprint, sim.fingerprint);
      assert.equal((await c.version()).version, '8.4.1');
      assert.deepEqual(
        (await c.nodes()).map((n) => n.node),
        sim.nodes,
      );
      assert.equal(c.auth?.kind, 'token');
      await (c as PveClient).close();
    });

    test('token: a wrong secret is a 401 UserError naming the token', async () => {
      await assert.rejects(connect(sim, { tokenSecret: '00000000-0000-4000-8000-000000000000' }), (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.equal(
          err.message,
          `Proxmox rejected the API token ${sim.token.tokenId} (401). Check proxmox.tokenId/tokenSecret; tokens are shown once at creation: Datacenter → Permissions → API Tokens`,
        );
        return true;
      });
    });

    test('ticket: logs in, writes with the CSRF token, and a wrong password is refused', async () => {
      const { client: c } = await createProxmoxClient({ url: sim.url, ...sim.login, fingerprint: sim.fingerprint }, quick);
      assert.equal(c.auth?.kind, 'ticket');
      const upid = await c.createVm(sim.node, minimalVm(7100));
      await c.waitTask(sim.node, upid);
      await c.updateVmConfig(sim.node, 7100, { description: 'made with a ticket — ✓' });
      assert.equal((await c.vmConfig(sim.node, 7100)).description, 'made with a ticket — ✓');
      assert.doesNotThrow(() => (c as PveClient).requireRootPam('setting args'));
      await (c as PveClient).close();
      await assert.rejects(
        createProxmoxClient({ url: sim.url, username: sim.login.username, password: 'wrong', fingerprint: sim.fingerprint }, quick),
        (err: unknown) => err instanceof UserError && err.field === 'proxmox.password',
      );
    });

    test('root@pam-only parameters are refused for a token before anything is sent', async () => {
      const before = sim.requests().length;
      for (const params of [
        { args: '-fw_cfg name=opt/x,string=y' },
        { serial0: '/dev/ttyS0' },
        { scsi1: 'local-lvm:0,import-from=/var/lib/vz/template/iso/x.img' },
      ]) {
        await assert.rejects(
          client.updateVmConfig(sim.node, 7100, params),
          (err: unknown) =>
            err instanceof UserError &&
            /needs root@pam logged in with its password/.test(err.message) &&
            err.message.includes(sim.token.tokenId),
        );
      }
      assert.equal(sim.requests().length, before);
      const { client: root } = await createProxmoxClient({ url: sim.url, ...sim.login, fingerprint: sim.fingerprint }, quick);
      await root.updateVmConfig(sim.node, 7100, { serial0: 'socket', args: '-fw_cfg name=opt/org.flatcar-linux/config,string={}' });
      assert.match(String((await root.vmConfig(sim.node, 7100)).args), /fw_cfg/);
      await (root as PveClient).close();
    });

    test('a token without privileges gets the missing privilege and path named', async () => {
      const { client: c } = await connect(sim, sim.limitedToken);
      await assert.rejects(c.startVm(sim.node, 7100), (err: unknown) => {
        assert.ok(err instanceof UserError, String(err));
        assert.match(err.message, /lacks the privilege VM\.PowerMgmt on \/vms\/7100/);
        assert.match(err.fix!, /--tokens 'root@pam!limited'/);
        return true;
      });
      assert.throws(
        () => (c as PveClient).requireRootPam('setting args'),
        (e: unknown) => e instanceof UserError && /root@pam!limited/.test(e.message),
      );
      await (c as PveClient).close();
    });
  });

  describe('schema rejections come back as clear errors', () => {
    const rejects = async (params: Record<string, string | number>, param: string, pattern: RegExp) => {
      await assert.rejects(client.createVm(sim.node, params as { vmid: number }), (err: unknown) => {
        assert.ok(err instanceof UserError, String(err));
        assert.match(err.message, /Proxmox rejected the parameters of POST \/nodes\/pve1\/qemu/);
        const line = err.message.split('\n').find((l) => l.includes(`- ${param}:`));
        assert.ok(line, `no line for ${param} in: ${err.message}`);
        assert.match(line, pattern);
        return true;
      });
    };
    test('unknown parameter', () => rejects(minimalVm(7200, { bogus: 1 }), 'bogus', /not defined in schema/));
    test('bad enum value', () => rejects(minimalVm(7201, { ostype: 'plan9' }), 'ostype', /enumeration/));
    test('out of range', () => rejects(minimalVm(7202, { cores: 0 }), 'cores', /minimum/));
    test('missing required parameter', async () => {
      await assert.rejects(
        client.request('POST', `/nodes/${sim.node}/qemu/7000/clone`, {}),
        (err: unknown) => err instanceof UserError && /newid: property is missing/.test(err.message),
      );
    });
    test('nothing was created by rejected requests', async () => {
      const ids = (await client.vms()).map((v) => v.vmid);
      for (const id of [7200, 7201, 7202]) assert.ok(!ids.includes(id));
    });
  });

  describe('tasks', () => {
    test('create + start: waitTask follows the task to OK and streams its log', async () => {
      await client.waitTask(sim.node, await client.createVm(sim.node, minimalVm(7300)));
      const lines: string[] = [];
      const st = await client.waitTask(sim.node, await client.startVm(sim.node, 7300), { onLog: (l) => lines.push(l) });
      assert.equal(st.exitstatus, 'OK');
      assert.equal(lines.at(-1), 'TASK OK');
      assert.equal((await client.vmStatus(sim.node, 7300)).status, 'running');
      await client.waitTask(sim.node, await client.stopVm(sim.node, 7300));
    });

    test('a failing task is a RemoteError with the exit status and the log tail', async () => {
      sim.faults.failTask({ type: 'qmstart', nth: 1, message: 'start failed: QEMU exited with code 1' });
      try {
        const upid = await client.startVm(sim.node, 7300);
        await assert.rejects(
          client.waitTask(sim.node, upid),
          (err: unknown) =>
            err instanceof RemoteError &&
            /qmstart 7300 on pve1 failed: start failed: QEMU exited with code 1/.test(err.message) &&
            /TASK ERROR/.test(err.detail ?? ''),
        );
      } finally {
        sim.faults.clear();
      }
    });

    test('a task that outlives the timeout is reported and left running', async () => {
      sim.faults.slowNode(sim.node, 100);
      let upid = '';
      try {
        upid = await client.startVm(sim.node, 7300);
        await assert.rejects(
          client.waitTask(sim.node, upid, { timeoutMs: 300 }),
          (err: unknown) => err instanceof RemoteError && /still runs after/.test(err.message),
        );
        assert.equal((await client.taskStatus(sim.node, upid)).status, 'running');
      } finally {
        sim.faults.clear();
      }
      await client.waitTask(sim.node, upid);
      await client.waitTask(sim.node, await client.stopVm(sim.node, 7300));
    });
  });

  describe('locks', () => {
    test('an answered lock timeout is retried and the change lands once', async () => {
      await client.waitTask(sim.node, await client.createVm(sim.node, minimalVm(7400)));
      sim.faults.failRequest({
        method: 'PUT',
        path: '/nodes/*/qemu/7400/config',
        nth: 1,
        status: 500,
        message: "can't lock file '/var/lock/qemu-server/lock-7400.conf' - got timeout",
      });
      try {
        await client.updateVmConfig(sim.node, 7400, { memory: 1024 });
        assert.equal(Number((await client.vmConfig(sim.node, 7400)).memory), 1024);
        const puts = sim.requests().filter((r) => r.method === 'PUT' && r.path === `/nodes/${sim.node}/qemu/7400/config`);
        assert.deepEqual(
          puts.map((r) => r.status),
          [500, 200],
        );
      } finally {
        sim.faults.clear();
      }
    });

    test('a clone task that died on a lock is started again by withLockRetry', async () => {
      await client.waitTask(sim.node, await client.convertToTemplate(sim.node, 7400));
      sim.faults.failTask({ type: 'qmclone', nth: 1, message: "can't lock file '/var/lock/qemu-server/lock-7401.conf' - got timeout" });
      try {
        const retries: number[] = [];
        await withLockRetry(
          async () => client.waitTask(sim.node, await client.cloneVm(sim.node, 7400, { newid: 7401, name: 'clone-7401' })),
          { sleep: async () => {}, onRetry: (i) => retries.push(i.attempt) },
        );
        assert.deepEqual(retries, [1]);
        const clones = sim.tasks().filter((t) => t.type === 'qmclone' && t.id === '7400');
        assert.deepEqual(
          clones.map((t) => t.exitstatus),
          ["can't lock file '/var/lock/qemu-server/lock-7401.conf' - got timeout", 'OK'],
        );
        assert.ok((await client.vms()).some((v) => v.vmid === 7401));
      } finally {
        sim.faults.clear();
      }
    });
  });

  describe('names that do not exist', () => {
    test('an unknown node lists the nodes', async () => {
      await assert.rejects(
        client.storages('pve9'),
        (err: unknown) =>
          err instanceof UserError && err.field === 'proxmox.nodes' && /pve1 \(online\), pve2 \(online\)/.test(err.fix ?? ''),
      );
    });
    test('an unknown storage lists the storages of the node', async () => {
      await assert.rejects(
        client.storageContent(sim.node, 'tank'),
        (err: unknown) => err instanceof UserError && /no storage named 'tank'/.test(err.message) && /local-lvm \(/.test(err.fix ?? ''),
      );
    });
  });

  describe('VMIDs', () => {
    test('freeVmid skips used ids and excluded ones; a collision is recognisable', async () => {
      await client.waitTask(sim.node, await client.createVm(sim.node, minimalVm(7500)));
      await client.waitTask(sim.node, await client.createVm(sim.node, minimalVm(7501)));
      assert.equal(await client.freeVmid({ start: 7500, end: 7510 }), 7502);
      assert.equal(await client.freeVmid({ start: 7500, end: 7510 }, [7502, 7503]), 7504);
      assert.equal(await client.freeVmid({ start: 7500, end: 7501 }), null);
      // nextid does not reserve: two callers get the same id, the second create collides
      const a = await client.freeVmid({ start: 7500, end: 7510 });
      const b = await client.freeVmid({ start: 7500, end: 7510 });
      assert.equal(a, b);
      await client.waitTask(sim.node, await client.createVm(sim.node, minimalVm(a!)));
      const err = await client.createVm(sim.node, minimalVm(b!)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err && isVmidTaken(err), `expected a collision, got ${String(err)}`);
      assert.equal(await client.freeVmid({ start: 7500, end: 7510 }), 7503);
    });
  });

  test('withFreeVmid moves on when another creator takes the id first', async () => {
    const { client: other } = await connect(sim);
    let first = true;
    const logs: string[] = [];
    const { vmid } = await withFreeVmid(
      client,
      { start: 7700, end: 7710 },
      async (id) => {
        if (first) {
          first = false;
          await other.waitTask(sim.node, await other.createVm(sim.node, minimalVm(id, { name: 'someone-else' })));
        }
        return client.waitTask(sim.node, await client.createVm(sim.node, minimalVm(id)));
      },
      { log: (l) => logs.push(l) },
    );
    assert.equal(vmid, 7701);
    assert.equal((await client.vmConfig(sim.node, 7700)).name, 'someone-else');
    assert.equal((await client.vmConfig(sim.node, 7701)).name, 'vm-7701');
    assert.match(logs.join('\n'), /7700 was taken/);
    await (other as PveClient).close();
  });

  test('setStorageContent replaces the list; storageConfig reads it back', async () => {
    const before = await client.storageConfig('local');
    try {
      await client.setStorageContent(
        'local',
        [...before.content, 'rootdir'].filter((c, i, a) => a.indexOf(c) === i),
      );
      assert.ok((await client.storageConfig('local')).content.includes('rootdir'));
    } finally {
      await client.setStorageContent('local', before.content);
    }
    assert.deepEqual((await client.storageConfig('local')).content.sort(), [...before.content].sort());
  });

  describe('TLS pinning', () => {
    test('a wrong pin is refused before any request reaches Proxmox', async () => {
      const before = sim.requests().length;
      const wrong = sim.fingerprint.replace(/^../, sim.fingerprint.startsWith('AA') ? 'BB' : 'AA');
      await assert.rejects(
        connect(sim, { fingerprint: wrong }),
        (err: unknown) =>
          err instanceof UserError &&
          /^The Proxmox TLS certificate changed: pinned /.test(err.message) &&
          err.field === 'proxmox.fingerprint',
      );
      assert.equal(sim.requests().length, before);
    });

    test('first contact: the caller is asked and the pin is returned', async () => {
      let asked = '';
      const { client: c, fingerprint } = await createProxmoxClient(
        { url: sim.url, ...sim.token, onUnknownFingerprint: (fp) => ((asked = fp), true) },
        quick,
      );
      assert.equal(asked, sim.fingerprint);
      assert.equal(fingerprint, sim.fingerprint);
      await (c as PveClient).close();
    });
  });

  describe('no double POST', () => {
    test('a create whose connection dropped is sent once and reported as not created', async () => {
      sim.faults.dropConnection({ method: 'POST', path: '/nodes/*/qemu', nth: 1 });
      try {
        await assert.rejects(
          client.createVm(sim.node, minimalVm(7600)),
          (err: unknown) => err instanceof PveAmbiguousError && /nothing was created/.test(err.message),
        );
        const posts = sim.requests().filter((r) => r.method === 'POST' && r.path === `/nodes/${sim.node}/qemu`);
        assert.equal(posts.filter((r) => r.status === 0).length, 1, 'exactly one dropped POST');
        assert.equal(posts.filter((r) => r.params.vmid === '7600').length, 0, 'never re-sent');
        assert.ok(!(await client.vms()).some((v) => v.vmid === 7600));
      } finally {
        sim.faults.clear();
      }
    });

    test('a clone whose connection dropped is sent once', async () => {
      const count = () => sim.requests().filter((r) => r.method === 'POST' && r.path === `/nodes/${sim.node}/qemu/7400/clone`).length;
      const before = count();
      sim.faults.dropConnection({ method: 'POST', path: '/nodes/*/qemu/*/clone', nth: 1 });
      try {
        await assert.rejects(client.cloneVm(sim.node, 7400, { newid: 7601 }), PveAmbiguousError);
        assert.equal(count() - before, 1);
      } finally {
        sim.faults.clear();
      }
    });
  });
});

describe('proxmox:connect step against the simulator', () => {
  async function runConnect(simOpts: Parameters<typeof startSimulator>[0], proxmox: Record<string, unknown> = {}) {
    const sim = await startSimulator({ speed: 0, sshHost: false, ...simOpts });
    const clients: PveClient[] = [];
    const config = configFor(sim, proxmox);
    const h = createStepHarness({
      config,
      proxmox: async () => {
        const { client } = await connect(sim);
        clients.push(client as PveClient);
        return client;
      },
    });
    try {
      const [step] = proxmoxSteps(config, h.options);
      assert.equal(step!.id, STEP.proxmoxConnect);
      const before = sim.requests().filter((r) => r.method !== 'GET').length;
      const check = await step!.check(h.context(step!));
      let run: unknown;
      try {
        run = { ok: await step!.run(h.context(step!)) };
      } catch (err) {
        run = { err };
      }
      const writes = sim.requests().filter((r) => r.method !== 'GET').length - before;
      return { sim, check, run: run as { ok?: ConnectFacts; err?: unknown }, writes, logs: h.logText() };
    } finally {
      for (const c of clients) await c.close();
      h.cleanup();
      await sim.close();
    }
  }

  test('a good config: done, with the facts and nothing changed', async () => {
    const { check, run, writes, sim } = await runConnect({ pveNodes: 2 });
    assert.ok('done' in check && check.done, JSON.stringify(check));
    const facts = (check as unknown as { outputs: ConnectFacts }).outputs;
    assert.equal(facts.pveVersion, '8.4.1');
    assert.deepEqual(facts.pveNodes, ['pve1', 'pve2']);
    assert.equal(facts.tlsFingerprint, sim.fingerprint);
    assert.equal(facts.importContent, true);
    assert.equal(facts.snippetsPath, sim.storageRoot);
    assert.deepEqual(run.ok, facts);
    assert.equal(writes, 0, 'the connect step only reads');
  });

  test('an unknown node: fails naming the nodes that exist', async () => {
    const { check, run } = await runConnect({ pveNodes: 2 }, { nodes: ['pve1', 'pve9'] });
    assert.ok('done' in check && !check.done);
    assert.ok(run.err instanceof UserError);
    assert.equal(run.err.field, 'proxmox.nodes');
    assert.match(run.err.message, /no node named 'pve9'/);
    assert.match(run.err.fix!, /pve1 \(online\), pve2 \(online\)/);
  });

  test('images storage without import content: explains the pvesm fix and changes nothing', async () => {
    const { run, writes } = await runConnect({ localContent: ['iso', 'vztmpl', 'backup', 'snippets'] });
    assert.ok(run.err instanceof UserError, String(run.err));
    assert.equal(run.err.field, 'proxmox.storage.images');
    assert.match(run.err.message, /'local' does not allow content type 'import'/);
    assert.match(run.err.fix!, /pvesm set local --content iso,vztmpl,backup,snippets,import/);
    assert.equal(writes, 0);
  });

  test('PVE 8.3: connects, notes that import content is not usable', async () => {
    const { check, logs } = await runConnect({ pveVersion: '8.3.5' });
    assert.ok('done' in check && check.done, JSON.stringify(check));
    const facts = (check as unknown as { outputs: ConnectFacts }).outputs;
    assert.equal(facts.pveVersion, '8.3.5');
    assert.equal(facts.importContent, false);
    assert.match(logs, /predates 8\.4/);
  });

  test('PVE 8.3: downloading into import content names the version and the fallback', async () => {
    const sim = await startSimulator({ speed: 0, sshHost: false, pveVersion: '8.3.5' });
    const { client } = await connect(sim);
    try {
      await assert.rejects(
        client.downloadUrl(sim.node, 'local', { url: `${sim.mirror.url}/x.qcow2`, content: 'import', filename: 'x.qcow2' }),
        (err: unknown) => {
          assert.ok(err instanceof UserError, String(err));
          assert.match(err.message, /Proxmox VE 8\.3\.5 is too old .*8\.4/);
          assert.match(err.fix!, /qm disk import|upgrade/i);
          return true;
        },
      );
    } finally {
      await (client as PveClient).close();
      await sim.close();
    }
  });

  test('PVE 7.4 is refused with the upgrade path', async () => {
    const { run } = await runConnect({ pveVersion: '7.4.17' });
    assert.ok(run.err instanceof UserError, String(run.err));
    assert.match(run.err.message, /Proxmox VE 7\.4\.17 is too old/);
  });

  test('an unknown snippets storage is reported once, with the storages that exist', async () => {
    const { run } = await runConnect({}, { storage: { disks: 'local-lvm', images: 'local', snippets: 'nfs-snips' } });
    assert.ok(run.err instanceof UserError, String(run.err));
    assert.equal(run.err.field, 'proxmox.storage.snippets');
    assert.match(run.err.message, /^Proxmox node pve1 has no storage 'nfs-snips'/);
    assert.match(run.err.fix!, /local \(/);
  });

  test('an unknown bridge and storage are all reported at once', async () => {
    const { run } = await runConnect({}, { bridge: 'vmbr7', storage: { disks: 'tank', images: 'local', snippets: 'local' } });
    assert.ok(run.err instanceof UserError);
    assert.match(run.err.message, /2 problems/);
    assert.match(run.err.message, /no storage 'tank'/);
    assert.match(run.err.message, /no bridge 'vmbr7'/);
    assert.match(run.err.fix!, /local-lvm/);
    assert.match(run.err.fix!, /vmbr0/);
  });
});
