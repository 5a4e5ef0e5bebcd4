/**
 * Benchmark of a whole install on the simulator (demo Flatcar nodes, default latency model scaled by the
 * speed): the ha preset (3+3) at speeds 0.2 and 0.02, the ha preset with --parallel 1, 100 and 200
 * nodes (3 servers + agents) on a 4-host PVE cluster with shared storage. For each: wall time, the
 * honest lower bound (scripts/bench-lib/bound.ts: from the simulator's model and this run's recorded
 * task, lock, boot and k3s timings only, never the tool's lane limits or Ready waits) with its
 * derivation, their ratio, bytes written to the state directory, Proxmox requests per node.
 *
 *   npm run bench -- install   (BENCH_SPEED=0.02 BENCH_SLOW_SPEED=0.2 BENCH_PARALLEL=32 BENCH_SKIP_200=1 BENCH_ONLY=regex)
 *
 * Everything (simulator, 200 demo nodes with their SSH servers, the runner) shares one Node process, so
 * at high simulated speed the figures include this process's own CPU time.
 * With --json (or BENCH_JSON=1) it prints `BENCH_JSON {...}` for scripts/bench.ts to collect.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { startE2e, type E2eOptions } from '../../test/e2e-harness.js';
import { LockTable, storageLockFile, vmLockFile, type LockMode } from '../../src/sim/locks.js';
import { TaskRegistry, type SimTask } from '../../src/sim/tasks.js';
import { honestBound, type CloneTiming, type RunRecord } from '../bench-lib/bound.js';
import { countStateWrites } from '../bench-lib/io-count.js';

const SPEED = Number(process.env.BENCH_SPEED ?? 0.02);
/** A slower run where Proxmox/boot/k3s time dominates this process's own overhead. */
const SLOW_SPEED = Number(process.env.BENCH_SLOW_SPEED ?? 0.2);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 32);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const JSON_OUT = process.argv.includes('--json') || process.env.BENCH_JSON === '1';

interface Result {
  name: string;
  nodes: number;
  wallMs: number;
  boundMs: number;
  derivation: string[];
  requestsPerNode: number;
  stateBytes: number;
  stateWrites: number;
  status: string;
}

/** What the simulator's clone tasks did, per task: lock waits, storage-lock holds, the new VM. */
interface CloneTrace {
  task: SimTask;
  waitMs: number;
  holds: Array<{ storage: string; ms: number }>;
  newid?: number;
}
const taskContext = new AsyncLocalStorage<CloneTrace>();
let traces: CloneTrace[] = [];
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
LockTable.prototype.with = async function (
  this: LockTable,
  file: string,
  mode: LockMode,
  timeoutMs: number,
  fn: () => unknown,
): Promise<unknown> {
  const trace = taskContext.getStore();
  if (!trace) return originalWith.call(this, file, mode, timeoutMs, fn);
  const asked = Date.now();
  if (mode === 'exclusive' && file.startsWith(vmLockFile(0).replace(/0\.conf$/, '')))
    trace.newid = Number(/lock-(\d+)\.conf$/.exec(file)?.[1]);
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

type Env = Awaited<ReturnType<typeof startE2e>>;

/** The run's recorded timings, as the simulator and the demo nodes saw them. */
function record(env: Env): RunRecord {
  const tasks = env.sim.tasks().filter((t) => t.endedAt !== undefined && t.exitstatus === 'OK');
  const dur = (t: { startedAt: number; endedAt?: number }) => t.endedAt! - t.startedAt;
  const templateMs = tasks
    .filter((t) => ['download', 'imgcopy', 'qmcreate', 'qmtemplate'].includes(t.type))
    .reduce((a, t) => a + dur(t), 0);
  const clones: CloneTiming[] = traces
    .filter((c) => c.task.exitstatus === 'OK' && c.task.endedAt !== undefined)
    .map((c) => ({ holds: c.holds, workMs: dur(c.task) - c.waitMs }));
  const byVm = (type: string, vmid: number) =>
    tasks.filter((t) => t.type === type && t.id === String(vmid)).reduce((a, t) => a + dur(t), 0);
  const vmidOf = new Map([...env.sim.state.vms.values()].map((v) => [String(v.config.name), v.vmid]));
  const demo = new Map(env.guests.nodes().map((d) => [d.name, d]));
  const firstName = `${env.config.cluster.name}-server-1`;
  const cluster = env.guests.node(firstName)!.cluster!;
  const nodes = [...cluster.nodes.values()].map((n) => {
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
  const first = cluster.nodes.get(firstName)!;
  return { templateMs, clones, nodes, apiDelayMs: cluster.apiReadyAt - first.startedAt };
}

async function bench(name: string, o: E2eOptions, parallel: number, speed: number): Promise<Result | undefined> {
  if (ONLY && !ONLY.test(name)) return undefined;
  const env = await startE2e({ ...o, speed });
  traces = [];
  const io = countStateWrites(env.stateDir, (p) => !p.includes('/demo/'));
  try {
    const t0 = Date.now();
    const r = await env.up({ options: { parallel, mergeKubeconfig: false } });
    const wallMs = Date.now() - t0;
    const nodes = env.config.nodes.servers.count + env.config.nodes.agents.count;
    const b = honestBound(record(env));
    return {
      name,
      nodes,
      wallMs,
      boundMs: b.ms,
      derivation: b.derivation,
      requestsPerNode: env.sim.requests().length / nodes,
      stateBytes: io.bytes,
      stateWrites: io.writes,
      status: r.status,
    };
  } finally {
    io.stop();
    await env.close();
  }
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
function report(r: Result | undefined): void {
  if (!r) return;
  console.log(
    `${r.name.padEnd(40)} ${r.status.padEnd(9)} nodes ${String(r.nodes).padStart(3)}  wall ${fmt(r.wallMs).padStart(8)}  bound ${fmt(r.boundMs).padStart(8)}  ratio ${(r.wallMs / r.boundMs).toFixed(2)}  ` +
      `state ${(r.stateBytes / 1024).toFixed(0)} KiB in ${r.stateWrites} writes (${(r.stateBytes / r.nodes / 1024).toFixed(1)} KiB/node)  PVE requests/node ${r.requestsPerNode.toFixed(1)}`,
  );
  for (const l of r.derivation) console.log(`    ${l}`);
}

const many = (agents: number): E2eOptions => ({
  preset: 'ha',
  pveNodes: 4,
  sharedStorage: true,
  config: { nodes: { agents: { count: agents, memory: 2048 }, vmids: { start: 9100, end: 9400 } } },
});
const ha: E2eOptions = { preset: 'ha', pveNodes: 3, sharedStorage: true };
const skip200 = !!process.env.BENCH_SKIP_200;

console.log(`speeds ${SLOW_SPEED} and ${SPEED} (1 = real Proxmox timings), --parallel ${PARALLEL}; bound: scripts/bench-lib/bound.ts`);
// One untimed run first: the modules load (and tsx compiles them) once, as the installed CLI's compiled
// JavaScript would not; so the first figure is not charged for it and the order of runs does not matter.
{
  const warm = await startE2e({ ...ha, speed: SPEED });
  try {
    await warm.up({ options: { parallel: PARALLEL, mergeKubeconfig: false } });
  } finally {
    await warm.close();
  }
}
const haSlow = await bench(`ha (3+3), 3 PVE hosts, speed ${SLOW_SPEED}`, ha, PARALLEL, SLOW_SPEED);
report(haSlow);
const haFast = await bench(`ha (3+3), 3 PVE hosts, speed ${SPEED}`, ha, PARALLEL, SPEED);
report(haFast);
report(await bench(`ha (3+3), 3 PVE hosts, --parallel 1, speed ${SPEED}`, ha, 1, SPEED));
const n200 = skip200 ? undefined : await bench(`200 nodes (3+197), 4 PVE hosts, speed ${SPEED}`, many(197), PARALLEL, SPEED);
report(n200);
const g100 = skip200 ? undefined : await bench(`100 nodes (3+97), 4 PVE hosts, speed ${SLOW_SPEED}`, many(97), PARALLEL, SLOW_SPEED);
report(g100);
const g200 = skip200 ? undefined : await bench(`200 nodes (3+197), 4 PVE hosts, speed ${SLOW_SPEED}`, many(197), PARALLEL, SLOW_SPEED);
report(g200);
const growth = g100 && g200 ? g200.wallMs / g100.wallMs : undefined;
if (growth !== undefined) console.log(`growth: 200 nodes / 100 nodes at speed ${SLOW_SPEED} = ${growth.toFixed(2)}x wall (linear = 2.00x)`);
const perNode = [g100, g200, n200]
  .filter((r): r is Result => !!r)
  .map((r) => `${r.nodes} nodes ${(r.stateBytes / r.nodes).toFixed(0)} B/node`);
if (perNode.length) console.log(`state bytes written per node: ${perNode.join(', ')} (flat = linear in node count)`);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);

if (JSON_OUT) {
  const ratio = (r: Result | undefined) => (r ? Number((r.wallMs / r.boundMs).toFixed(3)) : null);
  const biggest = g200 ?? n200 ?? haSlow;
  console.log(
    `BENCH_JSON ${JSON.stringify({
      ha_0_2: ratio(haSlow),
      ha_0_02: ratio(haFast),
      n200: ratio(n200),
      growth_200_over_100: growth === undefined ? null : Number(growth.toFixed(3)),
      state_bytes_per_node: biggest ? Math.round(biggest.stateBytes / biggest.nodes) : null,
    })}`,
  );
}
