/**
 * Applying VM options as qemu-server does: drives (new disks, import-from, cloud-init drives),
 * network MACs, root-only options, cicustom snippet checks. Used by create and config updates.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { HttpError, type AuthInfo } from '../auth.js';
import { formatSize, parseSize } from '../schema/formats.js';
import type { CompiledMethod } from '../schema/index.js';
import { parsePropertyString } from '../schema/validate.js';
import { versionAtLeast, type SimVm } from '../state.js';
import type { SimContext } from './context.js';

export const DRIVE_RE = /^(ide|sata|scsi|virtio|efidisk|tpmstate)(\d+)$/;
const GiB = 1024 ** 3;

/** A drive string split into its keys; `file` is the default key. */
export function parseDrive(route: CompiledMethod, key: string, value: string): Record<string, string | number> {
  const fmt = route.prop(key)?.format;
  if (fmt && typeof fmt === 'object') return parsePropertyString(fmt, value, key);
  const out: Record<string, string | number> = {};
  value.split(',').forEach((part, i) => {
    const kv = /^([^=]+)=(.*)$/.exec(part);
    if (kv) out[kv[1]!] = kv[2]!;
    else if (i === 0) out.file = part;
  });
  return out;
}

export function printDrive(d: Record<string, string | number>): string {
  const { file, ...rest } = d;
  return [String(file), ...Object.entries(rest).map(([k, v]) => `${k}=${v}`)].join(',');
}

export const newMac = (): string => 'BC:24:11:' + [...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');

/** One disk allocation or import the worker must perform. */
export interface DiskJob {
  key: string;
  storage: string;
  /** bytes of the new disk (0 with import-from: the source's size) */
  size: number;
  importFrom?: string;
  cloudinit?: boolean;
  rest: Record<string, string | number>;
}

/** Options only root@pam may set (qemu-server checks authuser eq 'root@pam'; tokens never qualify). */
export function checkRootOnly(auth: AuthInfo | undefined, key: string, value: string, drive?: Record<string, string | number>): void {
  const isRoot = auth?.kind === 'ticket' && auth.user === 'root@pam';
  if (isRoot) return;
  // qemu-server dies with these (HTTP 500), unlike raise_perm_exc (403) below
  if (key === 'args') throw new HttpError(500, "only root can set 'args' config");
  if (/^serial\d+$/.test(key) && value !== 'socket') throw new HttpError(500, `only root can set '${key}' config for real devices`);
  if (drive && typeof drive['import-from'] === 'string' && drive['import-from'].startsWith('/')) {
    throw new HttpError(403, 'Permission check failed (Only root can pass arbitrary filesystem paths.)');
  }
  if (drive && typeof drive.file === 'string' && drive.file.startsWith('/')) {
    throw new HttpError(403, 'Permission check failed (Only root can pass arbitrary filesystem paths.)');
  }
}

/** URI::Escape::uri_unescape: %XX sequences only, malformed ones left alone. */
export function uriUnescape(v: string): string {
  return Buffer.from(
    v.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

/** PVE::Tools::validate_ssh_public_keys (ssh-keygen -l on each non-blank line), approximated by parsing the key blob. */
export function validateSshPublicKeys(raw: string): void {
  for (const line of raw.split('\n')) {
    if (/^\s*$/.test(line)) continue;
    const m = /(?:^|\s)((?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/.exec(line);
    let ok = false;
    if (m) {
      const blob = Buffer.from(m[2]!, 'base64');
      const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
      ok = len > 0 && blob.subarray(4, 4 + len).toString('latin1') === m[1] && blob.length > 4 + len;
    }
    if (!ok) throw new HttpError(500, 'SSH public key validation error');
  }
}

/** Check a cicustom value: every volume must exist on a storage with `snippets` content. */
export function checkCicustom(ctx: SimContext, value: string, node: string): void {
  for (const part of value.split(',')) {
    const m = /^(meta|network|user|vendor)=(.+)$/.exec(part);
    if (!m) continue;
    const volid = m[2]!;
    const storeId = volid.split(':')[0]!;
    const st = ctx.state.storages.get(storeId);
    if (!st) throw new HttpError(500, `storage '${storeId}' does not exist`);
    if (!st.content.includes('snippets')) throw new HttpError(500, `storage '${storeId}' does not support content-type 'snippets'`);
    const path = ctx.state.volumePath(volid, node);
    if (!path || !existsSync(path)) throw new HttpError(500, `volume '${volid}' does not exist`);
  }
}

/** Contents of the cicustom user snippet, if any. */
export function readUserSnippet(ctx: SimContext, vm: SimVm): string | undefined {
  const cic = String(vm.config.cicustom ?? '');
  const m = /(?:^|,)user=([^,]+)/.exec(cic);
  if (!m) return undefined;
  const path = ctx.state.volumePath(m[1]!, vm.node);
  return path && existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * Validate and normalise options for a create or update. Returns the config changes and the disk jobs
 * the worker must run. Throws HttpError for what Proxmox refuses before forking.
 */
export function prepareOptions(
  ctx: SimContext,
  route: CompiledMethod,
  node: string,
  params: Record<string, string>,
  auth: AuthInfo | undefined,
): { changes: Record<string, string | number>; jobs: DiskJob[] } {
  const changes: Record<string, string | number> = {};
  const jobs: DiskJob[] = [];
  for (const [key, value] of Object.entries(params)) {
    const drive = DRIVE_RE.test(key) ? parseDrive(route, key, value) : undefined;
    checkRootOnly(auth, key, value, drive);
    if (drive) {
      const file = String(drive.file ?? '');
      const { file: _f, 'import-from': importFrom, ...rest } = drive;
      const cloud = /^([^:]+):cloudinit$/.exec(file);
      const alloc = /^([^:/]+):(\d+(?:\.\d+)?)$/.exec(file);
      if (importFrom !== undefined && !(alloc && Number(alloc[2]) === 0)) {
        throw new HttpError(400, 'Parameter verification failed.', {
          [key]: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>",
        });
      }
      if (cloud || alloc) {
        const storeId = (cloud ?? alloc)![1]!;
        const st = ctx.state.storages.get(storeId);
        if (!st) throw new HttpError(500, `storage '${storeId}' does not exist`);
        if (!st.content.includes('images'))
          throw new HttpError(400, 'Parameter verification failed.', { storage: `storage '${storeId}' does not support vm images` });
        if (importFrom !== undefined) checkImportSource(ctx, key, String(importFrom), node);
        jobs.push({
          key,
          storage: storeId,
          size: alloc ? Math.round(Number(alloc[2]) * GiB) : 4 * 1024 * 1024,
          importFrom: importFrom as string | undefined,
          cloudinit: !!cloud,
          rest,
        });
        continue;
      }
      if (file !== 'none' && file !== 'cdrom' && !file.startsWith('/')) {
        const isoPath = ctx.state.volumePath(file, node);
        if (!ctx.state.volumes.has(file) && !(isoPath && existsSync(isoPath))) throw new HttpError(500, `volume '${file}' does not exist`);
      }
      changes[key] = value;
      continue;
    }
    if (/^net\d+$/.test(key)) {
      const fmt = route.prop(key)?.format as Parameters<typeof parsePropertyString>[0];
      const net = parsePropertyString(fmt, value, key);
      const model = String(net.model);
      const mac = (net.macaddr as string | undefined) ?? (typeof net[model] === 'string' ? (net[model] as string) : undefined) ?? newMac();
      const { model: _m, macaddr: _a, [model]: _x, ...rest } = net;
      changes[key] = [`${model}=${mac.toUpperCase()}`, ...Object.entries(rest).map(([k, v]) => `${k}=${v}`)].join(',');
      continue;
    }
    if (key === 'cicustom') checkCicustom(ctx, value, node);
    if (key === 'sshkeys') validateSshPublicKeys(uriUnescape(value));
    // the config answers integers and booleans (0/1) as JSON numbers, everything else as strings
    const type = route.prop(key)?.type;
    changes[key] =
      (type === 'integer' || type === 'number' || type === 'boolean') && /^[+-]?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return { changes, jobs };
}

function checkImportSource(ctx: SimContext, key: string, src: string, node: string): void {
  if (src.startsWith('/')) {
    if (!existsSync(src)) throw new HttpError(500, `source '${src}' does not exist`);
    return;
  }
  const m = /^([^:]+):(.+)$/.exec(src)!;
  const st = ctx.state.storages.get(m[1]!);
  if (!st) throw new HttpError(500, `storage '${m[1]}' does not exist`);
  const kind = /^(iso|vztmpl|snippets|import|backup)\//.exec(m[2]!)?.[1];
  if (kind === 'import' && !versionAtLeast(ctx.state.version, '8.3')) {
    throw new HttpError(500, `unable to parse directory volume name '${m[2]}'`);
  }
  if (kind && kind !== 'import') {
    const need = versionAtLeast(ctx.state.version, '8.3') ? "needs to be 'images' or 'import'" : 'not an image';
    throw new HttpError(400, 'Parameter verification failed.', { [key]: `${src} has wrong type '${kind}' - ${need}` });
  }
  if (kind === 'import') {
    const path = ctx.state.volumePath(src, node);
    if (!path || !existsSync(path)) throw new HttpError(500, `volume '${src}' does not exist`);
    if (!st.content.includes('import')) throw new HttpError(500, `storage '${m[1]}' does not support content-type 'import'`);
    return;
  }
  if (!ctx.state.volumes.has(src)) throw new HttpError(500, `volume '${src}' does not exist`);
}

/** Size in bytes of an import source. */
export function importSourceSize(ctx: SimContext, src: string, node: string): number {
  const vol = ctx.state.volumes.get(src);
  if (vol) return vol.size;
  const path = src.startsWith('/') ? src : ctx.state.volumePath(src, node);
  if (!path) return 0;
  const st = ctx.state.storages.get(src.split(':')[0]!);
  const v = st ? ctx.state.dirVolumes(st, node, 'import').find((x) => x.volid === src) : undefined;
  return v?.size ?? statSync(path).size;
}

/** Bytes an import has to copy: the file size for file volumes, a quarter of the size for block volumes (thin). */
function importSourceAllocated(ctx: SimContext, src: string, node: string): number {
  const vol = ctx.state.volumes.get(src);
  if (vol) return vol.size / 4;
  const path = src.startsWith('/') ? src : ctx.state.volumePath(src, node);
  return path && existsSync(path) ? statSync(path).size : 0;
}

/** Run the disk jobs of a create/update: allocate volumes, imports take time. Returns config entries. */
export async function runDiskJobs(
  ctx: SimContext,
  vmid: number,
  node: string,
  jobs: DiskJob[],
  log: (l: string) => void,
  wait: (ms: number) => Promise<void>,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const job of jobs) {
    if (job.cloudinit) {
      const volid = `${job.storage}:vm-${vmid}-cloudinit`;
      ctx.state.volumes.set(volid, {
        volid,
        storage: job.storage,
        node,
        content: 'images',
        format: 'raw',
        size: 4 * 1024 * 1024,
        vmid,
        ctime: Math.floor(Date.now() / 1000),
      });
      log(`  Logical volume "vm-${vmid}-cloudinit" created.`);
      out[job.key] = printDrive({ file: volid, media: 'cdrom', ...job.rest });
      continue;
    }
    const name = ctx.state.nextDiskName(job.storage, vmid);
    const volid = `${job.storage}:${name}`;
    let size = job.size;
    if (job.importFrom) {
      size = importSourceSize(ctx, job.importFrom, node);
      log(`importing disk '${job.importFrom}' to VM ${vmid} ...`);
      // the model: 2 s + 10 s per allocated GB (a qcow2 file holds only its allocated data)
      await wait(ctx.latency.ms('importFrom', node, 10 * (importSourceAllocated(ctx, job.importFrom, node) / GiB)));
    }
    ctx.state.volumes.set(volid, {
      volid,
      storage: job.storage,
      node,
      content: 'images',
      format: 'raw',
      size,
      vmid,
      ctime: Math.floor(Date.now() / 1000),
    });
    log(`  Logical volume "${name}" created.`);
    if (job.importFrom) log(`Successfully imported disk as '${job.key}:${volid},size=${formatSize(size)}'`);
    out[job.key] = printDrive({ file: volid, ...job.rest, size: formatSize(size) });
  }
  return out;
}

export { parseSize, formatSize };
