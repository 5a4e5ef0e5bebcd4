/**
 * template:ready: convert the VM into a template (nodes are linked clones of it) and record
 * TemplateOutputs for the node steps.
 */
import type { Config } from '../../src/config/schema.js';
import { RemoteError } from '../../src/errors.js';
import { STEP, type TemplateOutputs } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { TEMPLATE_STEP, isBaseDisk, releaseOf, waitForUnlock, type VmOutputs } from './common.js';

export function readyStep(_config: Config, _options: RunOptions): Step {
  return {
    id: TEMPLATE_STEP.ready,
    title: 'Convert it to a template',
    group: 'template',
    needs: [STEP.proxmoxConnect, TEMPLATE_STEP.vm],
    inputs: {},
    describe: (ctx) => {
      const vm = ctx.outputs<VmOutputs>(TEMPLATE_STEP.vm);
      return `Convert ${vm ? `${vm.name} (VMID ${vm.vmid})` : 'the new VM'} into the template the nodes are linked clones of`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const vm = ctx.outputs<VmOutputs>(TEMPLATE_STEP.vm);
      if (!vm?.vmid) return { done: false };
      const pve = await ctx.services.proxmox();
      let st;
      try {
        st = await pve.vmStatus(vm.node, vm.vmid);
      } catch {
        return { done: false };
      }
      if (st.template !== true || st.lock || (st.name !== undefined && st.name !== vm.name)) return { done: false };
      if (!isBaseDisk((await pve.vmConfig(vm.node, vm.vmid)).scsi0, vm.vmid))
        return { done: false, reason: 'marked as template, but its disk is no base volume yet' };
      return { done: true, outputs: templateOutputs(ctx, vm), reason: `${vm.name} (VMID ${vm.vmid}) is a template` };
    },
    async run(ctx: StepContext): Promise<TemplateOutputs & Record<string, unknown>> {
      const vm = ctx.outputs<VmOutputs>(TEMPLATE_STEP.vm)!;
      const pve = await ctx.services.proxmox();
      await waitForUnlock(ctx, pve, vm.vmid);
      const st = await pve.vmStatus(vm.node, vm.vmid);
      if (st.template !== true) {
        if (st.status === 'running') {
          throw new RemoteError(`${vm.name} (VMID ${vm.vmid}) is running, so it cannot become a template`, {
            fix: `Stop it (qm stop ${vm.vmid} on ${vm.node}) or delete it, then run again: a template must never have booted, or its first-boot state (machine id, SSH host keys) would be shared by every node.`,
          });
        }
        ctx.progress(`Converting ${vm.name} into a template`);
        const upid = await pve.convertToTemplate(vm.node, vm.vmid);
        await pve.waitTask(vm.node, upid, { signal: ctx.signal, onLog: (l) => ctx.log(l, 'debug') });
      }
      const after = await pve.vmStatus(vm.node, vm.vmid);
      if (after.template !== true || !isBaseDisk((await pve.vmConfig(vm.node, vm.vmid)).scsi0, vm.vmid)) {
        throw new RemoteError(`Proxmox reported the conversion of ${vm.vmid} as done, but it is not a template with a base disk`, {
          fix: `Run again: flatcar-k3s rebuilds a half-converted template VM. If it persists, look at VM ${vm.vmid} in the Proxmox UI.`,
        });
      }
      ctx.log(`Template ${vm.name} (VMID ${vm.vmid}) on ${vm.node} is ready`);
      return templateOutputs(ctx, vm);
    },
  };
}

function templateOutputs(ctx: StepContext, vm: VmOutputs): TemplateOutputs & Record<string, unknown> {
  return {
    templateVmid: vm.vmid,
    templateNode: vm.node,
    templateName: vm.name,
    flatcarVersion: releaseOf(ctx).version,
    ignitionHash: vm.ignitionHash,
  };
}
