/**
 * template:hosts: a template on every PVE host that gets VMs, when the disks' storage is not shared
 * (Proxmox clones to another host only from shared storage). Each host downloads and verifies the
 * image into its own storage (unless proxmox.storage.images is shared), gets the template's Ignition
 * snippet on its own snippets storage (unless shared) and its own template VM, with its own VMID and
 * the host in its name (flatcar-stable-4593-2-5-pve2). With shared disks, the one template of
 * template:ready serves every host and this step only records it.
 */
import { posix } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import { sh } from '../../src/shell/quote.js';
import { templateVmid } from '../../src/config/layout.js';
import { RemoteError, UserError } from '../../src/errors.js';
import type { ProxmoxClient } from '../../src/proxmox/types.js';
import { STEP, type TemplateOutputs } from '../ids.js';
import { NODES_STEP, type PlacementOutputs } from './common.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import {
  TEMPLATE_STEP,
  hasDisk,
  isBaseDisk,
  isHalfConverted,
  isOurTemplateVm,
  waitForUnlock,
  matchingTemplate,
  ourTemplates,
  progressFromLog,
  releaseOf,
  templateSnippet,
  type FoundTemplate,
  type ImageOutputs,
  type ReleaseOutputs,
  type SnippetOutputs,
} from '../template/common.js';
import { connectPveSsh } from '../template/pve-ssh.js';
import { facts, recorded } from '../shared.js';
import { hostTemplateName } from '../../src/flatcar/naming.js';
import { snippetPath } from '../template/snippet.js';
import { templateVmParams } from '../template/vm.js';

export const HOSTS_STEP = 'template:hosts';

export interface HostTemplate {
  vmid: number;
  name: string;
}

export interface HostTemplatesOutputs {
  [k: string]: unknown;
  /** PVE host → the template VMs there are cloned from */
  templates: Record<string, HostTemplate>;
}

/** The template VMs on `host` are cloned from (recorded by this step). */
export function templateFor(ctx: StepContext, host: string): HostTemplate & { node: string } {
  const rec = ctx.outputs<HostTemplatesOutputs>(HOSTS_STEP)?.templates ?? {};
  const own = rec[host];
  if (own) return { ...own, node: host };
  const t = ctx.outputs<TemplateOutputs & Record<string, unknown>>(STEP.templateReady)!;
  return { vmid: t.templateVmid, name: t.templateName, node: t.templateNode };
}

export function hostsStep(config: Config, _options: RunOptions): Step {
  const extraHosts = (ctx: StepContext): string[] => {
    const p = ctx.outputs<PlacementOutputs>(STEP.placement);
    return (p?.templateHosts ?? []).filter((h) => h !== p?.templateNode);
  };
  const primary = (ctx: StepContext): Record<string, HostTemplate> => {
    const t = ctx.outputs<TemplateOutputs & Record<string, unknown>>(STEP.templateReady)!;
    return { [t.templateNode]: { vmid: t.templateVmid, name: t.templateName } };
  };
  const ready = (t: FoundTemplate | undefined): boolean =>
    !!t && t.vm.template && !t.vm.lock && hasDisk(t) && !isHalfConverted(t) && isBaseDisk(t.config.scsi0, t.vm.vmid);
  const find = (found: FoundTemplate[], host: string, rel: ReleaseOutputs) =>
    matchingTemplate(
      found.filter((f) => f.vm.node === host),
      hostTemplateName(rel.channel, rel.version, host),
      templateSnippet(config).hash12,
    );

  return {
    id: HOSTS_STEP,
    title: 'A template on each host with VMs',
    group: 'template',
    needs: [STEP.proxmoxConnect, STEP.templateReady, STEP.placement, TEMPLATE_STEP.image, TEMPLATE_STEP.snippet],
    inputs: { disks: config.proxmox.storage.disks, images: config.proxmox.storage.images, snippets: config.proxmox.storage.snippets },
    describe: (ctx) => {
      const hosts = extraHosts(ctx);
      const p = ctx.outputs<PlacementOutputs>(STEP.placement);
      if (p && hosts.length === 0)
        return `One template serves every host (${p.disksShared ? `disks on shared ${config.proxmox.storage.disks}` : `all VMs on ${p.templateNode}`})`;
      return `Build the template on ${hosts.length ? hosts.join(', ') : 'every other host that gets VMs'} too (disks on ${config.proxmox.storage.disks} are local to each host): own image download, snippet, VMID`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const hosts = extraHosts(ctx);
      const templates = primary(ctx);
      if (hosts.length) {
        const rel = releaseOf(ctx);
        const found = await ourTemplates(await ctx.services.proxmox(), config);
        for (const h of hosts) {
          const t = find(found, h, rel);
          if (!ready(t)) return { done: false, reason: `no finished template on ${h} yet` };
          templates[h] = { vmid: t!.vm.vmid, name: t!.vm.name ?? '' };
        }
      }
      return {
        done: true,
        outputs: { templates } satisfies HostTemplatesOutputs,
        reason: hosts.length ? `templates on ${Object.keys(templates).join(', ')}` : 'one template serves every host',
      };
    },
    async run(ctx: StepContext): Promise<HostTemplatesOutputs> {
      const pve = await ctx.services.proxmox();
      const templates = primary(ctx);
      const rel = releaseOf(ctx);
      for (const h of extraHosts(ctx)) {
        // a create or conversion cut off by a killed run may still be running there: let it finish first
        for (const v of await pve.vms()) if (v.lock && v.node === h && isOurTemplateVm(v, config)) await waitForUnlock(ctx, pve, v.vmid);
        const existing = find(await ourTemplates(pve, config), h, rel);
        templates[h] = ready(existing) ? { vmid: existing!.vm.vmid, name: existing!.vm.name ?? '' } : await buildOn(ctx, pve, h, existing);
      }
      return { templates };
    },
  };

  /** Image, snippet, VM and conversion on one host; a half-built template of an earlier run is finished or rebuilt. */
  async function buildOn(ctx: StepContext, pve: ProxmoxClient, host: string, existing: FoundTemplate | undefined): Promise<HostTemplate> {
    const rel = releaseOf(ctx);
    const image = await ensureImage(ctx, pve, host);
    const snippet = await ensureSnippet(ctx, host);
    const name = hostTemplateName(rel.channel, rel.version, host);
    let vmid = existing?.vm.vmid;
    if (existing && (!hasDisk(existing) || isHalfConverted(existing))) {
      ctx.log(`Removing the unfinished template ${name} (VMID ${existing.vm.vmid}) on ${host} left by an earlier run`, 'warn');
      await wait(ctx, pve, host, await pve.deleteVm(host, existing.vm.vmid, { purge: true, destroyUnreferencedDisks: true }));
      existing = undefined;
    }
    if (!existing) {
      const start = Math.max(config.nodes.vmids.end, templateVmid(config)) + 1;
      vmid = (await pve.freeVmid({ start, end: start + 999 })) ?? undefined;
      if (vmid === undefined) {
        throw new UserError(`No free VMID in ${start}-${start + 999} for the template on ${host}`, {
          field: 'nodes.vmids',
          fix: 'Free a VMID above nodes.vmids.end, or remove old templates no node is cloned from.',
        });
      }
      const params = { ...templateVmParams(config, { vmid, rel, image, snippet }), name };
      ctx.log(
        `Creating ${name} (VMID ${vmid}) on ${host}: ${config.proxmox.storage.disks} is local to each host, so ${host} gets its own template (disk imported from ${image.importFrom})`,
      );
      ctx.progress(`Creating ${name} on ${host}`, 0);
      await wait(ctx, pve, host, await pve.createVm(host, params), `Importing the Flatcar disk on ${host}`);
    }
    ctx.progress(`Converting ${name} into a template`);
    await wait(ctx, pve, host, await pve.convertToTemplate(host, vmid!));
    const cfg = await pve.vmConfig(host, vmid!);
    if (!isBaseDisk(cfg.scsi0, vmid!)) {
      throw new RemoteError(`Proxmox reported the conversion of ${vmid} on ${host} as done, but its disk is no base volume`, {
        fix: `Run again: the half-converted template is rebuilt. If it persists, look at VM ${vmid} in the Proxmox UI.`,
      });
    }
    ctx.log(`Template ${name} (VMID ${vmid}) on ${host} is ready`);
    return { vmid: vmid!, name };
  }

  /** The image on the host's own images storage (downloaded and verified by that host), or the shared one. */
  async function ensureImage(ctx: StepContext, pve: ProxmoxClient, host: string): Promise<ImageOutputs> {
    const image = recorded<ImageOutputs>(ctx, TEMPLATE_STEP.image, 'image volume');
    const rel = releaseOf(ctx);
    const storage = config.proxmox.storage.images;
    const content = image.mode === 'import' ? 'import' : 'iso';
    if ((await pve.storageContent(host, storage, content)).some((v) => v.volid === image.volid)) return image;
    const file = image.volid.replace(/^[^:]+:[^/]+\//, '');
    ctx.log(`Proxmox ${host} downloads ${rel.imageUrl} → ${image.volid} (SHA-512 verified by Proxmox): ${storage} is local to each host`);
    const upid = await pve.downloadUrl(host, storage, {
      url: rel.imageUrl,
      content,
      filename: file,
      checksum: rel.sha512,
      'checksum-algorithm': 'sha512',
    });
    await wait(ctx, pve, host, upid, `Downloading Flatcar ${rel.version} on ${host}`);
    return image;
  }

  /** The template's Ignition snippet on the host's own snippets storage (over SFTP to that host). */
  async function ensureSnippet(ctx: StepContext, host: string): Promise<SnippetOutputs> {
    const snippet = recorded<SnippetOutputs>(ctx, TEMPLATE_STEP.snippet, 'snippet');
    if (ctx.outputs<PlacementOutputs>(STEP.placement)?.snippetsShared) return snippet;
    const s = templateSnippet(config);
    const path = snippetPath(facts(ctx).snippetsPath, s.file);
    const session = await connectPveSsh(ctx, host);
    try {
      const dir = posix.dirname(path);
      if (!(await session.stat(dir))) await session.run(sh`mkdir -p ${dir}`, { signal: ctx.signal });
      const st = await session.stat(path);
      if (st?.size !== Buffer.byteLength(s.json)) {
        ctx.log(`Writing ${path} on ${host} (${Buffer.byteLength(s.json)} bytes, Ignition ${s.hash12})`);
        await session.writeFile(path, s.json, 0o644);
      }
    } finally {
      await session.close();
    }
    return snippet;
  }
}

async function wait(ctx: StepContext, pve: ProxmoxClient, node: string, upid: string, what?: string): Promise<void> {
  await pve.waitTask(node, upid, { signal: ctx.signal, onLog: what ? progressFromLog(ctx, what) : (l) => ctx.log(l, 'debug') });
}
