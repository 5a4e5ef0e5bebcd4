/**
 * The one atomic file writer: temp file in the same directory, fsync, chmod to exactly `mode`, rename
 * over the target, fsync the directory. A crash (even SIGKILL or power loss) leaves either the old or
 * the new file, never half. Secrets files use the default mode 0600.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync, chmodSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as fsp from 'node:fs/promises';

let counter = 0;

/** `.<name>.<pid>.<n>.tmp` beside the target. */
function tempFor(path: string): { dir: string; tmp: string } {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { dir, tmp: join(dir, `.${basename(path)}.${process.pid}.${++counter}.tmp`) };
}

/** Whether `name` is a temp file the writer left for the target named `target` (a save a kill cut short). */
export const isAtomicTemp = (name: string, target: string): boolean =>
  name.startsWith(`.${target}.`) && /^\.\d+\.\d+\.tmp$/.test(name.slice(target.length + 1));

/** fsync a directory (a new or renamed entry in it survives a crash); ignored where refused. */
export function fsyncDirOf(dir: string): void {
  fsyncDir(dir);
}

function fsyncDir(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const { dir, tmp } = tempFor(path);
  const fd = openSync(tmp, 'w', mode);
  try {
    if (typeof data === 'string') writeSync(fd, data);
    else writeSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
  closeSync(fd);
  // The mode given to open() is masked by the umask; secrets files must be exactly `mode`.
  chmodSync(tmp, mode);
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
  fsyncDir(dir);
}

/**
 * The same write in two halves, so the slow part does not block the event loop: `prepare` writes and
 * fsyncs the temp file on libuv's threads; the returned `commit` renames it over the target and
 * fsyncs the directory (or `discard` drops it). The caller decides between them synchronously, so
 * renames happen in the order it chooses even when prepares overlap.
 */
export async function prepareFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<{ commit: () => Promise<void>; discard: () => void }> {
  const { dir, tmp } = tempFor(path);
  const fh = await fsp.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.chmod(mode);
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  const discard = () => {
    try {
      unlinkSync(tmp);
    } catch {}
  };
  return {
    commit: async () => {
      try {
        renameSync(tmp, path);
      } catch (err) {
        discard();
        throw err;
      }
      await fsp
        .open(dir, 'r')
        .then(
          (dh) => dh.sync().finally(() => dh.close()),
          () => {},
        )
        .catch(() => {
          // Some filesystems refuse fsync on directories; the rename is still atomic.
        });
    },
    discard,
  };
}

/** The whole write off the event loop (large files: downloaded binaries). */
export async function writeFileAtomicAsync(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await (await prepareFileAtomic(path, data, mode)).commit();
}
