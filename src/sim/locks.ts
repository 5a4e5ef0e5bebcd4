/**
 * flock-like locks with timeouts, as qemu-server (/var/lock/qemu-server/lock-N.conf) and pve-storage
 * (/var/lock/pve-manager/pve-storage-ID) use them. Failing to get one in time gives Proxmox's message.
 */
export type LockMode = 'shared' | 'exclusive';

interface Holder {
  mode: LockMode;
}
interface Waiter {
  mode: LockMode;
  grant: () => void;
}

export class LockTable {
  private held = new Map<string, Holder[]>();
  private waiting = new Map<string, Waiter[]>();

  private compatible(file: string, mode: LockMode): boolean {
    const h = this.held.get(file);
    if (!h || h.length === 0) return true;
    return mode === 'shared' && h.every((x) => x.mode === 'shared');
  }

  private take(file: string, mode: LockMode): () => void {
    const holder = { mode };
    const list = this.held.get(file) ?? [];
    list.push(holder);
    this.held.set(file, list);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const l = this.held.get(file) ?? [];
      l.splice(l.indexOf(holder), 1);
      if (l.length === 0) this.held.delete(file);
      this.wake(file);
    };
  }

  private wake(file: string): void {
    const q = this.waiting.get(file);
    if (!q) return;
    while (q.length && this.compatible(file, q[0]!.mode)) q.shift()!.grant();
    if (q.length === 0) this.waiting.delete(file);
  }

  /** Wait up to timeoutMs for the lock; rejects with "can't lock file '…' - got timeout". */
  acquire(file: string, mode: LockMode, timeoutMs: number): Promise<() => void> {
    if (this.compatible(file, mode) && !this.waiting.get(file)?.length) return Promise.resolve(this.take(file, mode));
    return new Promise((resolve, reject) => {
      const q = this.waiting.get(file) ?? [];
      const waiter: Waiter = {
        mode,
        grant: () => {
          clearTimeout(timer);
          resolve(this.take(file, mode));
        },
      };
      const timer = setTimeout(
        () => {
          const i = q.indexOf(waiter);
          if (i >= 0) q.splice(i, 1);
          reject(new Error(`can't lock file '${file}' - got timeout\n`));
          this.wake(file);
        },
        Math.max(0, timeoutMs),
      );
      timer.unref();
      q.push(waiter);
      this.waiting.set(file, q);
    });
  }

  /** Run fn while holding the lock. */
  async with<T>(file: string, mode: LockMode, timeoutMs: number, fn: () => Promise<T> | T): Promise<T> {
    const release = await this.acquire(file, mode, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  isHeld(file: string): boolean {
    return (this.held.get(file)?.length ?? 0) > 0;
  }
}

export const vmLockFile = (vmid: number): string => `/var/lock/qemu-server/lock-${vmid}.conf`;
export const storageLockFile = (storage: string): string => `/var/lock/pve-manager/pve-storage-${storage}`;
