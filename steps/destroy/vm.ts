/**
 * destroy:<node>:vm — delete the node's VM: the planned VMID and, if `up` recorded another one for
 * this node, that one too. Only a VM that carries our tags (flatcar-k3s and the cluster name) and the
 * node's name is deleted; anything else at those VMIDs is left alone, named in a warning.
 * check = "already gone?".
 */
import type { Config } from '../../src/config/schema.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, type NodeVmOutputs } from '../nodes/common.js';
import { findVm } from '../shared.js';
import { DESTROY_LANE, DESTROY_STEP, deleteVm, notOursBecause, settled, type FoundVm } from './common.js';

/** A node to delete: planned by the config, or recorded by an earlier `up` (a node since removed from the config). */
export interface DestroyTarget {
  name: string;
  vmid: number;
}

/** The VMs at the node's VMIDs: ours to delete, somebody else's, or locked by a task. */
interface Survey {
  ours: FoundVm[];
  foreign: Array<{ vm: FoundVm; why: string }>;
  locked: FoundVm[];
}

export function destroyVmStep(config: Config, node: DestroyTarget, _options: RunOptions): Step<Survey> {
  const vmidsOf = (ctx: StepContext): number[] => {
    const rec = ctx.outputs<NodeVmOutputs>(NODES_STEP.clone(node.name));
    return [...new Set([node.vmid, ...(rec?.vmid && rec.name === node.name ? [rec.vmid] : [])])];
  };
  const foreignLine = (vm: FoundVm, why: string) =>
    `VMID ${vm.vmid} on ${vm.node} ("${vm.name ?? '?'}") is not ${node.name} of cluster ${config.cluster.name} (${why}): left alone`;

  async function survey(ctx: StepContext, wait: boolean): Promise<Survey> {
    const pve = await ctx.services.proxmox();
    const out = { ours: [] as FoundVm[], foreign: [] as Array<{ vm: FoundVm; why: string }>, locked: [] as FoundVm[] };
    for (const vmid of vmidsOf(ctx)) {
      let vm = await findVm(ctx, pve, vmid, 0);
      // Somebody else's VM busy with its own task (backup, migration): not ours, no need to wait for it.
      const named = vm?.lock && vm.name ? notOursBecause(config, vm, node.name) : undefined;
      if (vm && named) {
        out.foreign.push({ vm, why: named });
        continue;
      }
      if (vm?.lock) {
        if (!wait) {
          out.locked.push(vm);
          continue;
        }
        ctx.log(`VM ${vmid} is locked (${vm.lock}), probably by a task of an interrupted run: waiting for it`);
        vm = await settled(ctx, pve, vm);
      }
      if (!vm) continue;
      const why = notOursBecause(config, vm, node.name);
      if (why) out.foreign.push({ vm, why });
      else out.ours.push(vm);
    }
    return out;
  }

  return {
    id: DESTROY_STEP.vm(node.name),
    title: `Delete VM ${node.vmid}`,
    group: node.name,
    needs: [STEP.proxmoxConnect],
    lane: DESTROY_LANE,
    inputs: { vmid: node.vmid, name: node.name },
    describe: (ctx) => {
      const rec = ctx.outputs<NodeVmOutputs>(NODES_STEP.clone(node.name));
      const ids = vmidsOf(ctx);
      return `Stop and delete VM ${ids.join(' and ')} ${node.name}${rec?.pveNode ? ` on ${rec.pveNode}` : ''} with its disks (only if tagged flatcar-k3s + ${config.cluster.name})`;
    },
    async check(ctx: StepContext): Promise<CheckResult<Survey>> {
      const s = await survey(ctx, false);
      if (s.locked.length) return { done: false, reason: `VM ${s.locked.map((v) => `${v.vmid} (lock: ${v.lock})`).join(', ')} is locked` };
      if (s.ours.length) return { done: false, reason: `${s.ours.map((v) => `VM ${v.vmid} on ${v.node}`).join(', ')} exists`, plan: s };
      if (s.foreign.length) {
        for (const f of s.foreign) ctx.log(`warning: ${foreignLine(f.vm, f.why)}`, 'warn');
        return { skip: true, reason: s.foreign.map((f) => foreignLine(f.vm, f.why)).join('; ') };
      }
      return { done: true, outputs: { deleted: vmidsOf(ctx) }, reason: `no VM ${node.name} at VMID ${vmidsOf(ctx).join(' or ')}` };
    },
    async run(ctx: StepContext, checked?: Survey) {
      const pve = await ctx.services.proxmox();
      // check's survey, unless a VM was locked then (this one waits for the lock); deleteVm re-reads each VM
      const s = checked && !checked.locked.length ? checked : await survey(ctx, true);
      for (const f of s.foreign) ctx.log(`warning: ${foreignLine(f.vm, f.why)}`, 'warn');
      for (const vm of s.ours) await deleteVm(ctx, pve, vm, `VM ${vm.vmid} ${node.name} on ${vm.node}`);
      return { deleted: s.ours.map((v) => v.vmid), leftAlone: s.foreign.map((f) => f.vm.vmid) };
    },
  };
}
