/**
 * Day 2, scale (issue 11) on the simulator (preset ha, apps skipped): raising nodes.agents.count adds
 * running VMs; lowering it removes exactly the agents beyond the count, highest first: their Node
 * objects, VMs and snippets; a kill in the middle of the scale-down resumes; `plan` lists what goes.
 */
import { test, after } from 'node:test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { planRun } from '../src/runner/session.js';
import { startE2e, type E2eEnv } from './e2e-harness.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

const agents = (e: E2eEnv) =>
  [...e.sim.state.vms.values()]
    .filter((v) => !v.config.template && /^ha-agent-/.test(String(v.config.name)))
    .map((v) => ({ name: String(v.config.name), vmid: v.vmid, running: v.status === 'running' }))
    .sort((a, b) => a.name.localeCompare(b.name));
const snippets = (e: E2eEnv) => readdirSync(join(e.sim.storageRoot, 'snippets')).filter((f) => /^flatcar-k3s-ha-ha-agent-/.test(f));

test('ha: agents 3 → 5 → 2; a kill mid scale-down resumes', async () => {
  env = await startE2e({ preset: 'ha' });
  assert.equal((await env.up()).status, 'succeeded');
  const at = (count: number) =>
    resolveConfig(deepMerge(env!.raw, { nodes: { agents: { count } } }) as Record<string, unknown>, { env: {} });

  const five = await env.up({ config: at(5) });
  assert.equal(five.status, 'succeeded', JSON.stringify(five.failed, null, 2));
  const grown = agents(env);
  assert.deepEqual(
    grown.map((a) => a.name),
    ['ha-agent-1', 'ha-agent-2', 'ha-agent-3', 'ha-agent-4', 'ha-agent-5'],
  );
  assert.ok(grown.every((a) => a.running));
  const cluster = env.guests.node('ha-server-1')!.cluster!;
  assert.equal(cluster.nodes.size, 8);
  assert.deepEqual(
    snippets(env)
      .map((f) => f.replace(/-[0-9a-f]{12}\.ign$/, ''))
      .sort(),
    [1, 2, 3, 4, 5].map((i) => `flatcar-k3s-ha-ha-agent-${i}`),
  );

  // plan lists exactly what goes
  const plan = await planRun({ config: at(2), stateDir: env.stateDir, options: { parallel: 8, yes: true } });
  const going = plan.lines.filter((l) => /^scale:.*:leave$/.test(l.id)).map((l) => l.id);
  assert.deepEqual(going, ['scale:ha-agent-5:leave', 'scale:ha-agent-4:leave', 'scale:ha-agent-3:leave']);
  assert.ok(plan.lines.some((l) => l.id === 'destroy:ha-agent-3:vm' && /Stop and delete VM/.test(l.describe)));

  // killed once agent-5 is gone and agent-4 is being drained
  let killed = false;
  const cut = await env.up({
    config: at(2),
    onEvent: (e, abort) => {
      if (!killed && e.type === 'step' && e.id === 'scale:ha-agent-4:leave' && e.status === 'running') {
        killed = true;
        abort();
      }
    },
  });
  assert.ok(killed);
  assert.equal(cut.status, 'interrupted');
  const resumed = await env.up({ config: at(2) });
  assert.equal(resumed.status, 'succeeded', JSON.stringify(resumed.failed, null, 2));
  assert.deepEqual(
    agents(env).map((a) => a.name),
    ['ha-agent-1', 'ha-agent-2'],
  );
  assert.deepEqual([...cluster.nodes.keys()].filter((n) => n.includes('agent')).sort(), ['ha-agent-1', 'ha-agent-2']);
  assert.deepEqual(grown.slice(0, 2), agents(env), 'the kept agents are the same VMs');
  const left = snippets(env);
  assert.ok(!left.some((k) => /ha-agent-[345]-/.test(k)), `snippets left: ${left.join(', ')}`);
  assert.ok(cluster.etcdHealthy());

  // nothing more to do, and plan no longer lists removals
  const mark = env.sim.requests().length;
  assert.equal((await env.up({ config: at(2) })).status, 'succeeded');
  assert.deepEqual(env.changingSince(mark), []);
  const after2 = await planRun({ config: at(2), stateDir: env.stateDir, options: { parallel: 8, yes: true } });
  assert.deepEqual(
    after2.lines.filter((l) => l.id.startsWith('scale:')),
    [],
  );
});

test('ha: servers 3 → 5 → 3 keep etcd healthy at every point; the agents keep their VMs and addresses', async () => {
  await env?.close();
  env = await startE2e({ preset: 'ha', config: { nodes: { agents: { count: 1 } } } });
  const e = env;
  const at = (count: number) => resolveConfig(deepMerge(e.raw, { nodes: { servers: { count } } }) as Record<string, unknown>, { env: {} });
  assert.equal((await e.up()).status, 'succeeded');
  const agent = () => [...e.sim.state.vms.values()].find((v) => v.config.name === 'ha-agent-1')!;
  const before = { vmid: agent().vmid, address: e.guests.node('ha-agent-1')!.address };
  let unhealthy = 0;
  let samples = 0;
  const t = setInterval(() => {
    const c = e.guests.node('ha-server-1')?.cluster;
    if (!c) return;
    samples++;
    if (!c.etcdHealthy()) unhealthy++;
  }, 2);
  try {
    const five = await e.up({ config: at(5) });
    assert.equal(five.status, 'succeeded', JSON.stringify(five.failed, null, 2));
    const cluster = e.guests.node('ha-server-1')!.cluster!;
    assert.deepEqual([...cluster.members].sort(), ['ha-server-1', 'ha-server-2', 'ha-server-3', 'ha-server-4', 'ha-server-5']);
    assert.deepEqual({ vmid: agent().vmid, address: e.guests.node('ha-agent-1')!.address }, before, 'ha-agent-1 moved');
    const three = await e.up({ config: at(3) });
    assert.equal(three.status, 'succeeded', JSON.stringify(three.failed, null, 2));
    assert.deepEqual([...cluster.members].sort(), ['ha-server-1', 'ha-server-2', 'ha-server-3']);
    assert.deepEqual([...cluster.nodes.keys()].sort(), ['ha-agent-1', 'ha-server-1', 'ha-server-2', 'ha-server-3']);
    const names = [...e.sim.state.vms.values()]
      .filter((v) => !v.config.template)
      .map((v) => String(v.config.name))
      .sort();
    assert.deepEqual(names, ['ha-agent-1', 'ha-server-1', 'ha-server-2', 'ha-server-3']);
  } finally {
    clearInterval(t);
  }
  assert.ok(samples > 0);
  assert.equal(unhealthy, 0, `etcd had no quorum in ${unhealthy} of ${samples} samples`);
});

test('a server is not removed when the others could not keep a quorum', async () => {
  const { refuseBelowQuorum } = await import('../steps/scale/scale-down.js');
  const node = (name: string, ready: boolean) => ({ name, ready, unschedulable: false, controlPlane: true, annotations: {} });
  assert.doesNotThrow(() => refuseBelowQuorum([node('s1', true), node('s2', true), node('s3', true)], 's3'));
  assert.throws(
    () => refuseBelowQuorum([node('s1', true), node('s2', false), node('s3', false), node('s4', true)], 's4'),
    /1 Ready of 3 members \(a quorum needs 2\)/,
  );
  assert.throws(() => refuseBelowQuorum([node('s1', true)], 's1'), /without any member/);
});
