/**
 * The modelled world of a bench run — the Proxmox simulator and the demo Flatcar nodes with their SSH
 * servers — on a worker thread of its own, while the tool runs on the main thread. In real life Proxmox
 * and the VMs are other machines: sharing one thread with them charged the tool for the simulation's
 * CPU (at 200 nodes and speed 0.02 the run was CPU-bound on that one thread). The tool reaches the
 * world only as it would a real one: HTTPS to the simulator and SSH to the nodes over loopback.
 *
 * The worker also records what the simulator and the nodes did (task durations, clone lock holds,
 * boots, k3s timings) for the honest bound (bound.ts), and answers with it after the run.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { e2eConfig, e2eSshPort, e2eUp, startE2eWorld, type E2eEnv, type E2eOptions } from '../../test/e2e-harness.js';
import { LockTable, storageLockFile, type LockMode } from '../../src/sim/locks.js';
import { TaskRegistry, type SimTask } from '../../src/sim/tasks.js';
import type { Config } from '../../src/config/schema.js';
import type { RunEvent } from '../../src/events.js';
import type { CloneTiming, RunRecord } from './bound.js';

type World = Awaited<ReturnType<typeof startE2eWorld>>;
type Request = { type: 'record'; cluster: string } | { type: 'close' };
type Reply =
  | { type: 'ready'; proxmox: Record<string, unknown>; mirrors: Record<string, unknown> }
  | { type: 'record'; record: RunRecord; requests: number }
  | { type: 'closed' }
  | { type: 'error'; message: string };

/** What the simulator's clone tasks did, per task: lock waits and storage-lock holds. */
interface CloneTrace {
  task: SimTask;
  waitMs: number;
  holds: Array<{ storage: string; ms: number }>;
}

/** Wraps the simulator's task and lock tables to see each clone's lock waits and holds (in the worker only). */
function traceClones(): CloneTrace[] {
  const traces: CloneTrace[] = [];
  const taskContext = new AsyncLocalStorage<CloneTrace>();
  const originalStart = TaskRegistry.prototype.start;
  TaskRegistry.prototype.start = function (this: TaskRegistry, node, type, id, user, work, onDone) {
    if (type !== 'qmclone') return originalStart.call(this, node, type, id, user, work, onDone);
    const trace = { waitMs: 0, holds: [] } as unknown as CloneTrace;
    const task = originalStart.call(this, node, type, id, user, (ctx) => taskContext.run(trace, () => work(ctx)), onDone);
    trace.task = task;
    traces.push(trace);
    return task;
  } as TaskRegistry['start'];
  const originalWith = LockTable.prototype.with;
  LockTable.prototype.with = async function (this: LockTable, file: string, mode: LockMode, timeoutMs: number, fn: () => unknown) {
    const trace = taskContext.getStore();
    if (!trace) return originalWith.call(this, file, mode, timeoutMs, fn);
    const asked = Date.now();
    return originalWith.call(this, file, mode, timeoutMs, async () => {
      const granted = Date.now();
      trace.waitMs += granted - asked;
      try {
        return await fn();
      } finally {
        if (file.startsWith(storageLockFile('')))
          trace.holds.push({ storage: file.slice(storageLockFile('').length), ms: Date.now() - granted });
      }
    });
  } as LockTable['with'];
  return traces;
}

/** The run's recorded timings, as the simulator and the demo nodes saw them. */
function record(world: World, traces: CloneTrace[], cluster: string): RunRecord {
  const { sim, guests } = world;
  const tasks = sim.tasks().filter((t) => t.endedAt !== undefined && t.exitstatus === 'OK');
  // The simulator answers a task-creating request only after its modelled request latency and fork
  // delay (pve-timings.md: config 0.1 s, POST → UPID 0.2 s), and the task starts then: no client can
  // start a task sooner after its request arrives. A task's time counts from that request's arrival.
  const writes = sim.requests().filter((q) => q.method !== 'GET');
  const lead = (t: SimTask): number => {
    const q = writes.find(
      (r) =>
        r.time <= t.startedAt &&
        t.startedAt <= r.time + r.durationMs &&
        r.path.startsWith(`/nodes/${t.node}/`) &&
        r.path.includes(`/${t.id}`),
    );
    return q ? t.startedAt - q.time : 0;
  };
  const dur = (t: SimTask) => t.endedAt! - t.startedAt + lead(t);
  const templateMs = tasks
    .filter((t) => ['download', 'imgcopy', 'qmcreate', 'qmtemplate'].includes(t.type))
    .reduce((a, t) => a + dur(t), 0);
  const clones: CloneTiming[] = traces
    .filter((c) => c.task.exitstatus === 'OK' && c.task.endedAt !== undefined)
    .map((c) => ({ holds: c.holds, workMs: dur(c.task) - c.waitMs }));
  const byVm = (type: string, vmid: number) =>
    tasks.filter((t) => t.type === type && t.id === String(vmid)).reduce((a, t) => a + dur(t), 0);
  const vmidOf = new Map([...sim.state.vms.values()].map((v) => [String(v.config.name), v.vmid]));
  const demo = new Map(guests.nodes().map((d) => [d.name, d]));
  const firstName = `${cluster}-server-1`;
  const k3s = guests.node(firstName)!.cluster!;
  const nodes = [...k3s.nodes.values()].map((n) => {
    const vmid = vmidOf.get(n.name)!;
    const d = demo.get(n.name);
    return {
      name: n.name,
      role: n.role,
      first: n.name === firstName,
      tailMs: byVm('resize', vmid) + byVm('qmstart', vmid) + (d?.bootMs ?? 0) + (d?.binaryMs ?? 0),
      k3sMs: n.readyAt - n.startedAt,
    };
  });
  return { templateMs, clones, nodes, apiDelayMs: k3s.apiReadyAt - k3s.nodes.get(firstName)!.startedAt };
}

async function workerMain(): Promise<void> {
  const port = parentPort!;
  const { o, sshPort } = workerData as { o: E2eOptions; sshPort: number };
  const traces = traceClones();
  const world = await startE2eWorld(o, sshPort);
  const send = (r: Reply) => port.postMessage(r);
  send({ type: 'ready', proxmox: world.proxmox, mirrors: world.mirrors });
  port.on('message', (m: Request) => {
    void (async () => {
      try {
        if (m.type === 'record') send({ type: 'record', record: record(world, traces, m.cluster), requests: world.sim.requests().length });
        else {
          await world.guests.close();
          await world.sim.close();
          send({ type: 'closed' });
          port.close();
        }
      } catch (err) {
        send({ type: 'error', message: (err as Error).stack ?? String(err) });
      }
    })();
  });
}

export interface BenchWorld {
  config: Config;
  /** The tool's state directory. */
  stateDir: string;
  up: E2eEnv['up'];
  /** What the world recorded of the run, and how many requests the simulator answered. */
  record(): Promise<{ record: RunRecord; requests: number }>;
  close(): Promise<void>;
}

/** Start the world on a worker thread; the returned `up` runs the tool against it on this thread. */
export async function startBenchWorld(o: E2eOptions): Promise<BenchWorld> {
  const sshPort = e2eSshPort();
  const stateDir = mkdtempSync(join(tmpdir(), 'bench-state-'));
  const homeDir = mkdtempSync(join(tmpdir(), 'bench-home-'));
  const worker = new Worker(new URL(import.meta.url), { workerData: { o, sshPort }, execArgv: process.execArgv });
  const replies: Reply[] = [];
  let wake: (() => void) | undefined;
  let failed: Error | undefined;
  worker.on('message', (r: Reply) => {
    replies.push(r);
    wake?.();
  });
  worker.on('error', (err) => {
    failed = err;
    wake?.();
  });
  const next = async <T extends Reply['type']>(type: T): Promise<Extract<Reply, { type: T }>> => {
    for (;;) {
      const i = replies.findIndex((r) => r.type === type || r.type === 'error');
      if (i >= 0) {
        const r = replies.splice(i, 1)[0]!;
        if (r.type === 'error') throw new Error(`bench world: ${r.message}`);
        return r as Extract<Reply, { type: T }>;
      }
      if (failed) throw failed;
      await new Promise<void>((res) => (wake = res));
    }
  };
  const ready = await next('ready');
  const { config } = e2eConfig(o, ready, stateDir, sshPort);
  const events: RunEvent[] = [];
  return {
    config,
    stateDir,
    up: e2eUp(config, stateDir, homeDir, events),
    async record() {
      worker.postMessage({ type: 'record', cluster: config.cluster.name } satisfies Request);
      const r = await next('record');
      return { record: r.record, requests: r.requests };
    },
    async close() {
      worker.postMessage({ type: 'close' } satisfies Request);
      await next('closed').catch(() => undefined);
      await worker.terminate();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(homeDir, { recursive: true, force: true });
    },
  };
}

if (!isMainThread && (workerData as { o?: unknown } | undefined)?.o) void workerMain();
