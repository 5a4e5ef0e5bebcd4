/**
 * The simulator's hosts each have their own storage: local and local-lvm volumes are visible only on
 * their node, each node has its own SSH (own address and host key) onto its own `local`, the shared
 * storage `nfs` (--shared-storage) is the same everywhere, and clones to another node work only from it
 * (real Proxmox's "can't clone VM to node '<n>' (VM uses local storage)").
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { createSshConnector } from '../src/ssh/client.js';
import { simClient, type SimClient } from './sim-client.js';

let sim: Simulator;
let c: SimClient;

before(async () => {
  sim = await startSimulator({ speed: 0, pveNodes: 3, sharedStorage: true });
  c = simClient(sim);
});
after(async () => {
  await c.close();
  await sim.close();
});

type Vol = { volid: string };
const volids = async (node: string, storage: string, content?: string) =>
  (await c.ok<Vol[]>('GET', `/nodes/${node}/storage/${storage}/content`, content ? { content } : undefined)).map((v) => v.volid).sort();

async function template(node: string, vmid: number, disk: string): Promise<void> {
  assert.equal(
    (await c.task('POST', `/nodes/${node}/qemu`, { vmid, name: `t${vmid}`, scsi0: `${disk}:1`, ide2: `${disk}:cloudinit` })).exitstatus,
    'OK',
  );
  assert.equal((await c.task('POST', `/nodes/${node}/qemu/${vmid}/template`)).exitstatus, 'OK');
}

describe('simulator: several hosts, local and shared storage', () => {
  it('lists the shared storage nfs (shared: 1) on every node, local ones as not shared', async () => {
    for (const node of sim.nodes) {
      const st = await c.ok<Array<{ storage: string; shared: number; type: string }>>('GET', `/nodes/${node}/storage`);
      assert.deepEqual(
        st.map((s) => [s.storage, s.type, s.shared]),
        [
          ['local', 'dir', 0],
          ['local-lvm', 'lvmthin', 0],
          ['nfs', 'nfs', 1],
        ],
      );
    }
  });

  it('keeps a local-lvm volume on its own host', async () => {
    await template('pve2', 9000, 'local-lvm');
    assert.deepEqual(await volids('pve2', 'local-lvm'), ['local-lvm:base-9000-disk-0', 'local-lvm:vm-9000-cloudinit']);
    assert.deepEqual(await volids('pve1', 'local-lvm'), []);
  });

  it('refuses a clone to another node from local storage, with real Proxmox words', async () => {
    const r = await c.call('POST', '/nodes/pve2/qemu/9000/clone', { newid: 101, name: 'x', target: 'pve3' });
    assert.equal(r.status, 500);
    assert.equal(r.body!.message, "can't clone VM to node 'pve3' (VM uses local storage)\n");
    assert.equal(sim.state.vms.has(101), false);
    // on its own host the linked clone works
    assert.equal((await c.task('POST', '/nodes/pve2/qemu/9000/clone', { newid: 102, name: 'y' })).exitstatus, 'OK');
    assert.equal(sim.state.vms.get(102)!.node, 'pve2');
  });

  it('clones to another node from the shared storage, and the volumes are seen everywhere', async () => {
    await template('pve1', 9100, 'nfs');
    assert.equal((await c.task('POST', '/nodes/pve1/qemu/9100/clone', { newid: 110, name: 'z', target: 'pve3' })).exitstatus, 'OK');
    assert.equal(sim.state.vms.get(110)!.node, 'pve3');
    const onAll = await Promise.all(sim.nodes.map((n) => volids(n, 'nfs', 'images')));
    for (const v of onAll) assert.deepEqual(v, onAll[0]);
    assert.ok(onAll[0]!.includes('nfs:base-9100-disk-0/vm-110-disk-0'), onAll[0]!.join());
    const st = await c.ok<Array<{ vmid: number; status: string }>>('GET', '/nodes/pve3/qemu');
    assert.deepEqual(
      st.map((v) => v.vmid),
      [110],
    );
  });

  it('gives each node its own SSH: own address (as /cluster/status says), own host key, own local storage', async () => {
    const status = await c.ok<Array<{ type: string; name: string; ip: string }>>('GET', '/cluster/status');
    const keys = new Set<string>();
    for (const node of sim.nodes) {
      const ssh = sim.sshNodes[node]!;
      assert.equal(status.find((r) => r.name === node)!.ip, ssh.host);
      keys.add(ssh.hostKeyFingerprint);
      const s = await createSshConnector().connect({
        host: ssh.host,
        port: ssh.port,
        username: ssh.user,
        privateKey: ssh.privateKey,
        hostKeyFingerprint: ssh.hostKeyFingerprint,
        label: node,
      });
      try {
        // the same path on every host (as /var/lib/vz is), a different directory behind it
        await s.writeFile(`${sim.storageRoot}/snippets/on-${node}.ign`, `{"node":"${node}"}`, 0o644);
        await s.writeFile(`${sim.state.storages.get('nfs')!.path}/snippets/shared-${node}.ign`, '{}', 0o644);
      } finally {
        await s.close();
      }
    }
    assert.equal(keys.size, 3);
    assert.deepEqual(new Set(sim.nodes.map((n) => sim.sshNodes[n]!.host)).size, 3);
    for (const node of sim.nodes) {
      assert.deepEqual(await volids(node, 'local', 'snippets'), [`local:snippets/on-${node}.ign`]);
      assert.deepEqual(await volids(node, 'nfs', 'snippets'), [
        'nfs:snippets/shared-pve1.ign',
        'nfs:snippets/shared-pve2.ign',
        'nfs:snippets/shared-pve3.ign',
      ]);
    }
  });

  it('configures per-node SSH host keys for the installer (the address comes from the API)', () => {
    const px = (sim.proxmoxConfig() as { proxmox: { ssh: { nodes: Record<string, { hostKey: string; host?: string }> } } }).proxmox;
    assert.deepEqual(Object.keys(px.ssh.nodes), ['pve2', 'pve3']);
    assert.equal(px.ssh.nodes.pve2!.hostKey, sim.sshNodes.pve2!.hostKeyFingerprint);
    assert.equal(px.ssh.nodes.pve2!.host, undefined);
  });
});

describe('simulator: a persisted world keeps its shared storage', () => {
  it('has nfs again on the next start without asking, with its files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-shared-'));
    try {
      const a = await startSimulator({ speed: 0, pveNodes: 2, sharedStorage: true, persistDir: dir });
      const ca = simClient(a);
      try {
        assert.equal((await ca.task('POST', '/nodes/pve1/qemu', { vmid: 100, name: 'a', scsi0: 'nfs:1' })).exitstatus, 'OK');
      } finally {
        await ca.close();
        await a.close();
      }
      assert.ok(existsSync(join(dir, 'pve', '_shared', 'snippets')));
      const b = await startSimulator({ speed: 0, persistDir: dir });
      const cb = simClient(b);
      try {
        assert.equal(b.state.storages.get('nfs')?.shared, true);
        assert.deepEqual(
          (await cb.ok<Vol[]>('GET', '/nodes/pve2/storage/nfs/content')).map((v) => v.volid),
          ['nfs:vm-100-disk-0'],
        );
        assert.deepEqual(Object.keys(b.sshNodes), ['pve1', 'pve2']);
      } finally {
        await cb.close();
        await b.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
