/**
 * Counts the bytes this process writes to files under a directory (the bench's state directory),
 * whichever writer does it: fs.write / writeSync / writeFileSync / appendFileSync and FileHandle writes.
 * Named imports of node:fs see the wrappers through module.syncBuiltinESMExports().
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';

/** The CommonJS object behind node:fs/promises (its ESM named exports follow it after syncBuiltinESMExports). */
const fspCjs = createRequire(import.meta.url)('node:fs/promises') as typeof fsp;

const size = (data: unknown, length?: number): number =>
  typeof data === 'string' ? Buffer.byteLength(data) : ArrayBuffer.isView(data) ? (length ?? data.byteLength) : 0;

export function countStateWrites(
  dir: string,
  include: (path: string) => boolean = () => true,
): { bytes: number; writes: number; stop: () => void } {
  const root = resolve(dir) + '/';
  const counted = (p: unknown) => typeof p === 'string' && resolve(p).startsWith(root) && include(resolve(p));
  const fds = new Set<number>();
  const out = { bytes: 0, writes: 0, stop: () => {} };
  const add = (n: number) => {
    out.bytes += n;
    out.writes++;
  };
  const orig = {
    openSync: fs.openSync,
    closeSync: fs.closeSync,
    write: fs.write,
    writeSync: fs.writeSync,
    writeFileSync: fs.writeFileSync,
    appendFileSync: fs.appendFileSync,
  };
  fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (orig.openSync as (...a: unknown[]) => number)(p, ...rest);
    if (counted(p)) fds.add(fd);
    return fd;
  }) as typeof fs.openSync;
  fs.closeSync = ((fd: number) => {
    fds.delete(fd);
    orig.closeSync(fd);
  }) as typeof fs.closeSync;
  fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
    const n = (orig.writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
    if (fds.has(fd)) add(n);
    return n;
  }) as typeof fs.writeSync;
  fs.write = ((fd: number, ...rest: unknown[]) => {
    const cb = rest.pop() as (err: unknown, n: number, ...more: unknown[]) => void;
    (orig.write as (...a: unknown[]) => void)(fd, ...rest, (err: unknown, n: number, ...more: unknown[]) => {
      if (!err && fds.has(fd)) add(n);
      cb(err, n, ...more);
    });
  }) as typeof fs.write;
  fs.writeFileSync = ((p: unknown, data: unknown, ...rest: unknown[]) => {
    (orig.writeFileSync as (...a: unknown[]) => void)(p, data, ...rest);
    if (counted(p)) add(size(data));
  }) as typeof fs.writeFileSync;
  fs.appendFileSync = ((p: unknown, data: unknown, ...rest: unknown[]) => {
    (orig.appendFileSync as (...a: unknown[]) => void)(p, data, ...rest);
    if (counted(p)) add(size(data));
  }) as typeof fs.appendFileSync;
  syncBuiltinESMExports();

  // FileHandle: wrap open() so the handles to files under `dir` count their writes.
  const origOpen = fspCjs.open;
  const handles = new WeakSet<object>();
  fspCjs.open = (async (p: fs.PathLike, ...rest: unknown[]) => {
    const fh = await (origOpen as (...a: unknown[]) => Promise<fsp.FileHandle>)(p, ...rest);
    if (counted(p)) {
      handles.add(fh);
      const w = fh.write.bind(fh) as (...a: unknown[]) => Promise<{ bytesWritten: number }>;
      const wf = fh.writeFile.bind(fh) as (...a: unknown[]) => Promise<void>;
      (fh as { write: unknown }).write = async (...a: unknown[]) => {
        const r = await w(...a);
        add(r.bytesWritten);
        return r;
      };
      (fh as { writeFile: unknown }).writeFile = async (data: unknown, ...a: unknown[]) => {
        await wf(data, ...a);
        add(size(data));
      };
    }
    return fh;
  }) as typeof fsp.open;
  syncBuiltinESMExports();

  out.stop = () => {
    Object.assign(fs, orig);
    fspCjs.open = origOpen;
    syncBuiltinESMExports();
  };
  return out;
}
