/**
 * A persisted simulator (SimOptions.persistDir) comes back as the same Proxmox: same URL, certificate,
 * token and SSH host key, its VMs and volumes, the `local` directory of each node under pve/<node>/,
 * UPIDs that keep counting; and what a crash leaves is repaired as a real host's task cleanup would.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseUpid } from '../src/sim/tasks.js';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { tempDir } from './helpers/cli.js';
import { simClient } from './sim-client.js';

const cleanups: Array<() => void | Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function start(persistDir: string, extra: Parameters<typeof startSimulator>[0] = {}): Promise<{ sim: Simulator; lines: string[] }> {
  const lines: string[] = [];
  const sim = await startSimulator({ speed: 0, persistDir, log: (l) => lines.push(l), ...extra });
  cleanups.push(() => sim.close());
  return { sim, lines };
}

describe('persisted simulator', () => {
  it('continues the same Proxmox: identity, VMs, volumes, per-node local directories, UPID counters', async () => {
    const t = tempDir('sim-persist-');
    cleanups.push(t.cleanup);
    const dir = join(t.dir, 'demo');
    const { sim: a } = await start(dir, { pveNodes: 2 });
    assert.equal(a.resumed, false);
    assert.equal(a.storageRoot, join(dir, 'pve', 'pve1'));
    const ca = simClient(a);
    const created = await ca.task('POST', '/nodes/pve2/qemu', {
      vmid: 120,
      name: 'kept',
      memory: 1024,
      scsi0: 'local-lvm:1',
      net0: 'virtio,bridge=vmbr0',
    });
    assert.equal(created.exitstatus, 'OK');
    const firstPid = parseUpid(created.upid)!.pid;
    // pve2's own local storage is a directory of the world too
    writeFileSync(join(dir, 'pve', 'pve2', 'snippets', 'n.ign'), '{}');
    const config = await ca.ok<Record<string, unknown>>('GET', '/nodes/pve2/qemu/120/config');
    await ca.close();
    const identity = {
      url: a.url,
      fingerprint: a.fingerprint,
      token: a.token.tokenSecret,
      ssh: a.ssh!.hostKeyFingerprint,
      sshPort: a.ssh!.port,
      mirror: a.mirror.url,
      key: a.ssh!.privateKey,
    };
    await a.close();
    assert.equal(statSync(join(dir, 'sim.json')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    const { sim: b } = await start(dir, { pveNodes: 1 });
    assert.equal(b.resumed, true);
    assert.deepEqual(b.nodes, ['pve1', 'pve2'], 'the saved world wins over pveNodes');
    assert.deepEqual(
      {
        url: b.url,
        fingerprint: b.fingerprint,
        token: b.token.tokenSecret,
        ssh: b.ssh!.hostKeyFingerprint,
        sshPort: b.ssh!.port,
        mirror: b.mirror.url,
        key: b.ssh!.privateKey,
      },
      identity,
    );
    const cb = simClient(b);
    try {
      // the same token works over the same pinned certificate
      assert.deepEqual(await cb.ok('GET', '/nodes/pve2/qemu/120/config'), config);
      const content = await cb.ok<Array<{ volid: string }>>('GET', '/nodes/pve2/storage/local/content', { content: 'snippets' });
      assert.deepEqual(
        content.map((c) => c.volid),
        ['local:snippets/n.ign'],
      );
      const lvm = await cb.ok<Array<{ volid: string }>>('GET', '/nodes/pve2/storage/local-lvm/content');
      assert.deepEqual(
        lvm.map((c) => c.volid),
        ['local-lvm:vm-120-disk-0'],
      );
      const next = await cb.task('POST', '/nodes/pve2/qemu/120/config', { cores: 2 });
      assert.equal(next.exitstatus, 'OK');
      assert.ok(parseUpid(next.upid)!.pid > firstPid, 'UPIDs keep counting after a restart');
    } finally {
      await cb.close();
    }
  });

  it('after a crash: unfinished creates and clones are gone, stale locks cleared, a template conversion completed, running VMs boot again', async () => {
    const t = tempDir('sim-persist-crash-');
    cleanups.push(t.cleanup);
    const dir = join(t.dir, 'demo');
    const { sim: a } = await start(dir);
    const vol = (vmid: number, name: string) => ({
      volid: `local-lvm:${name}`,
      storage: 'local-lvm',
      node: 'pve1',
      content: 'images',
      format: 'raw',
      size: 1024 ** 3,
      vmid,
      ctime: 1,
    });
    // what a kill in the middle of these tasks leaves in the saved world
    a.state.vms.set(200, {
      vmid: 200,
      node: 'pve1',
      status: 'stopped',
      generation: 0,
      config: { lock: 'clone', scsi0: 'local-lvm:vm-200-disk-0' },
    });
    a.state.volumes.set('local-lvm:vm-200-disk-0', vol(200, 'vm-200-disk-0'));
    a.state.vms.set(201, { vmid: 201, node: 'pve1', status: 'stopped', generation: 0, config: { lock: 'create' } });
    a.state.vms.set(202, { vmid: 202, node: 'pve1', status: 'stopped', generation: 0, config: { name: 'locked', lock: 'backup' } });
    a.state.vms.set(203, {
      vmid: 203,
      node: 'pve1',
      status: 'stopped',
      generation: 0,
      config: { name: 'tpl', template: 1, scsi0: 'local-lvm:vm-203-disk-0,size=1G' },
    });
    a.state.volumes.set('local-lvm:vm-203-disk-0', vol(203, 'vm-203-disk-0'));
    a.state.vms.set(204, {
      vmid: 204,
      node: 'pve1',
      status: 'running',
      generation: 1,
      config: { name: 'up', agent: 1, net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0' },
    });
    a.save();
    // a SIGKILL: the process is gone without close(); the saved file is all that is left
    const saved = readFileSync(join(dir, 'sim.json'), 'utf8');
    await a.close();
    writeFileSync(join(dir, 'sim.json'), saved);

    const { sim: b, lines } = await start(dir);
    assert.equal(b.state.vms.has(200), false);
    assert.equal(b.state.volumes.has('local-lvm:vm-200-disk-0'), false);
    assert.equal(b.state.vms.has(201), false);
    assert.equal(b.state.vms.get(202)!.config.lock, undefined);
    assert.equal(b.state.vms.get(203)!.config.scsi0, 'local-lvm:base-203-disk-0,size=1G');
    assert.ok(b.state.volumes.has('local-lvm:base-203-disk-0'));
    assert.equal(b.state.volumes.has('local-lvm:vm-203-disk-0'), false);
    assert.match(lines.join('\n'), /VM 200: its clone task did not finish; removed/);
    // the running VM's guest boots again and its agent answers
    const c = simClient(b);
    try {
      const deadline = Date.now() + 10_000;
      let r = await c.call('GET', '/nodes/pve1/qemu/204/agent/network-get-interfaces');
      while (r.status !== 200 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 20));
        r = await c.call('GET', '/nodes/pve1/qemu/204/agent/network-get-interfaces');
      }
      assert.equal(r.status, 200, r.raw);
    } finally {
      await c.close();
    }
  });

  it('a damaged world is an error that says how to start over, never silently replaced', async () => {
    const t = tempDir('sim-persist-bad-');
    cleanups.push(t.cleanup);
    const dir = join(t.dir, 'demo');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'sim.json'), '{"format":1,"nodes":');
    await assert.rejects(startSimulator({ speed: 0, persistDir: dir }), /unreadable.*delete .*demo to start the demo over/);
    assert.equal(readFileSync(join(dir, 'sim.json'), 'utf8'), '{"format":1,"nodes":');
  });
});

describe('persisted demo world', () => {
  it('is used by one demo at a time; a claim left by a killed process is taken over', async () => {
    const { startDemo } = await import('../src/demo/index.js');
    const t = tempDir('demo-persist-claim-');
    cleanups.push(t.cleanup);
    const demo = await startDemo({ stateDir: t.dir, speed: 0 });
    try {
      await assert.rejects(startDemo({ stateDir: t.dir, speed: 0 }), /the demo in .* is in use by another flatcar-k3s \(pid \d+\)/);
    } finally {
      await demo.close();
    }
    // a pid that is surely gone (beyond pid_max)
    writeFileSync(join(t.dir, 'demo', 'in-use'), '2147483646\n');
    const again = await startDemo({ stateDir: t.dir, speed: 0 });
    try {
      assert.equal(again.sim.url, demo.sim.url, 'the same world, on its saved port');
      assert.equal(again.sim.fingerprint, demo.sim.fingerprint);
      assert.deepEqual(again.overrides.nodes, demo.overrides.nodes, 'the nodes settings (SSH port, keys) are the same');
    } finally {
      await again.close();
    }
  });
});
