/**
 * nodes:placement: which PVE host each VM goes to, decided once and recorded.
 *
 * Proxmox clones to another host only when the source disks are on shared storage (`target` is
 * refused otherwise), and a VM reads its cicustom snippet from the storage of the host it runs on.
 * So VMs are spread over the hosts (servers on different hosts, agents balanced: placeNodes) only
 * when both proxmox.storage.disks and proxmox.storage.snippets are shared; otherwise every VM is
 * created on the template's host, and the log says why and what to change. VMs that already exist
 * stay where they are, so growing the layout places only the new nodes.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import { decidePlacement } from '../../src/config/placement.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, template, type PlacementOutputs } from './common.js';
import { facts, splitTags } from '../shared.js';

export function placementStep(config: Config, _options: RunOptions): Step {
  const names = planNodes(config).map((n) => n.name);
  return {
    id: NODES_STEP.placement,
    title: 'Place the node VMs on Proxmox hosts',
    group: 'nodes',
    needs: [STEP.proxmoxConnect, STEP.templateReady],
    inputs: { nodes: names, pveNodes: config.proxmox.nodes, storage: config.proxmox.storage, placement: config.nodes.placement },
    describe: (ctx) => {
      const rec = ctx.outputs<PlacementOutputs>(NODES_STEP.placement);
      if (rec && names.every((n) => rec.placement[n])) return `Keep the placement of ${names.length} VMs (${summary(rec.placement)})`;
      return `Decide which Proxmox host runs each of the ${names.length} VMs (servers on different hosts when disks and snippets are on shared storage)`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const rec = ctx.outputs<PlacementOutputs>(NODES_STEP.placement);
      if (!rec || !names.every((n) => rec.placement[n])) return { done: false };
      const hosts = facts(ctx).pveNodes;
      if (!names.every((n) => hosts.includes(rec.placement[n]!))) return { done: false, reason: 'a recorded host is no longer in the list of PVE nodes' };
      return { done: true, outputs: { ...rec, placement: Object.fromEntries(names.map((n) => [n, rec.placement[n]!])) }, reason: summary(rec.placement) };
    },
    async run(ctx: StepContext): Promise<PlacementOutputs> {
      const pve = await ctx.services.proxmox();
      const hosts = facts(ctx).pveNodes;
      const t = template(ctx);
      const plan = planNodes(config);
      // VMs that exist already (ours, by VMID, name and tags) keep their host.
      const existing = new Map<string, string>();
      for (const vm of await pve.vms()) {
        const tags = splitTags(vm.tags);
        const n = plan.find((p) => p.vmid === vm.vmid && p.name === vm.name);
        if (n && tags.includes('flatcar-k3s') && tags.includes(config.cluster.name)) existing.set(n.name, vm.node);
      }
      let spread = false;
      let reason: string;
      if (hosts.length < 2) {
        reason = `one Proxmox host (${t.templateNode})`;
      } else {
        const storages = await pve.storages(t.templateNode);
        const disks = storages.find((s) => s.storage === config.proxmox.storage.disks);
        const snippets = storages.find((s) => s.storage === config.proxmox.storage.snippets);
        const notShared = [disks && !disks.shared ? `disks on '${disks.storage}'` : '', snippets && !snippets.shared ? `snippets on '${snippets.storage}'` : ''].filter(Boolean);
        if (notShared.length === 0 && disks && snippets) {
          spread = true;
          reason = `shared storage: spread over ${hosts.join(', ')}`;
        } else {
          reason = `${notShared.join(' and ')} ${notShared.length > 1 ? 'are' : 'is'} not shared, and Proxmox clones to another host only from shared storage (and a VM reads its snippet on its own host): every VM goes on the template's host ${t.templateNode}`;
          ctx.log(
            `${reason}. To spread the VMs over ${hosts.join(', ')}, put proxmox.storage.disks and proxmox.storage.snippets on shared storage (Ceph RBD/CephFS, NFS…).`,
            'warn',
          );
        }
      }
      let wanted = new Map(plan.map((n) => [n.name, t.templateNode]));
      if (spread) {
        const d = decidePlacement(plan, hosts, config.nodes.placement, existing);
        wanted = d.placement;
        reason = `${reason} (${d.reason})`;
        for (const w of d.warnings) ctx.log(w, 'warn');
      }
      const placement: Record<string, string> = {};
      for (const n of plan) placement[n.name] = existing.get(n.name) ?? wanted.get(n.name)!;
      for (const n of plan) ctx.log(`${n.name} → ${placement[n.name]}${existing.has(n.name) ? ' (exists there)' : ''}`);
      return { placement, templateNode: t.templateNode, spread, reason };
    },
  };
}

function summary(p: Record<string, string>): string {
  const by = new Map<string, number>();
  for (const h of Object.values(p)) by.set(h, (by.get(h) ?? 0) + 1);
  return [...by].map(([h, n]) => `${h}: ${n}`).join(', ');
}
