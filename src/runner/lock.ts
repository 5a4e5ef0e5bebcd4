/**
 * One run per cluster: `<clusterDir>/lock` holds the pid of the run (created with 'wx').
 * A lock whose pid is gone (the run was killed) is taken over with a warning.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { clusterFiles } from '../store/layout.js';
import { UserError } from '../errors.js';

export interface ClusterLock {
  file: string;
  release(): void;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireLock(clusterDir: string, opts: { warn?: (line: string) => void; pid?: number } = {}): ClusterLock {
  mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
  const file = clusterFiles(clusterDir).lock;
  const pid = opts.pid ?? process.pid;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, `${pid}\n`);
      } finally {
        closeSync(fd);
      }
      return {
        file,
        release() {
          try {
            if (readFileSync(file, 'utf8').trim() === String(pid)) unlinkSync(file);
          } catch {}
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    } catch {
      continue; // removed meanwhile: try again
    }
    if (holder === pid) throw new UserError(`This process already holds the lock ${file}`);
    if (pidAlive(holder)) {
      throw new UserError(`Another flatcar-k3s run (pid ${holder}) is working on this cluster (lock file ${file})`, {
        fix: `Wait for it to finish, or stop it (kill ${holder}). If no such run exists, delete ${file}.`,
      });
    }
    opts.warn?.(`Taking over the stale lock ${file}: its run (pid ${Number.isNaN(holder) ? 'unknown' : holder}) is gone.`);
    // Rename (atomic) rather than unlink, so two runs taking over at once cannot both succeed.
    try {
      renameSync(file, `${file}.stale-${pid}`);
      unlinkSync(`${file}.stale-${pid}`);
    } catch {}
  }
  throw new UserError(`Could not take the lock ${file}`, { fix: `Delete ${file} if no flatcar-k3s run is active.` });
}
