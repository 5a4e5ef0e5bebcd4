/**
 * cluster:kubeconfig: fetch /etc/rancher/k3s/k3s.yaml from the first server, point it at the VIP (or
 * the first server), name cluster/context/user after the cluster, write <clusterDir>/kubeconfig (0600)
 * and merge it into ~/.kube/config (backup first; --no-merge-kubeconfig skips that).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import { serverUrl } from '../../src/k3s/config.js';
import {
  mergeIntoUserKubeconfig,
  mergeKubeconfigs,
  parseKubeconfig,
  rewriteKubeconfig,
  writeKubeconfigFile,
} from '../../src/kubeconfig/kubeconfig.js';
import { stringify } from 'yaml';
import { clusterFiles } from '../../src/store/layout.js';
import { STEP, type KubeconfigOutputs } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, firstServer, withNode, type NodeSshOutputs } from './common.js';
import { recorded } from '../shared.js';

export function kubeconfigStep(config: Config, options: RunOptions): Step {
  const first = firstServer(config);
  const name = config.cluster.name;
  const merge = options.mergeKubeconfig !== false;
  const pathOf = (ctx: StepContext) => clusterFiles(ctx.clusterDir).kubeconfig;
  const serverOf = (ctx: StepContext) =>
    serverUrl(config.nodes.vip ?? recorded<NodeSshOutputs>(ctx, NODES_STEP.ssh(first.name), 'address').address);
  const home = (ctx: StepContext) => ctx.options.homeDir ?? homedir();
  const fetch = (ctx: StepContext) =>
    withNode(ctx, first.name, async (s) =>
      rewriteKubeconfig(await s.run('sudo cat /etc/rancher/k3s/k3s.yaml', { signal: ctx.signal }), { server: serverOf(ctx), name }),
    );
  const tryIt = (ctx: StepContext) => ctx.log(`Try it: kubectl --kubeconfig ${pathOf(ctx)} get nodes`);
  return {
    id: STEP.kubeconfig,
    title: 'Write the kubeconfig',
    group: 'cluster',
    needs: [STEP.clusterReady],
    inputs: { vip: config.nodes.vip, merge },
    describe: (ctx) =>
      `Write the kubeconfig for ${name} (server ${config.nodes.vip ? serverUrl(config.nodes.vip) : `https://<${first.name}>:6443`}) to ${pathOf(ctx)}${merge ? ` and merge it into ${join(home(ctx), '.kube', 'config')} (backup first)` : ''}`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const path = pathOf(ctx);
      if (!existsSync(path)) return { done: false };
      const want = await fetch(ctx);
      if (readFileSync(path, 'utf8') !== want) return { done: false, reason: `${path} is out of date` };
      let mergedInto: string | undefined;
      if (merge) {
        const user = join(home(ctx), '.kube', 'config');
        if (!existsSync(user)) return { done: false, reason: `${user} does not have ${name} yet` };
        const existing = readFileSync(user, 'utf8');
        const merged = stringify(mergeKubeconfigs(parseKubeconfig(existing, user), parseKubeconfig(want, path)), { lineWidth: 0 });
        if (merged !== existing) return { done: false, reason: `${user} does not have the current ${name} entry` };
        mergedInto = user;
      }
      tryIt(ctx);
      return { done: true, outputs: out(path, ctx, mergedInto), reason: `${path} is current` };
    },
    async run(ctx: StepContext) {
      const path = pathOf(ctx);
      const text = await fetch(ctx);
      if (await writeKubeconfigFile(path, text)) ctx.log(`Wrote ${path} (mode 0600, server ${serverOf(ctx)})`);
      let mergedInto: string | undefined;
      if (merge) {
        const r = await mergeIntoUserKubeconfig(home(ctx), text);
        mergedInto = r.path;
        if (r.changed)
          ctx.log(
            `Merged context "${name}" into ${r.path}${r.backup ? ` (previous file kept as ${r.backup})` : ''}; it is now the current context`,
          );
      }
      tryIt(ctx);
      return out(path, ctx, mergedInto);
    },
  };

  function out(path: string, ctx: StepContext, mergedInto?: string): KubeconfigOutputs & Record<string, unknown> {
    return { kubeconfigPath: path, server: serverOf(ctx), ...(mergedInto ? { mergedInto } : {}) };
  }
}
