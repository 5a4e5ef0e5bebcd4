/**
 * The simulator answers as real Proxmox does: nextid as a string, endtime on finished tasks,
 * /cluster/status, the locked-VM message with its VMID, and node/VM rows whose keys and types fit the
 * official schema's `returns` for every endpoint the client calls.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { checkReturns } from '../src/sim/schema/returns.js';
import { ApiSchema } from '../src/sim/schema/index.js';
import type { SchemaNode } from '../src/sim/schema/types.js';
import { simClient, type SimClient } from './sim-client.js';

const reference = new ApiSchema(JSON.parse(readFileSync('../shared/reference/proxmox-ve-api.json', 'utf8')) as SchemaNode[]);

let sim: Simulator;
let c: SimClient;
let upid: string;

before(async () => {
  sim = await startSimulator({ speed: 0, sshHost: false, pveNodes: 3 });
  c = simClient(sim);
  const t = await c.task('POST', '/nodes/pve1/qemu', {
    vmid: 100,
    name: 'fidelity',
    scsi0: 'local-lvm:1',
    cores: 2,
    net0: 'virtio,bridge=vmbr0',
    agent: 1,
  });
  assert.equal(t.exitstatus, 'OK');
  upid = t.upid;
  const s = await c.task('POST', '/nodes/pve1/qemu/100/status/start');
  assert.equal(s.exitstatus, 'OK');
});
after(async () => {
  await c.close();
  await sim.close();
});

/** GET a path and check the answer against the reference schema's `returns` of that method. */
async function fits(path: string, params?: Record<string, string>): Promise<unknown> {
  const found = reference.match('GET', path).match;
  assert.ok(found, `GET ${path} is in the reference schema`);
  const data = await c.ok('GET', path, params);
  assert.deepEqual(checkReturns(found.route.info.returns, data), [], `GET ${path} fits its returns schema`);
  return data;
}

describe('simulator fidelity', () => {
  it('answers /cluster/nextid with the id as a string, as pve-manager does', async () => {
    const r = await c.call('GET', '/cluster/nextid');
    assert.equal(r.raw, '{"data":"101"}');
    assert.equal((await c.call('GET', '/cluster/nextid', { vmid: 150 })).raw, '{"data":"150"}');
  });

  it('gives a finished task its endtime', async () => {
    const s = await c.ok<{ status: string; starttime: number; endtime: number; exitstatus: string }>(
      'GET',
      `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`,
    );
    assert.equal(s.status, 'stopped');
    assert.equal(s.exitstatus, 'OK');
    assert.ok(Number.isInteger(s.endtime) && s.endtime >= s.starttime, JSON.stringify(s));
  });

  it('serves /cluster/status with a cluster row and one row per node', async () => {
    const rows = (await fits('/cluster/status')) as Array<Record<string, unknown>>;
    assert.deepEqual(rows[0], { type: 'cluster', id: 'cluster', name: 'sim', nodes: 3, quorate: 1, version: 3 });
    assert.deepEqual(
      rows.slice(1).map((r) => [r.type, r.name, r.nodeid, r.online, r.local]),
      [
        ['node', 'pve1', 1, 1, 1],
        ['node', 'pve2', 2, 1, 0],
        ['node', 'pve3', 3, 1, 0],
      ],
    );
    for (const r of rows.slice(1)) assert.match(String(r.ip), /^127\.\d+\.\d+\.\d+$/);
  });

  it('words a locked VM as "VM <vmid> is locked (<lock>)"', async () => {
    const vm = sim.state.vms.get(100)!;
    vm.config.lock = 'backup';
    try {
      const r = await c.call('PUT', '/nodes/pve1/qemu/100/config', { description: 'x' });
      assert.equal(r.status, 500);
      assert.equal(r.body!.message, 'VM 100 is locked (backup)\n');
      const resize = await c.call('PUT', '/nodes/pve1/qemu/100/resize', { disk: 'scsi0', size: '+1G' });
      assert.equal(resize.body!.message, 'VM 100 is locked (backup)\n');
    } finally {
      delete vm.config.lock;
    }
  });

  it('sends node rows with the keys real Proxmox sends', async () => {
    const nodes = (await fits('/nodes')) as Array<Record<string, unknown>>;
    assert.deepEqual(
      nodes.map((n) => n.node),
      ['pve1', 'pve2', 'pve3'],
    );
    for (const n of nodes) {
      for (const k of [
        'node',
        'status',
        'cpu',
        'maxcpu',
        'mem',
        'maxmem',
        'disk',
        'maxdisk',
        'uptime',
        'level',
        'id',
        'type',
        'ssl_fingerprint',
      ])
        assert.ok(k in n, `/nodes row has ${k}`);
      assert.equal(n.ssl_fingerprint, sim.fingerprint);
    }
    const res = (await fits('/cluster/resources', { type: 'node' })) as Array<Record<string, unknown>>;
    for (const n of res)
      for (const k of ['id', 'type', 'node', 'status', 'cgroup-mode', 'level', 'maxcpu', 'maxmem', 'maxdisk'])
        assert.ok(k in n, `resources node row has ${k}`);
    const status = (await fits('/nodes/pve2/status')) as Record<string, Record<string, unknown>>;
    assert.equal(status['current-kernel']!.sysname, 'Linux');
    assert.ok(typeof status.memory!.available === 'number');
    const vm = (await fits('/nodes/pve1/qemu/100/status/current')) as Record<string, unknown>;
    for (const k of ['ha', 'cpus', 'maxmem', 'maxdisk', 'uptime', 'pid', 'qmpstatus', 'agent'])
      assert.ok(k in vm, `status/current has ${k}`);
  });

  it('fits the returns schema of every GET the client calls', async () => {
    for (const p of [
      '/version',
      '/nodes',
      '/cluster/resources',
      '/cluster/nextid',
      '/nodes/pve1/network',
      '/nodes/pve1/storage',
      '/storage/local',
      '/nodes/pve1/storage/local-lvm/content',
      '/nodes/pve1/qemu',
      '/nodes/pve1/qemu/100/config',
      '/nodes/pve1/tasks',
      `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`,
      `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`,
    ]) {
      await fits(p);
    }
  });

  it('the checker catches a wrong type and a missing key', () => {
    const route = reference.match('GET', '/nodes/pve1/tasks/x/status').match!.route;
    assert.deepEqual(
      checkReturns(route.info.returns, { upid: 'u', node: 'pve1', pid: 'x', pstart: 1, starttime: 1, type: 't', id: '', user: 'root@pam' }),
      ['data.pid: "x" is not an integer', 'data.status: missing'],
    );
  });
});
