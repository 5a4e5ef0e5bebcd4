/**
 * One SSH connection per host per run, shared by every check and run on that host.
 *
 * `get(target, connect)` hands out a lease: an SshSession whose calls go to the host's current
 * connection. The first caller connects (with its `connect`, e.g. connectWithRetry); later callers
 * reuse that connection. When it is gone (the node rebooted, the network dropped it, keep-alives
 * timed out), the next call through any lease connects again; a command in flight when it dropped
 * fails as before ("connection lost during …") and the step's check decides. `close()` on a lease
 * does nothing: the pool closes every connection at the end of the run (`closeAll`).
 *
 * Connections are keyed by user, host, port and pinned host key: a changed pin (a re-created VM)
 * gets a new connection. OpenSSH allows 10 channels per connection (MaxSessions): commands on one
 * host queue beyond MAX_CHANNELS at once (SFTP keeps one channel of its own).
 */
import type { ExecOptions, ExecResult, SshSession, SshTarget } from './types.js';

export const MAX_CHANNELS = 8;

export interface SshPoolStats {
  /** Connections opened (first contacts and reconnects). */
  connects: number;
  /** Leases served by a connection that was already open. */
  reuses: number;
}

interface Entry {
  key: string;
  current?: Promise<SshSession>;
  connect: () => Promise<SshSession>;
  /** Channel slots in use, and the callers waiting for one. */
  busy: number;
  queue: Array<() => void>;
}

export const poolKey = (t: Pick<SshTarget, 'username' | 'host' | 'port' | 'hostKeyFingerprint'>): string =>
  `${t.username}@${t.host}:${t.port}#${t.hostKeyFingerprint ?? ''}`;

/** False once the connection is known to be gone (sessions that cannot tell count as open). */
const isOpen = (s: SshSession): boolean => s.isOpen?.() ?? true;

export class SshPool {
  private entries = new Map<string, Entry>();
  readonly stats: SshPoolStats = { connects: 0, reuses: 0 };

  /** A lease on the shared connection to `target`; `connect` makes it when there is none (or it dropped). */
  async get(target: SshTarget, connect: () => Promise<SshSession>): Promise<SshSession> {
    const key = poolKey(target);
    let e = this.entries.get(key);
    if (!e) {
      e = { key, connect, busy: 0, queue: [] };
      this.entries.set(key, e);
    }
    e.connect = connect; // the latest caller's (its signal, its progress reporting)
    const had = e.current ? await e.current.then(isOpen, () => false) : false;
    const s = await this.live(e);
    if (had) this.stats.reuses++;
    return new Lease(this, e, s.hostKeyFingerprint);
  }

  /** Put a connection made elsewhere (first contact, trusting a new host key) into the pool. */
  adopt(target: SshTarget, session: SshSession): void {
    const key = poolKey({ ...target, hostKeyFingerprint: session.hostKeyFingerprint });
    const old = this.entries.get(key);
    const e: Entry = old ?? { key, busy: 0, queue: [], connect: async () => session };
    const previous = e.current;
    e.current = Promise.resolve(session);
    this.entries.set(key, e);
    void previous?.then((p) => (p !== session ? p.close() : undefined)).catch(() => undefined);
  }

  /** The entry's open connection, connecting (once, for all callers waiting) when there is none. */
  async live(e: Entry): Promise<SshSession> {
    const cur = e.current ? await e.current.catch(() => undefined) : undefined;
    if (cur && isOpen(cur)) return cur;
    if (e.current && cur === undefined) e.current = undefined; // a failed connect: try again
    if (e.current && cur && !isOpen(cur)) e.current = undefined;
    if (!e.current) {
      this.stats.connects++;
      const p = e.connect();
      e.current = p;
      p.catch(() => {
        if (e.current === p) e.current = undefined;
      });
    }
    return e.current;
  }

  async withChannel<T>(e: Entry, fn: (s: SshSession) => Promise<T>): Promise<T> {
    if (e.busy >= MAX_CHANNELS) await new Promise<void>((r) => e.queue.push(r));
    else e.busy++;
    try {
      return await fn(await this.live(e));
    } finally {
      const next = e.queue.shift();
      if (next)
        next(); // the slot passes on
      else e.busy--;
    }
  }

  /** Close every connection (end of the run). */
  async closeAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(async (e) => (await e.current?.catch(() => undefined))?.close().catch(() => undefined)));
  }
}

/** What a step holds: calls go to the host's current connection; close() leaves it to the pool. */
class Lease implements SshSession {
  constructor(
    private pool: SshPool,
    private entry: Entry,
    readonly hostKeyFingerprint: string,
  ) {}
  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.pool.withChannel(this.entry, (s) => s.exec(command, opts));
  }
  run(command: string, opts?: ExecOptions): Promise<string> {
    return this.pool.withChannel(this.entry, (s) => s.run(command, opts));
  }
  async writeFile(remotePath: string, data: string | Buffer, mode?: number): Promise<void> {
    return (await this.pool.live(this.entry)).writeFile(remotePath, data, mode);
  }
  async readFile(remotePath: string): Promise<Buffer> {
    return (await this.pool.live(this.entry)).readFile(remotePath);
  }
  async stat(remotePath: string): Promise<{ size: number; mode: number } | null> {
    return (await this.pool.live(this.entry)).stat(remotePath);
  }
  async remove(remotePath: string): Promise<boolean> {
    return (await this.pool.live(this.entry)).remove(remotePath);
  }
  isOpen(): boolean {
    return true; // the pool reconnects on the next call
  }
  async close(): Promise<void> {}
}
