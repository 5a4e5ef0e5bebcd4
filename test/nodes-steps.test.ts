/** The node steps' pure parts: wanted VM settings and drift, disk sizes, guest-agent addresses, the step graph. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../src/config/load.js';
import { planNodes } from '../src/config/layout.js';
import { configDrift, desiredVmConfig, driveSize } from '../steps/nodes/vm.js';
import { agentAddress } from '../steps/nodes/ssh.js';
import { nodeSteps } from '../steps/nodes/index.js';
import { buildSteps } from '../steps/index.js';
import { LANE_LIMITS, laneLimitsFor } from '../src/runner/driver.js';

const proxmox = { url: 'https://pve.test:8006', tokenId: 'root@pam!t', tokenSecret: '00000000-0000-0000-0000-000000000000' };
const ha = resolveConfig({ preset: 'ha', proxmox, nodes: { sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx0 me'] } }, { env: {} });

test('wanted VM settings: MAC, bridge, static ipconfig, DNS, cicustom, tags', () => {
  const n = planNodes(ha)[0]!;
  const want = desiredVmConfig(ha, n, 'local:snippets/x.ign');
  assert.equal(want.net0, `virtio=${n.mac},bridge=vmbr0`);
  assert.equal(want.ipconfig0, 'ip=192.168.50.11/24,gw=192.168.50.1');
  assert.equal(want.nameserver, '192.168.50.1');
  assert.equal(want.cicustom, 'user=local:snippets/x.ign');
  assert.equal(want.tags, 'flatcar-k3s;ha;server');
  const homelab = resolveConfig({ preset: 'homelab', proxmox }, { env: {} });
  assert.equal(desiredVmConfig(homelab, planNodes(homelab)[1]!, 'v').ipconfig0, 'ip=dhcp');
});

test('drift: what Proxmox normalises (MAC case, tag order, agent form) is not a change; real differences are', () => {
  const n = planNodes(ha)[3]!;
  const want = desiredVmConfig(ha, n, 'local:snippets/x.ign');
  const have: Record<string, string | number> = {
    ...want,
    net0: `virtio=${n.mac.toLowerCase()},bridge=vmbr0,firewall=1`,
    tags: 'agent;ha;flatcar-k3s',
    agent: '1',
  };
  assert.deepEqual(configDrift(have, want), []);
  assert.deepEqual(configDrift({ ...have, memory: 2048, cicustom: 'user=local:snippets/old.ign' }, want).sort(), ['cicustom', 'memory']);
  assert.deepEqual(configDrift({ ...have, net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0' }, want), ['net0']);
});

test('disk sizes from drive strings', () => {
  assert.equal(driveSize('local-lvm:vm-101-disk-0,iothread=1,size=8G'), 8 * 1024 ** 3);
  assert.equal(driveSize('ceph:vm-1-disk-0,size=512M,discard=on'), 512 * 1024 ** 2);
  assert.equal(driveSize('local-lvm:vm-101-disk-0'), undefined);
});

test('guest agent address: the NIC with our MAC, not loopback or link-local', () => {
  const ifaces = [
    {
      name: 'lo',
      'hardware-address': '00:00:00:00:00:00',
      'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4' as const, prefix: 8 }],
    },
    {
      name: 'cni0',
      'hardware-address': 'aa:aa:aa:aa:aa:aa',
      'ip-addresses': [{ 'ip-address': '10.42.0.1', 'ip-address-type': 'ipv4' as const, prefix: 24 }],
    },
    {
      name: 'eth0',
      'hardware-address': 'bc:24:11:01:02:03',
      'ip-addresses': [
        { 'ip-address': 'fe80::1', 'ip-address-type': 'ipv6' as const, prefix: 64 },
        { 'ip-address': '192.168.1.77', 'ip-address-type': 'ipv4' as const, prefix: 24 },
      ],
    },
  ];
  assert.equal(agentAddress(ifaces, 'BC:24:11:01:02:03'), '192.168.1.77');
  assert.equal(agentAddress([ifaces[0]!], 'BC:24:11:01:02:03'), undefined);
});

test('step graph: per-node chain, clones in the clone lane, joins serialized after the first server, agents after it', () => {
  const steps = nodeSteps(ha, { parallel: 8 });
  const byId = new Map(steps.map((s) => [s.id, s]));
  for (const n of planNodes(ha)) {
    // the clone lane bounds the clone task only (ctx.slot in run), not the whole step
    assert.equal(byId.get(`node:${n.name}:clone`)!.lane, undefined);
    assert.ok(byId.get(`node:${n.name}:vm`)!.needs.includes(`node:${n.name}:clone`));
    assert.ok(byId.get(`node:${n.name}:ssh`)!.needs.includes(`node:${n.name}:start`));
    for (const phase of ['clone', 'vm', 'start', 'ssh', 'k3s-binary', 'k3s'])
      assert.equal(byId.get(`node:${n.name}:${phase}`)!.group, n.name);
    // the binary goes on every node ahead of the ordered starts, outside any lane
    assert.equal(byId.get(`node:${n.name}:k3s-binary`)!.lane, undefined);
    assert.ok(byId.get(`node:${n.name}:k3s`)!.needs.includes(`node:${n.name}:k3s-binary`));
  }
  assert.equal(byId.get('node:ha-server-1:k3s')!.lane, undefined);
  // joining servers check and stage in parallel; their run holds a slot of the k3s-server-join lane from
  // starting k3s to Ready (e2e-ha checks the joins never overlap)
  for (const s of ['ha-server-2', 'ha-server-3']) {
    const k = byId.get(`node:${s}:k3s`)!;
    assert.equal(k.lane, undefined);
    assert.ok(k.needs.includes('node:ha-server-1:k3s'));
  }
  assert.equal(byId.get('node:ha-agent-2:k3s')!.lane, undefined);
  assert.ok(byId.get('node:ha-agent-2:k3s')!.needs.includes('node:ha-server-1:k3s'));
  assert.equal(LANE_LIMITS['k3s-server-join'], 1);
  assert.ok((LANE_LIMITS['pve-clone'] ?? 0) >= 2 && (LANE_LIMITS['pve-clone'] ?? 0) <= 3);
  // the rolling upgrade: after each node's k3s, servers one at a time, then agents (batches of 1 by default)
  assert.deepEqual(
    byId.get('cluster:ready')!.needs.sort(),
    planNodes(ha)
      .map((n) => `node:${n.name}:k3s-roll`)
      .sort(),
  );
  const roll = (n: string, steps = byId) => steps.get(`node:${n}:k3s-roll`)!.needs.filter((x) => x.endsWith(':k3s-roll'));
  assert.deepEqual(roll('ha-server-1'), []);
  assert.deepEqual(roll('ha-server-2'), ['node:ha-server-1:k3s-roll']);
  assert.deepEqual(roll('ha-server-3'), ['node:ha-server-2:k3s-roll']);
  // agents after the last server, not after one another: their checks run at once; a roll takes a slot
  // of the agent roll lane (cluster.upgrade.agentBatch at a time)
  assert.deepEqual(roll('ha-agent-1'), ['node:ha-server-3:k3s-roll']);
  assert.deepEqual(roll('ha-agent-2'), ['node:ha-server-3:k3s-roll']);
  // kubectl for a server's roll runs on another server (its API stays up while it restarts)
  assert.ok(byId.get('node:ha-server-1:k3s-roll')!.needs.includes('node:ha-server-2:k3s'));
  const batched = resolveConfig(
    { preset: 'ha', proxmox, nodes: { sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx0 me'] }, cluster: { upgrade: { agentBatch: 2 } } },
    { env: {} },
  );
  assert.equal(laneLimitsFor(ha)['k3s-roll-agent'], 1);
  assert.equal(laneLimitsFor(batched)['k3s-roll-agent'], 2);
  assert.equal(laneLimitsFor(batched)['pve-clone'], LANE_LIMITS['pve-clone']);
  // the full plan wires the node steps to the template
  const all = buildSteps(ha, { parallel: 8 });
  assert.ok(all.find((s) => s.id === 'node:ha-agent-1:clone')!.needs.includes('template:ready'));
});
