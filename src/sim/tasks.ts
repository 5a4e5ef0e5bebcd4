/**
 * Proxmox worker tasks: UPIDs in Proxmox's format, status, logs ("TASK OK" / "TASK ERROR: …"),
 * and fault injection by task type.
 */
import type { Faults } from './faults.js';

export interface SimTask {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  pid: number;
  pstart: number;
  /** Unix seconds, as Proxmox reports. */
  starttime: number;
  endtime?: number;
  /** Milliseconds (Date.now()) for the inspection API. */
  startedAt: number;
  endedAt?: number;
  status: 'running' | 'stopped';
  exitstatus?: string;
  log: string[];
}

export interface TaskCounters {
  nextPid: number;
  pstartBase: number;
  lastStart: number;
}

export interface TaskContext {
  log(line: string): void;
  task: SimTask;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).toUpperCase().padStart(8, '0');

export function formatUpid(t: {
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
}): string {
  return `UPID:${t.node}:${hex8(t.pid)}:${hex8(t.pstart)}:${hex8(t.starttime)}:${t.type}:${t.id}:${t.user}:`;
}

export function parseUpid(
  upid: string,
): { node: string; pid: number; pstart: number; starttime: number; type: string; id: string; user: string } | undefined {
  const m =
    /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/.exec(
      upid,
    );
  if (!m) return undefined;
  return {
    node: m[1]!,
    pid: parseInt(m[3]!, 16),
    pstart: parseInt(m[4]!, 16),
    starttime: parseInt(m[5]!, 16),
    type: m[6]!,
    id: m[7]!,
    user: m[8]!,
  };
}

export class TaskRegistry {
  private readonly list: SimTask[] = [];
  private readonly byUpid = new Map<string, SimTask>();
  private nextPid = 10000 + Math.floor(Math.random() * 1000);
  private pstartBase = 1000000 + Math.floor(Math.random() * 100000);
  private lastStart = 0;
  readonly pending = new Set<Promise<void>>();

  constructor(private readonly faults: Faults) {}

  /** What keeps UPIDs unique across restarts of a persisted simulator. */
  counters(): TaskCounters {
    return { nextPid: this.nextPid, pstartBase: this.pstartBase, lastStart: this.lastStart };
  }

  /** Continue the counters of a saved simulator (its tasks are gone, as after a node reboot). */
  restoreCounters(c: TaskCounters): void {
    this.nextPid = Math.max(this.nextPid, c.nextPid);
    this.pstartBase = c.pstartBase;
    this.lastStart = Math.max(this.lastStart, c.lastStart);
  }

  /** Start a worker; returns its UPID at once, as fork_worker does. */
  start(
    node: string,
    type: string,
    id: string,
    user: string,
    work: (ctx: TaskContext) => Promise<void>,
    onDone?: (t: SimTask) => void,
  ): SimTask {
    const now = Date.now();
    // UPIDs must be unique: same second and pid never repeat, as pids differ per worker
    const starttime = Math.max(Math.floor(now / 1000), this.lastStart);
    this.lastStart = starttime;
    const pid = this.nextPid++;
    const task: SimTask = {
      node,
      type,
      id,
      user,
      pid,
      pstart: this.pstartBase + pid,
      starttime,
      startedAt: now,
      status: 'running',
      log: [],
      upid: '',
    };
    task.upid = formatUpid(task);
    this.list.push(task);
    this.byUpid.set(task.upid, task);
    const fault = this.faults.onTask(type);
    const ctx: TaskContext = { task, log: (line) => void task.log.push(...line.split('\n')) };
    const run = (async () => {
      try {
        // an injected fault fails the task before it changes anything (onDone still cleans up)
        if (fault) throw new Error(fault.message);
        await work(ctx);
        task.exitstatus = 'OK';
        task.log.push('TASK OK');
      } catch (e) {
        const msg = (e instanceof Error ? e.message : String(e)).replace(/\n+$/, '');
        task.exitstatus = msg.split('\n').pop() || 'unexpected status';
        if (msg.includes('\n')) ctx.log(msg.split('\n').slice(0, -1).join('\n'));
        task.log.push(`TASK ERROR: ${task.exitstatus}`);
      } finally {
        task.status = 'stopped';
        task.endedAt = Date.now();
        task.endtime = Math.floor(task.endedAt / 1000);
        onDone?.(task);
      }
    })();
    this.pending.add(run);
    void run.finally(() => this.pending.delete(run));
    return task;
  }

  get(upid: string): SimTask | undefined {
    return this.byUpid.get(upid);
  }
  all(): SimTask[] {
    return [...this.list];
  }
}
