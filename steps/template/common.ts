/**
 * What the template steps share: the facts of proxmox:connect, the recorded release, names, tags and
 * the description that marks a VM as our template (version + Ignition hash + tool version).
 */
import type { Config } from '../../src/config/schema.js';
import { BugError, RemoteError, UserError } from '../../src/errors.js';
import { templateIgnition, ignitionJson, ignitionHash, shortHash } from '../../src/ignition/index.js';
import type { ProxmoxClient, PveVmResource } from '../../src/proxmox/types.js';
import { STEP } from '../ids.js';
import type { StepContext } from '../types.js';
import { facts, splitTags } from '../shared.js';

export const TEMPLATE_STEP = {
  release: 'template:release',
  image: 'template:image',
  snippet: 'template:snippet',
  vm: 'template:vm',
  ready: STEP.templateReady,
} as const;

export interface ReleaseOutputs {
  [k: string]: unknown;
  channel: string;
  arch: string;
  /** What the config asked for ("current" or a version). */
  requested: string;
  version: string;
  releaseDate: string;
  kernel?: string;
  systemd?: string;
  ignition?: string;
  imageUrl: string;
  digestsUrl: string;
  sha512: string;
}

export interface ImageOutputs {
  [k: string]: unknown;
  /** "local:import/flatcar-stable-4593.2.5-proxmoxve.qcow2" (or the iso volume on PVE < 8.4). */
  volid: string;
  mode: 'import' | 'iso';
  /** What scsi0's import-from gets: the volid, or on PVE < 8.4 the absolute path of the iso volume. */
  importFrom: string;
}

export interface SnippetOutputs {
  [k: string]: unknown;
  volid: string;
  path: string;
  ignitionHash: string;
  bytes: number;
}

export interface VmOutputs {
  [k: string]: unknown;
  vmid: number;
  node: string;
  name: string;
  ignitionHash: string;
}

export const templateHost = (ctx: StepContext): string => facts(ctx).pveNodes[0]!;

export function releaseOf(ctx: StepContext): ReleaseOutputs {
  const r = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
  if (!r?.version || !r.sha512) throw new BugError(`${TEMPLATE_STEP.release} has no recorded release`);
  return r;
}

/** The template's Ignition as uploaded (compact JSON) and its hash. */
export function templateSnippet(config: Config): { json: string; hash: string; hash12: string; file: string } {
  const json = ignitionJson(templateIgnition(config));
  const hash = ignitionHash(json);
  const hash12 = shortHash(hash);
  return { json, hash, hash12, file: `flatcar-k3s-${config.cluster.name}-template-${hash12}.ign` };
}

/** PVE tags (pattern [a-z0-9_][a-z0-9_\-+.]*), ";"-separated. */
export function templateTags(config: Config): string {
  return ['flatcar-k3s', config.cluster.name, 'template'].join(';');
}

export function isOurTemplateVm(vm: PveVmResource, config: Config): boolean {
  const tags = splitTags(vm.tags);
  return vm.type === 'qemu' && tags.includes('flatcar-k3s') && tags.includes(config.cluster.name) && tags.includes('template');
}

export interface TemplateDescription {
  cluster?: string;
  channel?: string;
  version?: string;
  ignitionHash?: string;
  tool?: string;
}

export function templateDescription(d: {
  cluster: string;
  channel: string;
  version: string;
  ignitionHash: string;
  toolVersion: string;
}): string {
  return [
    `flatcar-k3s template of cluster ${d.cluster}`,
    `flatcar: ${d.channel} ${d.version}`,
    `ignition: ${d.ignitionHash}`,
    `tool: flatcar-k3s ${d.toolVersion}`,
    'Nodes are linked clones of this template: do not delete it while they exist.',
  ].join('\n');
}

export function parseTemplateDescription(text: unknown): TemplateDescription {
  // Proxmox returns the description URL-decoded; older versions keep a leading "#" per line in the file.
  const s = typeof text === 'string' ? text : '';
  const pick = (re: RegExp) => re.exec(s)?.slice(1);
  const fl = pick(/^#?\s*flatcar:\s*([a-z]+)\s+(\d+\.\d+\.\d+)\s*$/m);
  return {
    cluster: pick(/template of cluster ([a-z0-9-]+)/)?.[0],
    channel: fl?.[0],
    version: fl?.[1],
    ignitionHash: pick(/^#?\s*ignition:\s*([0-9a-f]{12,64})\s*$/m)?.[0],
    tool: pick(/^#?\s*tool:\s*flatcar-k3s\s+(\S+)\s*$/m)?.[0],
  };
}

export interface FoundTemplate {
  vm: PveVmResource;
  config: Record<string, string | number>;
  description: TemplateDescription;
}

/** Our cluster's template VMs (tagged), with their config and parsed description. */
export async function ourTemplates(pve: ProxmoxClient, config: Config): Promise<FoundTemplate[]> {
  const vms = await pve.vms();
  const out: FoundTemplate[] = [];
  for (const vm of vms.filter((v) => isOurTemplateVm(v, config))) {
    const cfg = await pve.vmConfig(vm.node, vm.vmid);
    out.push({ vm, config: cfg, description: parseTemplateDescription(cfg.description) });
  }
  return out;
}

/** The template built from this release and this Ignition (any VMID), if one exists. */
export function matchingTemplate(found: FoundTemplate[], name: string, hash12: string): FoundTemplate | undefined {
  return found.find((t) => (t.vm.name ?? t.config.name) === name && t.description.ignitionHash === hash12);
}

export const hasDisk = (t: FoundTemplate): boolean => typeof t.config.scsi0 === 'string' && t.config.scsi0.length > 0;

/** The disk became a base volume (what linked clones need): base-<vmid>-disk-N on every storage type. */
export function isBaseDisk(scsi0: unknown, vmid: number): boolean {
  return typeof scsi0 === 'string' && new RegExp(`(^|[:/])base-${vmid}-disk-\\d+`).test(scsi0);
}

/**
 * Proxmox writes `template: 1` before its worker turns the disks into base volumes; a conversion that
 * failed or was cut off leaves a "template" nothing can be linked-cloned from.
 */
export const isHalfConverted = (t: FoundTemplate): boolean => t.vm.template && hasDisk(t) && !isBaseDisk(t.config.scsi0, t.vm.vmid);

/** VMs whose disks are linked clones of `vmid`'s base volumes (Proxmox names them base-<vmid>-disk-N). */
export async function linkedClonesOf(pve: ProxmoxClient, vmid: number): Promise<Array<{ vmid: number; name?: string; node: string }>> {
  const base = new RegExp(`(^|[:/])base-${vmid}-disk-\\d+`);
  const out: Array<{ vmid: number; name?: string; node: string }> = [];
  for (const vm of await pve.vms()) {
    if (vm.type !== 'qemu' || vm.vmid === vmid) continue;
    const cfg = await pve.vmConfig(vm.node, vm.vmid);
    const disks = Object.entries(cfg).filter(([k]) => /^(scsi|virtio|sata|ide|efidisk|tpmstate|unused)\d+$/.test(k));
    if (disks.some(([, v]) => typeof v === 'string' && base.test(v))) out.push({ vmid: vm.vmid, name: vm.name, node: vm.node });
  }
  return out;
}

/**
 * A VM config left locked by a task of an earlier (killed) run: while Proxmox still creates, imports or
 * converts it, its config says only `lock: create` and carries no name or tags yet. Wait until the lock
 * is gone (or the VM, when the task failed), then return the VM as it is now.
 */
export async function waitForUnlock(
  ctx: StepContext,
  pve: ProxmoxClient,
  vmid: number,
  timeoutMs = 30 * 60_000,
): Promise<PveVmResource | undefined> {
  const deadline = ctx.services.now() + timeoutMs;
  let logged = false;
  for (;;) {
    const vm = (await pve.vms()).find((v) => v.vmid === vmid);
    if (!vm?.lock) return vm;
    if (ctx.services.now() > deadline) {
      throw new RemoteError(`VM ${vmid} on ${vm.node} is still locked (${vm.lock}) after ${Math.round(timeoutMs / 60_000)} min`, {
        fix: `Look at its task in the Proxmox UI (${vm.node} → Task History). When no task runs for it any more, remove the stale lock with \`qm unlock ${vmid}\` on ${vm.node} and run again.`,
      });
    }
    if (!logged) ctx.log(`VM ${vmid} is locked (${vm.lock}), probably by a task of an earlier run: waiting for it to finish`);
    logged = true;
    ctx.progress(`Waiting for VM ${vmid} (lock: ${vm.lock})`);
    await ctx.services.sleep(1000, ctx.signal);
  }
}

/** "8.4.1" >= "8.4" (the one comparison, shared with the Proxmox client). */
export { pveVersionAtLeast as versionAtLeast } from '../../src/proxmox/version.js';

/** PVE 8.4 (libpve-storage-perl 8.3.6) is the first that downloads .qcow2 into `import` content. */
export const IMPORT_CONTENT_SINCE = '8.4';

/** Connected as root@pam with a password (a ticket): the only identity allowed absolute import-from paths. */
export function isRootPamTicket(config: Config): boolean {
  return !config.proxmox.tokenId && !config.proxmox.tokenSecret && config.proxmox.username === 'root@pam' && !!config.proxmox.password;
}

/**
 * Content types of a storage as the node sees it (GET /nodes/{node}/storage needs only Datastore.Audit,
 * unlike the datacenter storage definition).
 */
export async function storageContentTypes(pve: ProxmoxClient, node: string, storage: string, field: string): Promise<string[]> {
  const list = await pve.storages(node);
  const st = list.find((s) => s.storage === storage);
  if (!st) {
    throw new UserError(`The Proxmox storage '${storage}' does not exist on ${node} (or this login cannot see it)`, {
      field,
      fix: `Choose one of: ${list.map((s) => `${s.storage} (${s.content.join(',') || 'no content'})`).join(', ') || '(none visible)'}; or grant Datastore.Audit on /storage/${storage}.`,
    });
  }
  return st.content;
}

/** The storage lacks a content type: the fix keeps the existing list (pvesm set replaces it). */
export function missingContentError(storage: string, content: string, existing: string[], field: string, why: string): UserError {
  const list = [...existing.filter((c) => c !== content && c !== 'none'), content].join(',');
  return new UserError(
    `The Proxmox storage '${storage}' does not allow content type '${content}' (it allows: ${existing.join(', ') || 'nothing'}); ${why}`,
    {
      field,
      fix: `Enable it on the PVE host, keeping the existing types: pvesm set ${storage} --content ${list} (or Datacenter → Storage → ${storage} → Edit → Content), or choose another storage in ${field}. flatcar-k3s does not change storage settings by itself.`,
    },
  );
}

/** Task log lines carry percentages ("12.34% of 455.8 MiB"): report them as progress. */
export function progressFromLog(ctx: StepContext, what: string): (line: string) => void {
  return (line) => {
    ctx.log(line, 'debug');
    const m = /(\d{1,3}(?:\.\d+)?)\s*%/.exec(line);
    if (m) ctx.progress(`${what} ${m[1]}%`, Math.min(1, Number(m[1]) / 100));
  };
}
