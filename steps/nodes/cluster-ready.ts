/**
 * cluster:ready: every node of the layout Ready in Kubernetes, asked on the first server
 * (`sudo /opt/bin/k3s kubectl get nodes -o json`, by the run's one readiness watcher), showing which are still pending.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, firstServer, withNode } from './common.js';
import { getNodes, type KubeNode } from '../../src/k3s/kubectl.js';
import { rollStepId } from './k3s-roll.js';
import { readinessWatcher } from './readiness.js';

/** What the cluster said about each node when last asked (for `status`). */
export interface ObservedNodes {
  [name: string]: { k3s?: string; flatcar?: string; ready: boolean; at: number };
}

export function observe(nodes: KubeNode[] | undefined, at: number): ObservedNodes {
  const out: ObservedNodes = {};
  for (const n of nodes ?? [])
    out[n.name] = {
      ...(n.kubeletVersion ? { k3s: n.kubeletVersion } : {}),
      ...(n.flatcarVersion ? { flatcar: n.flatcarVersion } : {}),
      ready: n.ready,
      at,
    };
  return out;
}

export function clusterReadyStep(config: Config, _options: RunOptions): Step {
  const nodes = planNodes(config);
  const names = nodes.map((n) => n.name);
  const first = firstServer(config);
  const outputs = (observed: ObservedNodes) => ({
    nodes: names,
    servers: nodes.filter((n) => n.role === 'server').length,
    agents: nodes.filter((n) => n.role === 'agent').length,
    observed,
  });
  const pending = (ready: Map<string, boolean> | undefined) => names.filter((n) => !ready?.get(n));
  return {
    id: STEP.clusterReady,
    title: 'Wait for every node to be Ready',
    group: 'cluster',
    needs: names.map((n) => rollStepId(n)),
    inputs: { nodes: names },
    describe: () => `Wait until all ${names.length} nodes are Ready in Kubernetes`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const p = pending(await readinessWatcher(ctx, first.name).read());
      if (p.length) return { done: false, reason: `not Ready yet: ${p.join(', ')}` };
      const list = await withNode(ctx, first.name, (sess) => getNodes(sess, ctx.signal));
      return { done: true, outputs: outputs(observe(list, ctx.services.now())), reason: `all ${names.length} nodes are Ready` };
    },
    async run(ctx: StepContext) {
      const watcher = readinessWatcher(ctx, first.name);
      let last = '';
      // The run's one poll loop on the first server (the agents' joins wait on it too).
      await watcher.until(
        (nodes) => {
          const p = pending(nodes);
          const line = p.length
            ? `${names.length - p.length}/${names.length} Ready; waiting for ${p.length > 6 ? `${p.slice(0, 6).join(', ')} and ${p.length - 6} more` : p.join(', ')}`
            : '';
          if (line && line !== last) {
            ctx.progress(line, (names.length - p.length) / names.length);
            last = line;
          }
          return p.length === 0;
        },
        {
          signal: ctx.signal,
          timeoutMs: 15 * 60_000,
          what: 'every node to be Ready',
          fix: 'Log in to the pending nodes (ssh core@<address>) and look at `journalctl -u k3s-agent` / `journalctl -u k3s`; run again once fixed.',
          onTimeout: async () => `still not Ready: ${pending(await watcher.read()).join(', ')}`,
        },
      );
      const observed = observe(await withNode(ctx, first.name, (sess) => getNodes(sess, ctx.signal)), ctx.services.now());
      ctx.log(`All ${names.length} nodes are Ready`);
      return outputs(observed);
    },
  };
}
