/**
 * destroy deletes only what carries our tags: on the simulator (in process, through the real runner),
 * a VM at a planned VMID without our tags is left alone with a warning naming it, and the template it
 * is a linked clone of is kept with the clone named. Kubeconfig entries of another server are kept.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { planNodes } from '../src/config/layout.js';
import { RunEvents, type RunEvent } from '../src/events.js';
import { ClusterRun } from '../src/runner/session.js';
import type { RunResult } from '../src/runner/driver.js';
import { destroySteps, recordedNodes, storeForget } from '../steps/destroy/index.js';
import { readState } from '../src/runner/state.js';
import { clusterDirFor } from '../src/store/layout.js';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { withoutCluster } from '../steps/destroy/local.js';
import { startE2e, type E2eEnv } from './e2e-harness.js';

let env: E2eEnv | undefined;
let env2: E2eEnv | undefined;
after(async () => {
  await env?.close();
  await env2?.close();
});

async function destroy(e: E2eEnv, keepTemplate = false, config: Config = e.config): Promise<{ result: RunResult; events: RunEvent[] }> {
  const events: RunEvent[] = [];
  const ev = new RunEvents();
  ev.onEvent((x) => events.push(x));
  let run: ClusterRun | undefined;
  const state = storeForget(() => run!.store);
  const recorded = recordedNodes(config, readState(clusterDirFor(e.stateDir, config.cluster.name)));
  run = await ClusterRun.open({
    config,
    stateDir: e.stateDir,
    options: { parallel: 8, yes: true, homeDir: e.homeDir },
    env: {},
    events: ev,
    buildSteps: (c, o) => destroySteps(c, o, { keepTemplate, state, recorded }),
  });
  try {
    return { result: await run.execute(new AbortController().signal, 'destroy'), events };
  } finally {
    run.close();
  }
}

describe('destroy leaves foreign VMs alone', { timeout: 240_000 }, () => {
  it('a VM without our tags at a planned VMID stays, named in a warning; the template it is a clone of stays too', async () => {
    env = await startE2e({ preset: 'homelab' });
    const up = await env.up();
    assert.equal(up.status, 'succeeded', JSON.stringify(up.failed));
    const nodes = planNodes(env.config);
    const foreign = nodes.find((n) => n.role === 'agent')!;
    // Somebody else's VM now: same VMID, not our tags.
    const vm = env.sim.state.vms.get(foreign.vmid)!;
    vm.config.tags = 'database;prod';
    // …and busy with a task of its own (a backup): left alone at once, not waited for.
    vm.config.lock = 'backup';
    const template = [...env.sim.state.vms.values()].find((v) => v.config.template === 1)!;

    const { result, events } = await destroy(env);
    assert.equal(result.status, 'succeeded', JSON.stringify(result.failed));
    const left = [...env.sim.state.vms.keys()].sort((a, b) => a - b);
    assert.deepEqual(
      left,
      [template.vmid, foreign.vmid].sort((a, b) => a - b),
      'only the foreign VM and the template it depends on are left',
    );
    assert.equal(env.sim.state.vms.get(foreign.vmid)!.status, 'running', 'the foreign VM was not even stopped');
    const warnings = events
      .filter((e): e is Extract<RunEvent, { type: 'log' }> => e.type === 'log' && e.level === 'warn')
      .map((e) => e.line);
    assert.ok(
      warnings.some(
        (l) =>
          l.includes(`VMID ${foreign.vmid}`) &&
          l.includes(foreign.name) &&
          /left alone/.test(l) &&
          /lacks the tags flatcar-k3s, homelab/.test(l),
      ),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((l) => l.includes(`VMID ${template.vmid}`) && l.includes(`${foreign.vmid} ${foreign.name}`) && /is kept/.test(l)),
      warnings.join('\n'),
    );
    const skipped = events
      .filter((e) => e.type === 'step' && e.status === 'skipped')
      .map((e) => (e as { id: string }).id)
      .sort();
    assert.deepEqual(skipped, [`destroy:${foreign.name}:vm`, 'destroy:template'].sort());
    // the node snippets are gone; the kept template's snippet stays
    const snippets = readdirSync(`${env.sim.storageRoot}/snippets`).filter((f) => f.startsWith('flatcar-k3s-homelab-'));
    assert.deepEqual(
      snippets.map((f) => f.replace(/-[0-9a-f]{12}\.ign$/, '')),
      ['flatcar-k3s-homelab-template'],
    );

    // Once the foreign VM is gone (its owner deleted it), destroy takes the template too.
    assert.equal(env.sim.state.vms.get(foreign.vmid)!.config.lock, 'backup');
    env.sim.state.vms.delete(foreign.vmid);
    for (const v of [...env.sim.state.volumes.values()]) if (v.volid.includes(`vm-${foreign.vmid}-`)) env.sim.state.volumes.delete(v.volid);
    const again = await destroy(env);
    assert.equal(again.result.status, 'succeeded', JSON.stringify(again.result.failed));
    assert.deepEqual([...env.sim.state.vms.keys()], []);
    assert.deepEqual(
      readdirSync(`${env.sim.storageRoot}/snippets`).filter((f) => f.startsWith('flatcar-k3s-homelab-')),
      [],
    );
  });
});

describe('destroy after the config lost a node', { timeout: 240_000 }, () => {
  it('also deletes a node VM the state recorded but the config no longer plans', async () => {
    env2 = await startE2e({ preset: 'homelab' });
    const up = await env2.up();
    assert.equal(up.status, 'succeeded', JSON.stringify(up.failed));
    assert.equal(env2.sim.state.vms.size, 4);
    const fewer = resolveConfig(deepMerge(env2.raw, { nodes: { agents: { count: 1 } } }) as never, { env: {} });
    assert.equal(planNodes(fewer).length, 2);
    const { result, events } = await destroy(env2, false, fewer);
    assert.equal(result.status, 'succeeded', JSON.stringify(result.failed));
    assert.deepEqual([...env2.sim.state.vms.keys()], []);
    assert.ok(events.some((e) => e.type === 'step' && e.id === 'destroy:homelab-agent-2:vm' && e.status === 'done'));
  });
});

describe('kubeconfig entries', () => {
  const doc = (server: string) => ({
    clusters: [
      { name: 'homelab', cluster: { server } },
      { name: 'work', cluster: { server: 'https://w:6443' } },
    ],
    contexts: [
      { name: 'homelab', context: { cluster: 'homelab', user: 'homelab' } },
      { name: 'work', context: { cluster: 'work', user: 'work' } },
    ],
    users: [
      { name: 'homelab', user: {} },
      { name: 'work', user: {} },
    ],
    'current-context': 'homelab',
  });
  it('removes cluster, context and user named after the cluster when they point at its server', () => {
    const r = withoutCluster(doc('https://10.0.0.5:6443'), 'homelab', ['https://10.0.0.5:6443']);
    assert.deepEqual(r.removed, ['cluster homelab', 'context homelab', 'user homelab']);
    assert.deepEqual(
      r.doc.clusters!.map((c) => c.name),
      ['work'],
    );
    assert.equal(r.doc['current-context'], '');
  });
  it('keeps an entry of the same name that points at another server', () => {
    const d = doc('https://192.168.1.9:6443');
    const r = withoutCluster(d, 'homelab', ['https://10.0.0.5:6443']);
    assert.deepEqual(r.removed, []);
    assert.equal(r.doc, d);
  });
});
