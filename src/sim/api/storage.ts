/** Storage endpoints: list, content, download-url, and the datacenter storage config. */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';
import { HttpError } from '../auth.js';
import { sleep } from '../latency.js';
import { storageLockFile } from '../locks.js';
import { CONTENT_DIRS, isFileStorage, versionAtLeast, type SimStorage } from '../state.js';
import { bool, str, type ApiRequest, type HandlerTable, type SimContext } from './context.js';
import { requireNode } from './cluster.js';

export function requireStorage(ctx: SimContext, req: ApiRequest): SimStorage {
  const id = str(req, 'storage')!;
  const st = ctx.state.storages.get(id);
  if (!st) throw new HttpError(500, `storage '${id}' does not exist`);
  return st;
}

/** Content types a storage type supports at this PVE version. */
function supportedContent(ctx: SimContext, st: SimStorage): string[] {
  if (st.type === 'lvmthin') return ['images', 'rootdir', 'none'];
  return [
    'images',
    'rootdir',
    'vztmpl',
    'iso',
    'backup',
    'snippets',
    'none',
    ...(versionAtLeast(ctx.state.version, '8.3') ? ['import'] : []),
  ];
}

function usage(ctx: SimContext, st: SimStorage, node: string): { used: number; avail: number; total: number } {
  let used = 0;
  if (isFileStorage(st)) for (const c of st.content) used += ctx.state.dirVolumes(st, node, c).reduce((a, v) => a + v.size, 0);
  for (const v of ctx.state.volumes.values())
    if (v.storage === st.storage && ctx.state.volumeVisible(v, node) && !v.base) used += v.size / 4;
  return { used: Math.floor(used), avail: Math.floor(st.total - used), total: st.total };
}

const FILENAME_IMPORT = /^[A-Za-z0-9.+=_-]+\.(ova|qcow2|raw|vmdk)$/;

function isLoopbackUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return /^127\./.test(h) || h === 'localhost' || h === '::1';
  } catch {
    return false;
  }
}

export const storageHandlers: HandlerTable = {
  'GET /nodes/{node}/storage': (ctx, req) => {
    const node = requireNode(ctx, req);
    if (!ctx.auth.canSee(req.auth)) return [];
    const content = str(req, 'content');
    const only = str(req, 'storage');
    return [...ctx.state.storages.values()]
      .filter((st) => !only || st.storage === only)
      .filter((st) => !content || content.split(/[,;\s]+/).some((c) => st.content.includes(c)))
      .map((st) => ({
        storage: st.storage,
        type: st.type,
        content: st.content.join(','),
        active: 1,
        enabled: 1,
        shared: st.shared ? 1 : 0,
        ...usage(ctx, st, node),
        used_fraction: usage(ctx, st, node).used / st.total,
      }));
  },

  'GET /storage/{storage}': (ctx, req) => {
    const st = requireStorage(ctx, req);
    return {
      storage: st.storage,
      type: st.type,
      content: st.content.join(','),
      digest: createHash('sha1').update(JSON.stringify(st)).digest('hex'),
      ...(st.path ? { path: st.path } : {}),
      ...(st.vgname ? { vgname: st.vgname, thinpool: st.thinpool } : {}),
      ...(isFileStorage(st) ? { 'prune-backups': 'keep-all=1' } : {}),
      ...(st.shared && st.type !== 'nfs' ? { shared: 1 } : {}),
      ...(st.server ? { server: st.server, export: st.export } : {}),
    };
  },

  'PUT /storage/{storage}': (ctx, req) => {
    const st = requireStorage(ctx, req);
    const content = str(req, 'content');
    if (content !== undefined) {
      const list = content.split(/[,;\s]+/).filter(Boolean);
      const ok = supportedContent(ctx, st);
      for (const c of list) {
        if (!ok.includes(c))
          throw new HttpError(400, 'Parameter verification failed.', { content: `storage does not support content type '${c}'` });
      }
      st.content = list.filter((c) => c !== 'none');
    }
    return null;
  },

  'GET /nodes/{node}/storage/{storage}/content': (ctx, req) => {
    const node = requireNode(ctx, req);
    const st = requireStorage(ctx, req);
    const content = str(req, 'content');
    const vmid = str(req, 'vmid');
    // block volumes (images) are in memory, per host unless the storage is shared; files are on disk
    const blocks = [...ctx.state.volumes.values()].filter(
      (v) => v.storage === st.storage && ctx.state.volumeVisible(v, node) && (!content || v.content === content),
    );
    const files = isFileStorage(st)
      ? st.content.filter((c) => c !== 'images' && (!content || c === content)).flatMap((c) => ctx.state.dirVolumes(st, node, c))
      : [];
    const vols = [...files, ...blocks];
    return vols
      .filter((v) => !vmid || String(v.vmid) === vmid)
      .map((v) => ({
        volid: v.volid,
        content: v.content,
        format: v.format,
        size: v.size,
        ctime: v.ctime,
        ...(v.vmid ? { vmid: v.vmid } : {}),
        ...(v.base ? { parent: v.base.replace(/^[^:]+:/, '') } : {}),
      }));
  },

  'POST /nodes/{node}/storage/{storage}/download-url': (ctx, req) => {
    const node = requireNode(ctx, req);
    const st = requireStorage(ctx, req);
    const content = str(req, 'content')!;
    const url = str(req, 'url')!;
    let filename = str(req, 'filename')!;
    // PVE < 8.4 (libpve-storage-perl < 8.3.6): download-url knows only iso and vztmpl
    if (!versionAtLeast(ctx.state.version, '8.4') && content === 'import') {
      throw new HttpError(400, 'Parameter verification failed.', {
        content: "value 'import' does not have a value in the enumeration 'iso, vztmpl'",
      });
    }
    if (!isFileStorage(st)) throw new HttpError(500, `can't upload to storage type '${st.type}', not a file based storage!`);
    if (!st.content.includes(content)) throw new HttpError(500, `storage '${st.storage}' is not configured for content-type '${content}'`);
    filename = filename.replace(/[^A-Za-z0-9_.+=-]/g, '_'); // PVE::Storage::normalize_content_filename
    const badName = (msg: string) => new HttpError(400, 'Parameter verification failed.', { filename: msg });
    if (content === 'iso' && !/\.(iso|img)$/i.test(filename)) throw badName('wrong file extension');
    if (content === 'vztmpl' && !/\.tar\.(gz|xz|zst|bz2)$/i.test(filename)) throw badName('wrong file extension');
    if (content === 'import' && !FILENAME_IMPORT.test(filename)) throw badName('invalid filename or wrong extension');
    const compression = str(req, 'compression');
    if (compression && content !== 'iso') throw new HttpError(500, `decompression is only supported for content type 'iso'`);
    const checksum = str(req, 'checksum');
    const algo = str(req, 'checksum-algorithm');
    const verifyCerts = bool(req, 'verify-certificates') ?? true;
    const dir = join(ctx.state.dirRoot(st, node)!, CONTENT_DIRS[content]!);
    const dest = join(dir, filename);
    const task = ctx.tasks.start(node, 'download', st.storage, req.auth!.authId, async ({ log, task: t }) => {
      log(`downloading ${url} to ${dest}`);
      if (!isLoopbackUrl(url)) {
        await sleep(ctx.latency.ms('download', node));
        const host = (() => {
          try {
            return new URL(url).hostname;
          } catch {
            return url;
          }
        })();
        throw new Error(`download failed: wget: unable to resolve host address '${host}'\n`);
      }
      const started = Date.now();
      // verify-certificates=0 is the caller's explicit choice (Proxmox passes --no-check-certificate to wget)
      const insecure = !verifyCerts && url.startsWith('https:') ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
      let data: Buffer;
      try {
        let res: Response;
        try {
          res = await fetch(url, insecure ? ({ dispatcher: insecure } as unknown as RequestInit) : {});
        } catch (e) {
          throw new Error(`download failed: ${(e as Error).message}\n`);
        }
        if (!res.ok) throw new Error(`download failed: ${res.status} ${res.statusText}\n`);
        data = Buffer.from(await res.arrayBuffer());
      } finally {
        await insecure?.close();
      }
      // bandwidth model: 1 s + size at 25 MB/s, minus the time the real fetch took
      const modelled = ctx.latency.ms('download', node, data.length / 25e6);
      await sleep(modelled - (Date.now() - started));
      log(`download of '${url}' to '${dest}' finished`);
      if (checksum && algo) {
        log(`calculating checksum of '${filename}.tmp.${t.pid}'...`);
        const got = createHash(algo).update(data).digest('hex');
        if (got.toLowerCase() !== checksum.toLowerCase())
          throw new Error(`checksum mismatch: got '${got}' != expect '${checksum.toLowerCase()}'\n`);
        log('checksum verified');
      }
      await ctx.locks.with(storageLockFile(st.storage), 'exclusive', ctx.latency.lockMs(10), () => {
        mkdirSync(dir, { recursive: true });
        const tmp = `${dest}.tmp.${t.pid}`;
        writeFileSync(tmp, data);
        try {
          renameSync(tmp, dest);
        } catch (e) {
          rmSync(tmp, { force: true });
          throw e;
        }
      });
      log(`size of '${filename}': ${data.length} bytes`);
    });
    return task.upid;
  },
};
