/**
 * nodes:placement: which PVE host each VM goes to (nodes.placement: spread, pack or explicit hosts),
 * decided once and recorded; VMs that exist already stay where they are, so growing the layout places
 * only the new nodes.
 *
 * Proxmox clones to another host only from shared storage, and a VM reads its cicustom snippet from
 * the storage of the host it runs on. So when proxmox.storage.disks is not shared, every host that gets
 * VMs gets its own template (template:hosts) and VMs are linked clones of their host's template; when
 * proxmox.storage.snippets is not shared, each node's snippet goes to its own host. The log and `plan`
 * say which host gets what and why.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import { decidePlacement } from '../../src/config/placement.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { templateHost } from '../template/common.js';
import { NODES_STEP, type PlacementOutputs } from './common.js';
import { facts, splitTags } from '../shared.js';

export function placementStep(config: Config, _options: RunOptions): Step {
  const names = planNodes(config).map((n) => n.name);
  return {
    id: NODES_STEP.placement,
    title: 'Place the node VMs on Proxmox hosts',
    group: 'nodes',
    needs: [STEP.proxmoxConnect],
    inputs: { nodes: names, pveNodes: config.proxmox.nodes, storage: config.proxmox.storage, placement: config.nodes.placement },
    describe: (ctx) => {
      const rec = ctx.outputs<PlacementOutputs>(NODES_STEP.placement);
      if (rec && names.every((n) => rec.placement[n]))
        return `Keep the placement of ${names.length} VMs (${summary(rec.placement)}; ${rec.reason})`;
      const how =
        config.nodes.placement === 'pack'
          ? 'all on one host'
          : config.nodes.placement === 'spread'
            ? 'servers on different hosts, agents balanced'
            : 'the hosts nodes.placement names, the others spread';
      return `Decide which Proxmox host runs each of the ${names.length} VMs (${how}; on local disk storage each of those hosts gets its own template)`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const rec = ctx.outputs<PlacementOutputs>(NODES_STEP.placement);
      if (!rec || !names.every((n) => rec.placement[n]) || rec.templateHosts === undefined) return { done: false };
      const hosts = facts(ctx).pveNodes;
      if (!names.every((n) => hosts.includes(rec.placement[n]!)))
        return { done: false, reason: 'a recorded host is no longer in the list of PVE nodes' };
      return {
        done: true,
        outputs: { ...rec, placement: Object.fromEntries(names.map((n) => [n, rec.placement[n]!])) },
        reason: summary(rec.placement),
      };
    },
    async run(ctx: StepContext): Promise<PlacementOutputs> {
      const pve = await ctx.services.proxmox();
      const hosts = facts(ctx).pveNodes;
      const templateNode = templateHost(ctx);
      const plan = planNodes(config);
      // VMs that exist already (ours, by VMID, name and tags) keep their host.
      const existing = new Map<string, string>();
      for (const vm of await pve.vms()) {
        const tags = splitTags(vm.tags);
        const n = plan.find(
          (p) => (ctx.outputs<{ vmid?: number }>(NODES_STEP.clone(p.name))?.vmid ?? p.vmid) === vm.vmid && p.name === vm.name,
        );
        if (n && tags.includes('flatcar-k3s') && tags.includes(config.cluster.name)) existing.set(n.name, vm.node);
      }
      const storages = await pve.storages(templateNode);
      const shared = (id: string) => storages.find((s) => s.storage === id)?.shared ?? false;
      const disksShared = shared(config.proxmox.storage.disks);
      const snippetsShared = shared(config.proxmox.storage.snippets);
      const d = decidePlacement(plan, hosts, config.nodes.placement, existing);
      for (const w of d.warnings) ctx.log(w, 'warn');
      const placement: Record<string, string> = {};
      for (const n of plan) placement[n.name] = d.placement.get(n.name)!;
      const used = [...new Set(Object.values(placement))];
      // with shared disks one template serves every host; otherwise each host that gets VMs has its own
      const templateHosts = disksShared ? [templateNode] : [templateNode, ...hosts.filter((h) => h !== templateNode && used.includes(h))];
      const storageWhy =
        used.length < 2
          ? `one host (${used[0]}) runs every VM`
          : [
              disksShared
                ? `disks on shared '${config.proxmox.storage.disks}': one template on ${templateNode} serves ${used.join(', ')}`
                : `disks on '${config.proxmox.storage.disks}' are not shared, and Proxmox clones to another host only from shared storage: a template on each of ${templateHosts.join(', ')}`,
              snippetsShared
                ? `snippets on shared '${config.proxmox.storage.snippets}'`
                : `snippets on '${config.proxmox.storage.snippets}' are not shared: each node's snippet goes to its own host`,
            ].join('; ');
      const reason = `${d.reason}; ${storageWhy}`;
      ctx.log(`Placement: ${reason}`);
      for (const n of plan) ctx.log(`${n.name} → ${placement[n.name]}${existing.has(n.name) ? ' (exists there)' : ''}`);
      return { placement, templateNode, spread: used.length > 1, reason, templateHosts, disksShared, snippetsShared };
    },
  };
}

function summary(p: Record<string, string>): string {
  const by = new Map<string, number>();
  for (const h of Object.values(p)) by.set(h, (by.get(h) ?? 0) + 1);
  return [...by].map(([h, n]) => `${h}: ${n}`).join(', ');
}
