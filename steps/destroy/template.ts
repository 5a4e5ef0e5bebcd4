/**
 * destroy:template — delete this cluster's template VM(s) (tagged flatcar-k3s + cluster + template),
 * on every host (per-host templates on local storage too), and their Ignition snippet on every host, but only a template no linked clone still depends on: those are kept
 * and the clones named. The downloaded Flatcar image is never deleted (other clusters may use it).
 * Left out of the plan with --keep-template.
 */
import type { Config } from '../../src/config/schema.js';
import { STEP, type TemplateOutputs } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { facts, findVm } from '../shared.js';
import { TEMPLATE_STEP, linkedClonesOf, ourTemplates, type SnippetOutputs } from '../template/common.js';
import {
  DESTROY_STEP,
  deleteVm,
  fileOfVolid,
  removeSnippetsOnHosts,
  settled,
  snippetLeftOnHosts,
  snippetsByHost,
  templateSnippetPattern,
} from './common.js';

interface Survey {
  deletable: Array<{ vmid: number; node: string; name: string }>;
  kept: Array<{ vmid: number; node: string; name: string; clones: Array<{ vmid: number; name?: string; node: string }> }>;
  /** template snippet files by host (see snippetsByHost) */
  snippets: Map<string | undefined, string[]>;
}

export function destroyTemplateStep(config: Config, _options: RunOptions, vmSteps: string[]): Step {
  const storage = config.proxmox.storage.snippets;
  const pattern = templateSnippetPattern(config);
  const recordedSnippet = (ctx: StepContext) => {
    const v = ctx.outputs<SnippetOutputs & Record<string, unknown>>(TEMPLATE_STEP.snippet)?.volid;
    return typeof v === 'string' && pattern.test(fileOfVolid(v)) ? fileOfVolid(v) : undefined;
  };

  async function survey(ctx: StepContext): Promise<Survey> {
    const pve = await ctx.services.proxmox();
    const out: Survey = { deletable: [], kept: [], snippets: new Map() };
    for (const t of await ourTemplates(pve, config)) {
      const entry = { vmid: t.vm.vmid, node: t.vm.node, name: t.vm.name ?? String(t.config.name ?? '?') };
      const clones = await linkedClonesOf(pve, t.vm.vmid);
      if (clones.length) out.kept.push({ ...entry, clones });
      else out.deletable.push(entry);
    }
    const rec = recordedSnippet(ctx);
    out.snippets = await snippetsByHost(pve, facts(ctx).pveNodes, storage, pattern, rec ? [rec] : []);
    return out;
  }

  const keptLine = (k: Survey['kept'][number]) =>
    `template ${k.name} (VMID ${k.vmid}) is kept: linked clone${k.clones.length > 1 ? 's' : ''} ${k.clones.map((c) => `${c.vmid} ${c.name ?? '?'} on ${c.node}`).join(', ')} still depend${k.clones.length > 1 ? '' : 's'} on it`;

  return {
    id: DESTROY_STEP.template,
    title: 'Delete the template',
    group: 'template',
    needs: [STEP.proxmoxConnect, ...vmSteps],
    inputs: {},
    describe: (ctx) => {
      const t = ctx.outputs<TemplateOutputs & Record<string, unknown>>(STEP.templateReady);
      const which = t
        ? `${t.templateName} (VMID ${t.templateVmid}) on ${t.templateNode}`
        : `of ${config.cluster.name} (tagged flatcar-k3s + ${config.cluster.name} + template)`;
      return `Delete the template ${which} and its Ignition snippet, unless a linked clone still uses it; the downloaded Flatcar image stays (other clusters may use it)`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const s = await survey(ctx);
      if (s.deletable.length) return { done: false, reason: `${s.deletable.map((d) => `${d.name} (VMID ${d.vmid})`).join(', ')} exists` };
      if (s.kept.length) {
        for (const k of s.kept) ctx.log(`warning: ${keptLine(k)}`, 'warn');
        return { skip: true, reason: s.kept.map(keptLine).join('; ') };
      }
      const left = await snippetLeftOnHosts(ctx, s.snippets);
      if (left) return { done: false, reason: left };
      return { done: true, reason: `no template of ${config.cluster.name} is left` };
    },
    async run(ctx: StepContext) {
      const pve = await ctx.services.proxmox();
      const s = await survey(ctx);
      for (const k of s.kept) ctx.log(`warning: ${keptLine(k)}`, 'warn');
      for (const d of s.deletable) {
        const vm = await findVm(ctx, pve, d.vmid, 0).then((v) => (v ? settled(ctx, pve, v) : undefined));
        if (vm) await deleteVm(ctx, pve, vm, `template ${d.name} (VMID ${d.vmid}) on ${d.node}`);
      }
      // A kept template still boots nothing, but its config points at its snippet: keep that too.
      if (s.kept.length) return { deleted: s.deletable.map((d) => d.vmid), kept: s.kept.map((k) => k.vmid) };
      return { deleted: s.deletable.map((d) => d.vmid), removed: await removeSnippetsOnHosts(ctx, s.snippets) };
    },
  };
}
