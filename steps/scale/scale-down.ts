/**
 * Fewer nodes in the config than an earlier `up` built: the nodes beyond the new counts leave, one at a
 * time in reverse order (the highest agent first, then the highest server). For each:
 *   scale:<name>:leave    cordon, drain, for a server take it out of etcd first (refused when the
 *                         servers left could not keep a quorum), delete its Node object;
 *   destroy:<name>:vm     stop and delete its VM, only when tagged as ours (as `destroy` does);
 *   scale:<name>:snippet  remove its Ignition snippet.
 * Removal is asked for unless --yes. A killed removal resumes: every check is "already gone?".
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import { UserError } from '../../src/errors.js';
import { ETCD_REMOVED_ANNOTATION, cordon, deleteNode, drain, getNodes, removeEtcdMember, type KubeNode } from '../../src/k3s/kubectl.js';
import type { SshSession } from '../../src/ssh/types.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, SavedRun, Step, StepContext } from '../types.js';
import { facts, pollUntil } from '../shared.js';
import { destroyVmStep } from '../destroy/vm.js';
import { removeSnippetsOnHosts, snippetsByHost } from '../destroy/common.js';
import { NODES_STEP, connectNode, firstServer } from '../nodes/common.js';

export const SCALE_STEP = {
  leave: (name: string) => `scale:${name}:leave`,
  snippet: (name: string) => `scale:${name}:snippet`,
} as const;

export interface LeavingNode {
  name: string;
  vmid: number;
  role: 'server' | 'agent';
  index: number;
}

/**
 * Nodes an earlier `up` built (their clone is recorded) that the config no longer plans and that were
 * not removed since, highest agent first, then highest server.
 */
export function leavingNodes(config: Config, saved: SavedRun | undefined): LeavingNode[] {
  const planned = new Set(planNodes(config).map((n) => n.name));
  const out: LeavingNode[] = [];
  for (const [id, rec] of Object.entries(saved?.steps ?? {})) {
    const m = /^node:(.+-(server|agent)-(\d+)):clone$/.exec(id);
    const o = rec.outputs as { vmid?: unknown; name?: unknown } | undefined;
    if (!m || planned.has(m[1]!) || typeof o?.vmid !== 'number' || o.name !== m[1]) continue;
    const gone = saved!.steps[SCALE_STEP.snippet(m[1]!)];
    if (gone?.status === 'done' && gone.at >= rec.at) continue;
    out.push({ name: m[1]!, vmid: o.vmid, role: m[2] as 'server' | 'agent', index: Number(m[3]) });
  }
  return out.sort((a, b) => (a.role === b.role ? b.index - a.index : a.role === 'agent' ? -1 : 1));
}

export function scaleDownSteps(config: Config, options: RunOptions, leaving: LeavingNode[]): Step[] {
  const steps: Step[] = [];
  let previous: string = STEP.clusterReady;
  for (const node of leaving) {
    const leave = leaveStep(config, options, node, previous, leaving);
    const vm = destroyVmStep(config, { name: node.name, vmid: node.vmid }, options);
    vm.needs.push(leave.id);
    const snippet = snippetStep(config, node, vm.id);
    steps.push(leave, vm, snippet);
    previous = snippet.id;
  }
  return steps;
}

function leaveStep(config: Config, options: RunOptions, node: LeavingNode, after: string, all: LeavingNode[]): Step {
  const api = firstServer(config);
  const withApi = async <T>(ctx: StepContext, fn: (s: SshSession) => Promise<T>): Promise<T> => {
    const s = await connectNode(ctx, api.name);
    try {
      return await fn(s);
    } finally {
      await s.close().catch(() => undefined);
    }
  };
  return {
    id: SCALE_STEP.leave(node.name),
    title: `Take ${node.name} out of the cluster`,
    group: node.name,
    needs: [after, NODES_STEP.ssh(api.name)],
    inputs: { name: node.name, vmid: node.vmid },
    describe: () =>
      `Remove ${node.name} (VM ${node.vmid}, beyond nodes.${node.role}s.count): cordon, drain${node.role === 'server' ? ', remove its etcd member (never below quorum)' : ''}, delete its Node object`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const list = await withApi(ctx, (s) => getNodes(s, ctx.signal)).catch(() => undefined);
      if (!list) return { done: false, reason: `the k3s API on ${api.name} does not answer` };
      if (list.some((n) => n.name === node.name)) return { done: false, reason: `${node.name} is in the cluster` };
      return { done: true, outputs: { removed: node.name }, reason: `${node.name} is not in the cluster` };
    },
    async run(ctx: StepContext) {
      await confirmRemoval(ctx, options, all);
      await withApi(ctx, async (s) => {
        const list = (await getNodes(s, ctx.signal)) ?? [];
        const me = list.find((n) => n.name === node.name);
        if (!me) return;
        if (node.role === 'server') refuseBelowQuorum(list, node.name);
        ctx.progress(`draining ${node.name}`);
        await cordon(s, node.name, ctx.signal);
        await drain(s, node.name, config.cluster.upgrade.drainTimeoutSeconds, ctx.signal);
        if (node.role === 'server' && !me.annotations[ETCD_REMOVED_ANNOTATION]) {
          ctx.progress(`removing ${node.name} from etcd`);
          await removeEtcdMember(s, node.name, ctx.signal);
          await pollUntil(
            ctx,
            `k3s to remove ${node.name}'s etcd member`,
            async () => {
              const n = (await getNodes(s, ctx.signal).catch(() => undefined))?.find((x) => x.name === node.name);
              return !n || n.annotations[ETCD_REMOVED_ANNOTATION] ? true : undefined;
            },
            { timeoutMs: 5 * 60_000, fix: `Look at \`journalctl -u k3s\` on ${api.name}; run "up" again once etcd is healthy.` },
          );
        }
        await deleteNode(s, node.name, ctx.signal);
        ctx.log(`${node.name} left the cluster (drained${node.role === 'server' ? ', etcd member removed' : ''}, Node deleted)`);
      });
      return { removed: node.name };
    },
  };
}

/** Ask once for the whole removal (unless --yes); refuse when nobody can answer. */
async function confirmRemoval(ctx: StepContext, options: RunOptions, all: LeavingNode[]): Promise<void> {
  if (options.yes) return;
  const what = all.map((n) => `${n.name} (VM ${n.vmid})`).join(', ');
  if (!ctx.services.confirm) {
    throw new UserError(`The config has fewer nodes than the cluster: ${what} would be drained and deleted`, {
      fix: 'Run "flatcar-k3s plan" to see what goes, then "up --yes" to remove them (or raise the counts back).',
    });
  }
  if (!(await ctx.services.confirm(`Remove ${what}: drain, delete the Node and the VM?`))) {
    throw new UserError(`Not removing ${what}`, { fix: 'Raise nodes.*.count back to keep them, or answer yes.' });
  }
}

/** etcd must keep a quorum of Ready members once the server is gone. */
export function refuseBelowQuorum(list: KubeNode[], name: string): void {
  const others = list.filter((n) => n.controlPlane && n.name !== name && !n.annotations[ETCD_REMOVED_ANNOTATION]);
  const ready = others.filter((n) => n.ready).length;
  const need = Math.floor(others.length / 2) + 1;
  if (others.length === 0 || ready < need) {
    throw new UserError(
      `Removing ${name} would leave etcd ${others.length === 0 ? 'without any member' : `with ${ready} Ready of ${others.length} members (a quorum needs ${need})`}`,
      {
        field: 'nodes.servers.count',
        fix: 'Bring the other servers back to Ready first (journalctl -u k3s on them), or keep this server.',
      },
    );
  }
}

function snippetStep(config: Config, node: LeavingNode, vmStep: string): Step {
  const storage = config.proxmox.storage.snippets;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^flatcar-k3s-${esc(config.cluster.name)}-${esc(node.name)}-[0-9a-f]{12}\\.ign$`);
  // on every host's snippets storage when it is not shared (each node's snippet is on its own host)
  const present = async (ctx: StepContext) => snippetsByHost(await ctx.services.proxmox(), facts(ctx).pveNodes, storage, pattern, []);
  return {
    id: SCALE_STEP.snippet(node.name),
    title: `Remove ${node.name}'s Ignition snippet`,
    group: node.name,
    needs: [vmStep, STEP.proxmoxConnect],
    inputs: { storage, name: node.name },
    describe: () =>
      `Remove ${node.name}'s Ignition snippet from ${storage}:snippets (flatcar-k3s-${config.cluster.name}-${node.name}-<hash>.ign)`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const left = [...(await present(ctx))].map(([host, files]) => `${files.join(', ')}${host ? ` on ${host}` : ''}`);
      return left.length
        ? { done: false, reason: `${left.join('; ')} still there` }
        : { done: true, outputs: { removed: [] }, reason: 'no snippet left' };
    },
    async run(ctx: StepContext) {
      const removed = await removeSnippetsOnHosts(ctx, await present(ctx));
      ctx.log(`Removed ${removed.length ? removed.join(', ') : 'nothing'} from ${storage}:snippets`);
      return { removed };
    },
  };
}
