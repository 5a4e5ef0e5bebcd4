/**
 * Benchmark of a whole install on the simulator (demo Flatcar nodes, default latency model scaled by SPEED):
 * the ha preset, the ha preset with --parallel 1, and a 200-node layout (3 servers + 197 agents) on a
 * 4-host PVE cluster with shared storage. For each: wall time, the critical-path lower bound computed from
 * the simulator's task log and the demo nodes' boot, k3s binary download and k3s durations (template once,
 * clones packed into Proxmox's clone concurrency and storage lock, resize + start + boot + binary, first
 * server, serial server joins, agents; see lowerBound), their ratio (target ≤ 1.10), Proxmox requests per
 * node, and peak RSS.
 *
 *   npm run bench -- install   (BENCH_SPEED=0.02 BENCH_SLOW_SPEED=0.2 BENCH_PARALLEL=32 BENCH_SKIP_200=1 BENCH_ONLY=regex to tune)
 *
 * Everything (simulator, 200 demo nodes with their SSH servers, the runner) shares one Node process, so
 * at high simulated speed the figures include this process's own CPU time; the slower ha run shows the
 * ratio when Proxmox, boot and k3s time dominate, as on real hardware.
 */
import { startE2e, type E2eOptions } from '../../test/e2e-harness.js';
import { LANE_LIMITS } from '../../src/runner/driver.js';
import { LockTable, storageLockFile, type LockMode } from '../../src/sim/locks.js';

const SPEED = Number(process.env.BENCH_SPEED ?? 0.02);
/** A slower run where Proxmox/boot/k3s time dominates this process's own overhead (SSH round trips, state writes). */
const SLOW_SPEED = Number(process.env.BENCH_SLOW_SPEED ?? 0.2);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 32);
/** Only the runs whose name matches this regular expression (e.g. BENCH_ONLY='speed 0.2'). */
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;

interface Result {
  name: string;
  nodes: number;
  wallMs: number;
  lowerBoundMs: number;
  requestsPerNode: number;
  status: string;
}

async function bench(name: string, o: E2eOptions, parallel: number, speed = SPEED): Promise<Result | undefined> {
  if (ONLY && !ONLY.test(name)) return undefined;
  const env = await startE2e({ ...o, speed });
  storageLocks.waitMs = 0;
  storageLocks.holdMs.clear();
  try {
    const t0 = Date.now();
    const r = await env.up({ options: { parallel, mergeKubeconfig: false } });
    const wallMs = Date.now() - t0;
    const nodes = env.config.nodes.servers.count + env.config.nodes.agents.count;
    return { name, nodes, wallMs, lowerBoundMs: lowerBound(env), requestsPerNode: env.sim.requests().length / nodes, status: r.status };
  } finally {
    await env.close();
  }
}

/**
 * Storage-lock waits and holds inside the simulator (clone tasks take pve-storage-<id> exclusively):
 * a clone's task duration includes waiting for another clone's lock, which is not work, so the clone
 * packing bound subtracts it; the holds on one storage are a serial resource of their own.
 */
const storageLocks = { waitMs: 0, holdMs: new Map<string, number>() };
const originalWith = LockTable.prototype.with;
LockTable.prototype.with = async function (this: LockTable, file: string, mode: LockMode, timeoutMs: number, fn: () => unknown): Promise<unknown> {
  if (!file.startsWith(storageLockFile(''))) return originalWith.call(this, file, mode, timeoutMs, fn);
  const asked = Date.now();
  return originalWith.call(this, file, mode, timeoutMs, async () => {
    const granted = Date.now();
    storageLocks.waitMs += granted - asked;
    try {
      return await fn();
    } finally {
      storageLocks.holdMs.set(file, (storageLocks.holdMs.get(file) ?? 0) + Date.now() - granted);
    }
  });
} as LockTable['with'];

/**
 * The critical path no scheduler can beat, from what the simulator and the demo nodes actually took
 * (Proxmox task durations, boot, k3s binary download, k3s start/join). Left out, so the bound stays a
 * lower bound: API round trips (POST → UPID latency), SSH round trips, the snippet upload, startup.
 *   template: download → import (qmcreate) → convert, one after the other;
 *   a node: its clone (≥ the shortest clone) → resize → start → boot → k3s binary → k3s;
 *   first server, then server joins one at a time (etcd), each also after its own node is ready;
 *   agents after the first server and their own node;
 *   clones: at most LANE_LIMITS['pve-clone'] at once (sum of their work / lanes) and one storage-lock
 *   hold at a time per storage; the node cloned last still needs at least the shortest tail.
 */
function lowerBound(env: Awaited<ReturnType<typeof startE2e>>): number {
  const tasks = env.sim.tasks().filter((t) => t.endedAt !== undefined && t.exitstatus === 'OK');
  const dur = (t: { startedAt: number; endedAt?: number }) => t.endedAt! - t.startedAt;
  const templateVmid = String(env.config.flatcar.templateVmid ?? env.config.nodes.vmids.start);
  const template = tasks.filter((t) => ['download', 'imgcopy', 'qmcreate', 'qmtemplate'].includes(t.type) || (t.id === templateVmid && t.type !== 'qmclone')).reduce((a, t) => a + dur(t), 0);
  const clones = tasks.filter((t) => t.type === 'qmclone').map(dur);
  const byVm = (type: string, vmid: number) => tasks.filter((t) => t.type === type && t.id === String(vmid)).reduce((a, t) => a + dur(t), 0);
  const vmidOf = new Map([...env.sim.state.vms.values()].map((v) => [String(v.config.name), v.vmid]));
  const demoNodes = new Map(env.guests.nodes().map((d) => [d.name, d]));
  const cluster = env.guests.node(`${env.config.cluster.name}-server-1`)!.cluster!;
  const k3s = (name: string) => {
    const n = cluster.nodes.get(name)!;
    return n.readyAt - n.startedAt;
  };
  const tail = (name: string) => {
    const vmid = vmidOf.get(name)!;
    const d = demoNodes.get(name);
    return byVm('resize', vmid) + byVm('qmstart', vmid) + (d?.bootMs ?? 0) + (d?.binaryMs ?? 0);
  };
  const names = [...cluster.nodes.keys()];
  const servers = names.filter((n) => cluster.nodes.get(n)!.role === 'server').sort();
  const agents = names.filter((n) => cluster.nodes.get(n)!.role === 'agent');
  const first = servers[0]!;
  const minClone = Math.min(...clones);
  const firstReady = minClone + tail(first) + k3s(first);
  // servers: the first, then one join at a time (each join also needs its own VM booted)
  let joinsEnd = firstReady;
  for (const s of servers.slice(1)) joinsEnd = Math.max(joinsEnd, minClone + tail(s)) + k3s(s);
  // agents: after the first server and their own boot
  const agentsEnd = Math.max(0, ...agents.map((a) => Math.max(firstReady, minClone + tail(a)) + k3s(a)));
  const lanes = LANE_LIMITS['pve-clone'] ?? 3;
  const cloneWork = clones.reduce((a, b) => a + b, 0) - storageLocks.waitMs;
  const cloning = Math.max(cloneWork / lanes, ...storageLocks.holdMs.values());
  const packed = cloning + Math.min(...names.map((n) => tail(n) + (cluster.nodes.get(n)!.role === 'agent' ? k3s(n) : 0)));
  return template + Math.max(joinsEnd, agentsEnd, packed);
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
function report(r: Result | undefined): void {
  if (!r) return;
  console.log(
    `${r.name.padEnd(34)} ${r.status.padEnd(9)} nodes ${String(r.nodes).padStart(3)}  wall ${fmt(r.wallMs).padStart(9)}  lower bound ${fmt(r.lowerBoundMs).padStart(9)}  ratio ${(r.wallMs / r.lowerBoundMs).toFixed(2)}  PVE requests/node ${r.requestsPerNode.toFixed(1)}`,
  );
}

console.log(`speed ${SPEED} (1 = real Proxmox timings), --parallel ${PARALLEL}, clone lane ${LANE_LIMITS['pve-clone']}`);
report(await bench('ha (3+3), 3 PVE hosts', { preset: 'ha', pveNodes: 3, sharedStorage: true }, PARALLEL));
report(await bench('ha (3+3), 3 PVE hosts, --parallel 1', { preset: 'ha', pveNodes: 3, sharedStorage: true }, 1));
report(await bench(`ha (3+3), 3 PVE hosts, speed ${SLOW_SPEED}`, { preset: 'ha', pveNodes: 3, sharedStorage: true }, PARALLEL, SLOW_SPEED));
if (!process.env.BENCH_SKIP_200) {
  report(
    await bench(
      '200 nodes (3+197), 4 PVE hosts',
      { preset: 'ha', pveNodes: 4, sharedStorage: true, config: { nodes: { agents: { count: 197, memory: 2048 }, vmids: { start: 9100, end: 9400 } } } },
      PARALLEL,
    ),
  );
}
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
