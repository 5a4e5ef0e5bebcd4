/**
 * node:<name>:clone: clone the template (linked by default, full with nodes.fullClone) into the node's
 * VMID, named and described, on the template's host with `target=<pve node>` when the placement says
 * another host. Only this step runs in the 'pve-clone' lane: concurrent clones of one template hit
 * Proxmox's lock timeouts on slow storage; lock errors are retried (withLockRetry) and narrow the lane
 * (it adapts: LANE_CAPS in src/runner/driver.ts). A run killed
 * mid-clone finds the VM locked and waits for Proxmox's task instead of cloning twice.
 */
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { RemoteError, UserError } from '../../src/errors.js';
import { isVmidTaken } from '../../src/proxmox/errors.js';
import { withLockRetry } from '../../src/proxmox/retry.js';
import type { ProxmoxClient } from '../../src/proxmox/types.js';
import { STEP } from '../ids.js';
import type { CheckResult, LaneHold, RunOptions, Step, StepContext } from '../types.js';
import { toolVersion } from '../template/vm.js';
import { HOSTS_STEP, templateFor } from './host-templates.js';
import { LANES, NODES_STEP, nodeDescription, template, type NodeVmOutputs, type PlacementOutputs } from './common.js';
import { awaitTask, findVm, findVmAt, pollUntil, recorded, splitTags } from '../shared.js';

export type FoundVm = NonNullable<Awaited<ReturnType<typeof findVm>>>;

export function assertOurs(config: Config, node: PlannedNode, vm: FoundVm): void {
  const tags = splitTags(vm.tags);
  // A VM mid-clone has neither name nor tags yet; the caller waits for the lock first.
  const ours =
    vm.name === node.name && !vm.template && (tags.length === 0 || (tags.includes('flatcar-k3s') && tags.includes(config.cluster.name)));
  if (!ours) {
    throw new UserError(
      `VMID ${node.vmid} (planned for ${node.name}) is taken by another VM: "${vm.name ?? '?'}" on ${vm.node}${vm.template ? ' (a template)' : ''}`,
      {
        field: 'nodes.vmids',
        fix: `Choose a free VMID range in nodes.vmids (flatcar-k3s never touches VMs it did not create), or remove VM ${vm.vmid} yourself.`,
      },
    );
  }
}

export async function waitUnlocked(ctx: StepContext, pve: ProxmoxClient, pveNode: string, vmid: number): Promise<void> {
  await pollUntil(ctx, `VM ${vmid} to be unlocked`, async () => ((await pve.vmStatus(pveNode, vmid)).lock ? undefined : true), {
    timeoutMs: 15 * 60_000,
    fix: `Look at the running task of VM ${vmid} in the Proxmox UI; if it is stuck, \`qm unlock ${vmid}\` on ${pveNode}, then run again.`,
  });
}

export function cloneStep(config: Config, node: PlannedNode, _options: RunOptions): Step<{ absent?: boolean }> {
  const id = NODES_STEP.clone(node.name);
  const full = config.nodes.fullClone;
  return {
    id,
    title: `Clone the template as VM ${node.vmid}`,
    group: node.name,
    needs: [STEP.templateReady, HOSTS_STEP, NODES_STEP.placement],
    // The 'pve-clone' lane bounds the clone tasks only (ctx.slot in run): the check, the reads and the
    // state writes around them do not hold a slot.
    inputs: { vmid: node.vmid, full, storage: full ? config.proxmox.storage.disks : undefined },
    describe: (ctx) => {
      const host = ctx.outputs<PlacementOutputs>(NODES_STEP.placement)?.placement[node.name];
      return `${full ? 'Full' : 'Linked'} clone of the template as VM ${node.vmid} ${node.name}${host ? ` on ${host}` : ''}`;
    },
    async check(ctx: StepContext): Promise<CheckResult<{ absent?: boolean }>> {
      const pve = await ctx.services.proxmox();
      const vm = await findVmAt(ctx, pve, node.vmid, ctx.outputs<PlacementOutputs>(NODES_STEP.placement)?.placement[node.name]);
      if (!vm) return { done: false, reason: `VM ${node.vmid} does not exist`, plan: { absent: true } };
      if (vm.lock) return { done: false, reason: `VM ${node.vmid} is locked (${vm.lock})` };
      assertOurs(config, node, vm);
      const prev = ctx.outputs<NodeVmOutputs>(id);
      return {
        done: true,
        outputs: outputs(vm.node, prev?.pveNode === vm.node ? prev.createdAt : undefined),
        reason: `VM ${node.vmid} exists on ${vm.node}`,
      };
    },
    async run(ctx: StepContext, plan?: { absent?: boolean }): Promise<NodeVmOutputs> {
      const pve = await ctx.services.proxmox();
      const t = template(ctx);
      const host = recorded<PlacementOutputs>(ctx, NODES_STEP.placement, 'placement').placement[node.name]!;
      // the check has just found no VM (a VMID taken since is caught by the clone's answer)
      let vm = plan?.absent ? undefined : await findVmAt(ctx, pve, node.vmid, host);
      let createdAt = ctx.outputs<NodeVmOutputs>(id)?.createdAt;
      if (vm?.lock) {
        // Mid-clone (an interrupted run's task still going): wait for Proxmox to finish it.
        await waitUnlocked(ctx, pve, vm.node, vm.vmid);
        vm = await findVmAt(ctx, pve, node.vmid, vm.node, true);
        if (vm && createdAt === undefined) createdAt = ctx.services.now();
      }
      // the host's own template when disks are local to each host; else the one shared template
      const src = templateFor(ctx, host);
      if (!vm) {
        ctx.progress(`cloning ${src.name} → ${node.vmid}${host !== src.node ? ` on ${host}` : ''}`);
        const params = {
          newid: node.vmid,
          name: node.name,
          description: nodeDescription(config, node, t, toolVersion()),
          full,
          ...(host !== src.node ? { target: host } : {}),
          ...(full ? { storage: config.proxmox.storage.disks } : {}),
        };
        const clone = (hold?: LaneHold) =>
          withLockRetry(
            async () => {
              const upid = await pve.cloneVm(src.node, src.vmid, params);
              await awaitTask(ctx, pve, src.node, upid);
            },
            {
              signal: ctx.signal,
              onRetry: ({ attempt, delayMs }) => {
                // the clone lane narrows: fewer clones at once on storage this slow
                hold?.congested();
                ctx.log(`Proxmox lock busy, retrying the clone (attempt ${attempt + 1}) in ${Math.round(delayMs / 100) / 10} s`, 'warn');
              },
            },
          );
        try {
          await (ctx.slot ? ctx.slot(LANES.clone, clone) : clone());
        } catch (err) {
          // An earlier, interrupted run may have started this very clone: then it is ours and we wait for it.
          if (!isVmidTaken(err)) throw err;
        }
        createdAt = ctx.services.now();
        vm = await findVmAt(ctx, pve, node.vmid, host, true);
        if (vm?.lock) {
          await waitUnlocked(ctx, pve, vm.node, vm.vmid);
          vm = await findVmAt(ctx, pve, node.vmid, vm.node, true);
        }
        if (!vm)
          throw new RemoteError(`The clone of ${node.name} finished, but Proxmox lists no VM ${node.vmid}`, {
            fix: 'Look at the task log in the Proxmox UI, then run again.',
          });
        assertOurs(config, node, vm);
        ctx.log(
          `Cloned ${src.name} (VMID ${src.vmid} on ${src.node}) into ${node.name} (VMID ${node.vmid}) on ${vm.node}${full ? ' (full clone)' : ' (linked clone)'}`,
        );
      } else {
        assertOurs(config, node, vm);
      }
      return outputs(vm.node, createdAt);
    },
  };

  function outputs(pveNode: string, createdAt: number | undefined): NodeVmOutputs {
    return { vmid: node.vmid, pveNode, name: node.name, role: node.role, mac: node.mac, ...(createdAt ? { createdAt } : {}) };
  }
}
