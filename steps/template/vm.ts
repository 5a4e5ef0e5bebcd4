/**
 * template:vm: create the template VM from the downloaded image (import-from), with a cloud-init
 * drive whose user-data is the Ignition snippet. Named by version (flatcar-<channel>-<version>) and
 * marked by tags and a description holding the Ignition hash, so several versions live side by side
 * and an existing template of the same name and hash is reused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import { templateVmid } from '../../src/config/layout.js';
import { RemoteError, UserError } from '../../src/errors.js';
import { packageRoot } from '../../src/paths.js';
import type { ProxmoxClient, PveParams } from '../../src/proxmox/types.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import {
  TEMPLATE_STEP,
  hasDisk,
  isBaseDisk,
  isHalfConverted,
  isOurTemplateVm,
  linkedClonesOf,
  matchingTemplate,
  missingContentError,
  ourTemplates,
  progressFromLog,
  releaseOf,
  storageContentTypes,
  templateDescription,
  templateHost,
  templateSnippet,
  templateTags,
  waitForUnlock,
  type FoundTemplate,
  type ImageOutputs,
  type ReleaseOutputs,
  type SnippetOutputs,
  type VmOutputs,
} from './common.js';
import { recorded } from '../shared.js';
import { templateName } from '../../src/flatcar/naming.js';

/**
 * x86-64-v2-AES rather than `host`: it is Proxmox's default, runs on every x86-64 CPU of the last
 * decade, and lets nodes cloned from this template live-migrate between PVE hosts with different
 * CPUs (a `host` VM can only move to an identical CPU). Flatcar needs nothing beyond v2.
 */
export function templateCpu(arch: string): string {
  return arch === 'amd64' ? 'x86-64-v2-AES' : 'host';
}

let toolVersionCache: string | undefined;
export function toolVersion(): string {
  if (!toolVersionCache) {
    try {
      toolVersionCache =
        (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      toolVersionCache = 'unknown';
    }
  }
  return toolVersionCache;
}

/** The POST /nodes/{node}/qemu parameters of the template. */
export function templateVmParams(
  config: Config,
  d: { vmid: number; rel: ReleaseOutputs; image: ImageOutputs; snippet: SnippetOutputs },
): PveParams & { vmid: number } {
  const disks = config.proxmox.storage.disks;
  return {
    vmid: d.vmid,
    name: templateName(d.rel.channel, d.rel.version),
    description: templateDescription({
      cluster: config.cluster.name,
      channel: d.rel.channel,
      version: d.rel.version,
      ignitionHash: d.snippet.ignitionHash,
      toolVersion: toolVersion(),
    }),
    tags: templateTags(config),
    ostype: 'l26',
    cpu: templateCpu(config.flatcar.arch),
    cores: 2,
    memory: 2048,
    scsihw: 'virtio-scsi-single',
    scsi0: `${disks}:0,import-from=${d.image.importFrom},discard=on,iothread=1`,
    ide2: `${disks}:cloudinit`,
    boot: 'order=scsi0',
    serial0: 'socket',
    vga: 'serial0',
    agent: 'enabled=1',
    net0: `virtio,bridge=${config.proxmox.bridge}`,
    ipconfig0: 'ip=dhcp',
    cicustom: `user=${d.snippet.volid}`,
  };
}

export function vmStep(config: Config, options: RunOptions): Step {
  return {
    id: TEMPLATE_STEP.vm,
    title: 'Create the template VM',
    group: 'template',
    needs: [STEP.proxmoxConnect, TEMPLATE_STEP.release, TEMPLATE_STEP.image, TEMPLATE_STEP.snippet],
    inputs: {
      vmid: templateVmid(config),
      disks: config.proxmox.storage.disks,
      bridge: config.proxmox.bridge,
      recreate: options.recreateTemplate ?? false,
    },
    describe: (ctx) => {
      const rel = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
      const name = rel ? templateName(rel.channel, rel.version) : `flatcar-${config.flatcar.channel}-<version>`;
      return `${options.recreateTemplate ? 'Re-create' : 'Create (or reuse)'} the template VM ${name} (VMID ${templateVmid(config)}) on ${config.proxmox.storage.disks} with the Ignition snippet`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const rel = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
      if (!rel?.version) return { done: false };
      const s = templateSnippet(config);
      const pve = await ctx.services.proxmox();
      const match = matchingTemplate(await ourTemplates(pve, config), templateName(rel.channel, rel.version), s.hash12);
      if (!match || !hasDisk(match)) return { done: false };
      if (match.vm.lock) return { done: false, reason: `locked (${match.vm.lock})` };
      if (isHalfConverted(match)) return { done: false, reason: 'an earlier conversion to a template stopped half-way' };
      if (options.recreateTemplate && match.vm.template) return { done: false, reason: '--recreate-template' };
      return {
        done: true,
        outputs: vmOutputs(match, s.hash12),
        reason: `${match.vm.name} (VMID ${match.vm.vmid}) exists with Ignition ${s.hash12}`,
      };
    },
    async run(ctx: StepContext): Promise<VmOutputs> {
      const rel = releaseOf(ctx);
      const image = recorded<ImageOutputs>(ctx, TEMPLATE_STEP.image, 'image volume');
      const snippet = recorded<SnippetOutputs>(ctx, TEMPLATE_STEP.snippet, 'snippet');
      const node = templateHost(ctx);
      const pve = await ctx.services.proxmox();
      const name = templateName(rel.channel, rel.version);
      const hash12 = templateSnippet(config).hash12;

      // A create or conversion cut off by a killed run may still be running: let it finish first.
      for (const v of await pve.vms())
        if (v.lock && (v.vmid === templateVmid(config) || isOurTemplateVm(v, config))) await waitForUnlock(ctx, pve, v.vmid);

      let vmid: number | undefined;
      const match = matchingTemplate(await ourTemplates(pve, config), name, hash12);
      if (match) {
        const recreate = options.recreateTemplate === true && match.vm.template && !isHalfConverted(match);
        if (!recreate && hasDisk(match) && !isHalfConverted(match)) {
          ctx.log(`Reusing ${name} (VMID ${match.vm.vmid}): same Flatcar release and Ignition ${hash12}`);
          return vmOutputs(match, hash12);
        }
        if (recreate) await refuseWhileLinked(pve, match);
        ctx.log(
          recreate
            ? `--recreate-template: removing ${name} (VMID ${match.vm.vmid})`
            : `Removing ${name} (VMID ${match.vm.vmid}): an earlier run left it ${isHalfConverted(match) ? 'half converted to a template (its disk is no base volume)' : 'without its disk'}; building it again`,
          'warn',
        );
        await destroy(ctx, pve, match.vm.node, match.vm.vmid);
        vmid = match.vm.vmid;
      }
      vmid ??= await chooseVmid(ctx, pve);

      const disks = config.proxmox.storage.disks;
      const content = await storageContentTypes(pve, node, disks, 'proxmox.storage.disks');
      if (!content.includes('images'))
        throw missingContentError(
          disks,
          'images',
          content,
          'proxmox.storage.disks',
          'the template disk and its cloud-init drive are created there',
        );

      const params = templateVmParams(config, { vmid, rel, image, snippet });
      ctx.log(`Creating ${name} (VMID ${vmid}) on ${node}: disk imported from ${image.importFrom}, cloud-init user-data ${snippet.volid}`);
      ctx.progress(`Creating ${name}`, 0);
      const upid = await pve.createVm(node, params);
      try {
        await pve.waitTask(node, upid, { signal: ctx.signal, onLog: progressFromLog(ctx, `Importing the Flatcar disk into ${disks}`) });
      } catch (err) {
        throw explainCreateFailure(err, name, vmid, node);
      }
      return { vmid, node, name, ignitionHash: hash12 };
    },
  };

  async function chooseVmid(ctx: StepContext, pve: ProxmoxClient): Promise<number> {
    const preferred = templateVmid(config);
    const occupant = (await pve.vms()).find((v) => v.vmid === preferred);
    if (!occupant) return preferred;
    if (!isOurTemplateVm(occupant, config)) {
      throw new UserError(
        `VMID ${preferred} is taken by ${occupant.type === 'lxc' ? 'container' : 'VM'} ${occupant.name ? `"${occupant.name}" ` : ''}on ${occupant.node}, which is not a flatcar-k3s template of cluster ${config.cluster.name}`,
        {
          field: 'flatcar.templateVmid',
          fix: `Set flatcar.templateVmid (or nodes.vmids.start) to a free VMID; flatcar-k3s never touches VMs it did not create.`,
        },
      );
    }
    const unfinished = !occupant.template || !isBaseDisk((await pve.vmConfig(occupant.node, preferred)).scsi0, preferred);
    if (unfinished) {
      // Tagged as ours but never (fully) converted: a build cut off earlier (another release or Ignition). Nothing can be cloned from it.
      ctx.log(`Removing the unfinished template VM ${occupant.name ?? ''} (VMID ${preferred}) left by an earlier run`, 'warn');
      await destroy(ctx, pve, occupant.node, preferred);
      return preferred;
    }
    // An older template of ours (another release or Ignition): nodes may be cloned from it, keep it.
    const start = Math.max(config.nodes.vmids.end, preferred) + 1;
    const id = await pve.freeVmid({ start, end: start + 999 });
    if (id === null) {
      throw new UserError(
        `No free VMID in ${start}-${start + 999} for the new template (VMID ${preferred} holds the older template ${occupant.name ?? ''})`,
        {
          field: 'flatcar.templateVmid',
          fix: 'Set flatcar.templateVmid to a free VMID, or remove old templates no node is cloned from.',
        },
      );
    }
    ctx.log(
      `VMID ${preferred} holds the older template ${occupant.name ?? ''}; kept for the nodes cloned from it. The new template gets VMID ${id}.`,
    );
    return id;
  }
}

function vmOutputs(t: FoundTemplate, hash12: string): VmOutputs {
  return { vmid: t.vm.vmid, node: t.vm.node, name: t.vm.name ?? String(t.config.name ?? ''), ignitionHash: hash12 };
}

async function refuseWhileLinked(pve: ProxmoxClient, t: FoundTemplate): Promise<void> {
  const clones = await linkedClonesOf(pve, t.vm.vmid);
  if (clones.length === 0) return;
  const list = clones.map((c) => `${c.name ?? '(unnamed)'} (VMID ${c.vmid} on ${c.node})`).join(', ');
  throw new UserError(
    `Cannot re-create the template ${t.vm.name} (VMID ${t.vm.vmid}): ${clones.length} linked clone${clones.length === 1 ? '' : 's'} still depend${clones.length === 1 ? 's' : ''} on its disk: ${list}`,
    {
      field: '--recreate-template',
      fix: 'Run without --recreate-template (a changed Flatcar version or Ignition builds a new template beside the old one anyway), or remove those VMs first (or make them full clones: nodes.fullClone).',
    },
  );
}

async function destroy(ctx: StepContext, pve: ProxmoxClient, node: string, vmid: number): Promise<void> {
  const upid = await pve.deleteVm(node, vmid, { purge: true, destroyUnreferencedDisks: true });
  await pve.waitTask(node, upid, { signal: ctx.signal, onLog: (l) => ctx.log(l, 'debug') });
}

function explainCreateFailure(err: unknown, name: string, vmid: number, node: string): unknown {
  if (!(err instanceof RemoteError)) return err;
  const text = `${err.message}\n${err.detail ?? ''}`;
  let fix = `Read the task log above (or ${node} → Task History in the Proxmox UI); then run again: the half-created VM ${vmid} is removed and rebuilt.`;
  if (/Only root can pass arbitrary filesystem paths/i.test(text))
    fix =
      'Importing by path needs root@pam with its password: set proxmox.username: root@pam and proxmox.password, or upgrade Proxmox VE to 8.4.';
  else if (/no space|not enough space|out of space/i.test(text))
    fix = 'Free space on the disks storage (proxmox.storage.disks) or choose another one, then run again.';
  return new RemoteError(`Creating the template VM ${name} (VMID ${vmid}) on ${node} failed: ${err.message}`, {
    fix,
    detail: err.detail,
    cause: err,
  });
}
