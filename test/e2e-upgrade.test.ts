/**
 * Day 2, k3s upgrade (issue 11) on the simulator (preset ha: 3 servers, 3 agents, apps skipped): a new
 * cluster.k3sVersion rolls every node (servers one at a time, never two servers not Ready, etcd keeps
 * quorum), `status --json` shows the new running version, a second `up` changes nothing, a kill mid-roll
 * resumes, and the older version set back is reported, never installed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { DEMO_K3S_LATEST, DEMO_K3S_VERSION } from '../src/k3s/demo-mirror.js';
import { binaryVersion } from '../src/demo/node.js';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import { runCliProcess } from './helpers/cli.js';
import type { StatusDocument } from '../src/cli/status-view.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

const NODES = ['ha-server-1', 'ha-server-2', 'ha-server-3', 'ha-agent-1', 'ha-agent-2', 'ha-agent-3'];

/** Samples the demo cluster while a run goes: the most servers not Ready at once, and etcd quorum. */
function watchServers(e: E2eEnv): { stop(): { maxDown: number; quorumLost: boolean } } {
  let maxDown = 0;
  let quorumLost = false;
  const t = setInterval(() => {
    const cluster = e.guests.node('ha-server-1')?.cluster;
    if (!cluster) return;
    const down = [...cluster.nodes.values()].filter((n) => n.role === 'server' && !cluster.ready(n)).length;
    maxDown = Math.max(maxDown, down);
    if (!cluster.etcdHealthy()) quorumLost = true;
  }, 2);
  return {
    stop() {
      clearInterval(t);
      return { maxDown, quorumLost };
    },
  };
}

async function status(e: E2eEnv): Promise<StatusDocument> {
  const r = await runCliProcess(['status', '--json', '--cluster', 'ha', '--state-dir', e.stateDir], { cwd: e.stateDir });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusDocument;
}

const running = (e: E2eEnv) => new Map(NODES.map((n) => [n, e.guests.node('ha-server-1')!.cluster!.nodes.get(n)?.version]));
const installed = (e: E2eEnv) => new Map(NODES.map((n) => [n, binaryVersion(e.guests.node(n)!.fs.get('/opt/bin/k3s')?.data)]));

test('ha: k3s upgrade rolls node by node, resumes after a kill, never downgrades', async () => {
  env = await startE2e({ preset: 'ha', config: { cluster: { k3sVersion: DEMO_K3S_VERSION } } });
  const first = await env.up();
  assert.equal(first.status, 'succeeded', JSON.stringify(first.failed, null, 2));
  assert.ok([...running(env).values()].every((v) => v === DEMO_K3S_VERSION));
  const before = await status(env);
  assert.deepEqual(
    before.nodes.map((n) => n.name),
    NODES,
  );
  for (const n of before.nodes) {
    assert.equal(n.k3sRunning, DEMO_K3S_VERSION, n.name);
    assert.equal(n.k3sInstalled, DEMO_K3S_VERSION, n.name);
    assert.ok(n.vmid && n.pveNode && n.address?.startsWith('127.') && n.flatcar, JSON.stringify(n));
  }

  const newer = resolveConfig(deepMerge(env.raw, { cluster: { k3sVersion: DEMO_K3S_LATEST } }) as Record<string, unknown>, { env: {} });
  // killed while the second server rolls: its roll resumes on the next run
  let killed = false;
  const cut = await env.up({
    config: newer,
    onEvent: (e, abort) => {
      if (!killed && e.type === 'progress' && e.id === 'node:ha-server-2:k3s-roll' && /restarting/.test(e.message)) {
        killed = true;
        abort();
      }
    },
  });
  assert.ok(killed, `never reached the roll of ha-server-2: ${cut.status}`);
  assert.equal(cut.status, 'interrupted');
  assert.equal(running(env).get('ha-server-1'), DEMO_K3S_LATEST, 'server-1 rolled before the kill');
  assert.equal(running(env).get('ha-agent-1'), DEMO_K3S_VERSION, 'agents wait for the servers');

  const watch = watchServers(env);
  const mark = env.events.length;
  const resumed = await env.up({ config: newer });
  const seen = watch.stop();
  assert.equal(resumed.status, 'succeeded', JSON.stringify(resumed.failed, null, 2));
  assert.ok(seen.maxDown <= 1, `${seen.maxDown} servers were not Ready at once`);
  assert.equal(seen.quorumLost, false, 'etcd lost quorum during the roll');
  for (const [n, v] of running(env)) assert.equal(v, DEMO_K3S_LATEST, `${n} runs ${v}`);
  const cluster = env.guests.node('ha-server-1')!.cluster!;
  for (const n of cluster.nodes.values())
    assert.ok(!n.unschedulable && !n.annotations?.['flatcar-k3s.io/rolling-to'], `${n.name} left cordoned`);
  // servers one at a time, in order, then agents
  const rolled = env.events
    .slice(mark)
    .filter((e) => e.type === 'step' && /:k3s-roll$/.test(e.id) && e.status === 'running')
    .map((e) => (e as { id: string }).id);
  assert.deepEqual(rolled.slice(0, 2), ['node:ha-server-2:k3s-roll', 'node:ha-server-3:k3s-roll']);
  assert.deepEqual(rolled.slice(2).sort(), ['node:ha-agent-1:k3s-roll', 'node:ha-agent-2:k3s-roll', 'node:ha-agent-3:k3s-roll']);
  // agents roll cluster.upgrade.agentBatch (1) at a time: from "cordoning" to "uncordoned", never two at once
  let inRoll = 0;
  let maxAgentsRolling = 0;
  for (const e of env.events.slice(mark)) {
    if (e.type === 'progress' && /^cordoning and draining ha-agent-/.test(e.message))
      maxAgentsRolling = Math.max(maxAgentsRolling, ++inRoll);
    if (e.type === 'log' && /^ha-agent-\d+ runs k3s .* is uncordoned$/.test(e.line)) inRoll--;
  }
  assert.equal(maxAgentsRolling, 1, 'agents rolled one at a time');
  assert.equal(inRoll, 0, 'every agent that started its roll finished it');

  const after = await status(env);
  for (const n of after.nodes) {
    assert.equal(n.k3sRunning, DEMO_K3S_LATEST, n.name);
    assert.equal(n.k3sInstalled, DEMO_K3S_LATEST, n.name);
  }

  // a second up changes nothing
  const restarts = () => NODES.map((n) => env!.guests.node(n)!.units.get(n.includes('server') ? 'k3s' : 'k3s-agent')!.generation);
  const gens = restarts();
  const pve = env.sim.requests().length;
  const again = await env.up({ config: newer });
  assert.equal(again.status, 'succeeded');
  assert.deepEqual(env.changingSince(pve), []);
  assert.deepEqual(restarts(), gens, 'a second up restarted k3s');

  // the older version back: reported, never installed
  const older = resolveConfig(deepMerge(env.raw, { cluster: { k3sVersion: DEMO_K3S_VERSION } }) as Record<string, unknown>, { env: {} });
  const logMark = env.events.length;
  const back = await env.up({ config: older });
  assert.equal(back.status, 'succeeded', JSON.stringify(back.failed, null, 2));
  for (const [n, v] of installed(env)) assert.equal(v, DEMO_K3S_LATEST, `${n} got k3s ${v} back`);
  for (const [n, v] of running(env)) assert.equal(v, DEMO_K3S_LATEST, `${n} runs ${v}`);
  assert.deepEqual(restarts(), gens, 'a downgrade restarted k3s');
  const warned = env.events.slice(logMark).filter((e) => e.type === 'log' && e.level === 'warn' && /never downgrades/.test(e.line));
  assert.ok(warned.length >= NODES.length, 'each node is reported');
  assert.match((warned[0] as { line: string }).line, /Set cluster\.k3sVersion: v1\.34\.1\+k3s1/);
});
