/**
 * destroy:snippets — remove the nodes' Ignition snippets of this cluster from the PVE host(s) over SFTP
 * (Proxmox has no API for snippets): every file named flatcar-k3s-<cluster>-<cluster>-(server|agent)-N-<hash>.ign
 * the snippets storage lists, plus the ones `up` recorded. After the VMs, which reference them.
 */
import type { Config } from '../../src/config/schema.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, type SnippetsOutputs } from '../nodes/common.js';
import { facts } from '../shared.js';
import { DESTROY_STEP, fileOfVolid, nodeSnippetPattern, removeSnippetsOnHosts, snippetLeftOnHosts, snippetsByHost } from './common.js';

export function destroySnippetsStep(config: Config, _options: RunOptions, vmSteps: string[]): Step {
  const storage = config.proxmox.storage.snippets;
  const pattern = nodeSnippetPattern(config);
  const recorded = (ctx: StepContext) =>
    Object.values(ctx.outputs<SnippetsOutputs>(NODES_STEP.snippets)?.snippets ?? {}).map((s) => fileOfVolid(s.volid));
  const present = async (ctx: StepContext) =>
    snippetsByHost(await ctx.services.proxmox(), facts(ctx).pveNodes, storage, pattern, recorded(ctx));
  return {
    id: DESTROY_STEP.snippets,
    title: 'Remove the nodes’ Ignition snippets',
    group: 'nodes',
    needs: [STEP.proxmoxConnect, ...vmSteps],
    inputs: { storage },
    describe: (ctx) => {
      const files = recorded(ctx);
      return `Remove the nodes’ Ignition snippets from ${storage}:snippets over SSH (${files.length ? files.join(', ') : `flatcar-k3s-${config.cluster.name}-<node>-<hash>.ign`})`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const pve = await ctx.services.proxmox();
      const listed = await snippetsByHost(pve, facts(ctx).pveNodes, storage, pattern, []);
      if (listed.size)
        return {
          done: false,
          reason: `snippet(s) left: ${[...listed].map(([h, f]) => `${f.join(', ')}${h ? ` on ${h}` : ''}`).join('; ')}`,
        };
      // Recorded but not listed (a storage listing that hides them): ask the host itself.
      const rec = recorded(ctx).filter((f) => pattern.test(f));
      const left = rec.length ? await snippetLeftOnHosts(ctx, [[undefined, rec]]) : undefined;
      if (left) return { done: false, reason: left };
      return { done: true, reason: `no node snippet of ${config.cluster.name} is left in ${storage}:snippets` };
    },
    async run(ctx: StepContext) {
      return { removed: await removeSnippetsOnHosts(ctx, await present(ctx)) };
    },
  };
}
