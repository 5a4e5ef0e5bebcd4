/**
 * Atomic file writes: temp file in the same directory, fsync, rename over the target, fsync the
 * directory. A crash (even SIGKILL or power loss) leaves either the old or the new file, never half.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync, chmodSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as fsp from 'node:fs/promises';

let counter = 0;

export function writeFileAtomic(path: string, data: string, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++counter}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
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
  renameSync(tmp, path);
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

/**
 * The same write in two halves, so the slow part does not block the event loop: `prepare` writes and
 * fsyncs the temp file on libuv's threads; the returned `commit` renames it over the target and
 * fsyncs the directory (or `discard` drops it). The caller decides between them synchronously, so
 * renames happen in the order it chooses even when prepares overlap.
 */
export async function prepareFileAtomic(path: string, data: string, mode = 0o600): Promise<{ commit: () => Promise<void>; discard: () => void }> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++counter}.tmp`);
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
  return {
    commit: async () => {
      renameSync(tmp, path);
      try {
        const dh = await fsp.open(dir, 'r');
        try {
          await dh.sync();
        } finally {
          await dh.close();
        }
      } catch {
        // Some filesystems refuse fsync on directories; the rename is still atomic.
      }
    },
    discard: () => {
      try {
        unlinkSync(tmp);
      } catch {}
    },
  };
}
