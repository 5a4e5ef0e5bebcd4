/**
 * Day 2, a roll that fails (issue 11) on the simulator (preset homelab: 1 server, 2 agents): the first
 * agent whose drain fails stops the roll there, named with kubectl's error; the other agent is not
 * rolled (it says where the roll stopped) and keeps serving on its old k3s. The next `up` finishes the
 * cut-short node (uncordons it) and rolls the rest.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { DEMO_K3S_LATEST, DEMO_K3S_VERSION } from '../src/k3s/demo-mirror.js';
import { startE2e, type E2eEnv } from './e2e-harness.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

const AGENTS = ['homelab-agent-1', 'homelab-agent-2'];

test("homelab: a drain that fails stops the agents' roll at that node; the next up finishes it", async () => {
  env = await startE2e({ preset: 'homelab', config: { cluster: { k3sVersion: DEMO_K3S_VERSION } } });
  const first = await env.up();
  assert.equal(first.status, 'succeeded', JSON.stringify(first.failed, null, 2));
  const cluster = () => env!.guests.node('homelab-server-1')!.cluster!;

  // kubectl runs on the server: the first agent drain it is asked for fails, as a drain timeout does
  env.guests.faults.failCommand(
    'homelab-server-1',
    /kubectl drain homelab-agent-/,
    'error: unable to drain node: global timeout reached: 2m0s',
    1,
  );
  const newer = resolveConfig(deepMerge(env.raw, { cluster: { k3sVersion: DEMO_K3S_LATEST } }) as Record<string, unknown>, { env: {} });
  const cut = await env.up({ config: newer });
  assert.equal(cut.status, 'failed');
  assert.equal(cluster().nodes.get('homelab-server-1')!.version, DEMO_K3S_LATEST, 'the server rolled first');
  const failed = new Map(cut.failed.map((f) => [f.id, f.error.message]));
  const stoppedAt = AGENTS.find((a) => /drain|global timeout/.test(failed.get(`node:${a}:k3s-roll`) ?? ''));
  assert.ok(stoppedAt, `one agent's roll failed on its drain: ${JSON.stringify(cut.failed, null, 2)}`);
  const other = AGENTS.find((a) => a !== stoppedAt)!;
  assert.match(failed.get(`node:${other}:k3s-roll`) ?? '', new RegExp(`${other} was not rolled: the roll stopped at ${stoppedAt}`));
  assert.equal(cluster().nodes.get(other)!.version, DEMO_K3S_VERSION, 'the other agent keeps its k3s');
  assert.ok(!cluster().nodes.get(other)!.unschedulable, 'the other agent keeps serving (not cordoned)');
  assert.ok(cluster().nodes.get(stoppedAt)!.annotations?.['flatcar-k3s.io/rolling-to'], 'the cut-short node is marked, for the next up');
  assert.equal(cluster().nodes.get(stoppedAt)!.version, DEMO_K3S_VERSION, 'the failed agent was not restarted');

  const again = await env.up({ config: newer });
  assert.equal(again.status, 'succeeded', JSON.stringify(again.failed, null, 2));
  for (const a of AGENTS) {
    const n = cluster().nodes.get(a)!;
    assert.equal(n.version, DEMO_K3S_LATEST, `${a} rolled`);
    assert.ok(!n.unschedulable && !n.annotations?.['flatcar-k3s.io/rolling-to'], `${a} left cordoned or marked`);
  }
});
