/**
 * Faults on the way: Proxmox lock timeouts on clone (retried), a failed start task (the run fails with
 * Proxmox's words, the next run resumes), an SSH connection dropped during the k3s install (the next run
 * finds the work done), and a node whose host key changed (stopped with a warning naming both keys).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startE2e, type E2eEnv } from './e2e-harness.js';

const envs: E2eEnv[] = [];
after(async () => {
  for (const e of envs) await e.close();
});

test('clone lock timeouts are retried; a failed start task fails the run and the next run resumes', async () => {
  const env = await startE2e({ preset: 'homelab' });
  envs.push(env);
  env.sim.faults.add("task:qmclone#1=can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout");
  env.sim.faults.add("task:qmclone#2=can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout");
  // the template VM is not started (qmstart #1 is the first node)
  env.sim.faults.add('task:qmstart#1=start failed: QEMU exited with code 1');
  const r = await env.up();
  assert.equal(r.status, 'failed');
  assert.equal(r.failed.length, 1);
  assert.match(r.failed[0]!.id, /^node:homelab-.*:start$/);
  assert.match(r.failed[0]!.error.message + (r.failed[0]!.error.detail ?? ''), /QEMU exited with code 1/);
  assert.ok(
    env.events.some((e) => e.type === 'log' && /lock busy, retrying the clone/.test(e.line)),
    'lock errors were retried',
  );
  const again = await env.up();
  assert.equal(again.status, 'succeeded', JSON.stringify(again.failed, null, 2));
  const nodeVms = [...env.sim.state.vms.values()].filter((v) => !v.config.template);
  assert.equal(nodeVms.length, 3);
});

test('an SSH connection dropped during the install: the next run finds it installed; a changed host key stops the run', async () => {
  const env = await startE2e({ preset: 'homelab' });
  envs.push(env);
  env.guests.faults.dropConnection('homelab-agent-1', /flatcar-k3s-install-k3s\.sh --role agent/, 'after');
  const r = await env.up();
  assert.equal(r.status, 'failed');
  assert.deepEqual(
    r.failed.map((f) => f.id),
    ['node:homelab-agent-1:k3s'],
  );
  assert.match(r.failed[0]!.error.message, /connection to homelab-agent-1 was lost/);

  const again = await env.up();
  assert.equal(again.status, 'succeeded', JSON.stringify(again.failed, null, 2));
  const agent = env.guests.node('homelab-agent-1')!;
  assert.equal(agent.units.get('k3s-agent')!.journal.filter((l) => /Starting k3s agent/.test(l)).length, 1, 'k3s-agent started once');

  // The node now presents another host key: the run stops, naming the node and both fingerprints.
  const pinned = env.guests.node('homelab-agent-2')!.hostKey.fingerprint;
  const presented = await env.guests.faults.replaceHostKey('homelab-agent-2');
  const third = await env.up();
  assert.equal(third.status, 'failed');
  const f = third.failed.find((x) => x.id.startsWith('node:homelab-agent-2:'))!;
  assert.ok(f, JSON.stringify(third.failed));
  assert.ok(
    f.error.message.includes('homelab-agent-2') && f.error.message.includes(pinned) && f.error.message.includes(presented),
    f.error.message,
  );
  assert.match(f.error.message, /WARNING/);
});

test('a replaced cluster token (lost secrets file) stops with the reason instead of waiting forever', async () => {
  const env = await startE2e({ preset: 'homelab' });
  envs.push(env);
  assert.equal((await env.up()).status, 'succeeded');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const file = join(env.stateDir, 'clusters', 'homelab', 'secrets.json');
  const secrets = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  writeFileSync(file, JSON.stringify({ ...secrets, k3sToken: 'f'.repeat(64) }), { mode: 0o600 });
  const r = await env.up();
  assert.equal(r.status, 'failed');
  const f = r.failed.find((x) => x.id === 'node:homelab-server-1:k3s');
  assert.ok(f, JSON.stringify(r.failed));
  assert.match(f!.error.message, /refuses the cluster token/);
  assert.match(f!.error.fix ?? '', /secrets file/);
  assert.ok(!JSON.stringify(r.failed).includes('f'.repeat(64)), 'the token is not in the error');
});

test('an agent whose token the cluster refuses is not taken as joined because its unit is active', async () => {
  const env = await startE2e({ preset: 'homelab' });
  envs.push(env);
  assert.equal((await env.up()).status, 'succeeded');
  // The running cluster now answers to another token (as if it had been created from another state).
  const cluster = env.guests.node('homelab-server-1')!.cluster!;
  (cluster as { token: string }).token = 'e'.repeat(64);
  const { resolveConfig, deepMerge } = await import('../src/config/load.js');
  const grown = resolveConfig(deepMerge(env.raw, { nodes: { agents: { count: 3 } } }) as Record<string, unknown>, { env: {} });
  const r = await env.up({ config: grown });
  assert.equal(r.status, 'failed');
  const f = r.failed.find((x) => x.id === 'node:homelab-agent-3:k3s');
  assert.ok(f, JSON.stringify(r.failed));
  assert.match(f!.error.message, /homelab-agent-3 refuses the cluster token/);
  assert.ok(!cluster.nodes.has('homelab-agent-3'), 'the agent never joined');
});

test('an agent the cluster no longer lists is not "done": the next up restarts its agent and it registers again', async () => {
  const env = await startE2e({ preset: 'homelab' });
  envs.push(env);
  assert.equal((await env.up()).status, 'succeeded');
  const cluster = env.guests.node('homelab-server-1')!.cluster!;
  cluster.nodes.delete('homelab-agent-2'); // kubectl delete node homelab-agent-2
  const r = await env.up();
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));
  assert.ok(cluster.nodes.has('homelab-agent-2'), 'registered again');
  assert.ok(
    env.events.some((e) => e.type === 'log' && /homelab-agent-2 runs k3s-agent but homelab-server-1 does not list it/.test(e.line)),
  );
});
