/**
 * The honest lower bound of an install: the shortest wall time any scheduler could reach given only
 * what the simulator models and what this run recorded (Proxmox task durations, storage-lock holds,
 * boot, k3s binary and k3s timings). It never reads the tool's own choices (lane limits such as the
 * clone lane, waits for Ready before joining, --parallel): this module imports nothing from src/ or
 * steps/ (test/bench-bound.test.ts checks both that and the figures).
 *
 * A task's recorded time runs from the arrival of the request that started it (the simulator's modelled
 * request latency and fork delay come before the task starts; world-thread.ts records both).
 * The simulator's rules it relies on (src/sim/api/qemu-disks.ts, src/demo/flatcar-node.ts):
 *   - the template is download → import → convert, each needing the one before;
 *   - a clone holds its storage's lock (exclusive, cluster-wide on shared storage) for part of its task,
 *     then works unlocked; clones of one template otherwise run in parallel (no limit on their number);
 *   - a node is ready for k3s after its clone, resize, start, boot and k3s binary download;
 *   - the first server's API accepts joins `apiDelayMs` after its k3s started, and it is Ready after `k3sMs`;
 *   - server joins: one learner at a time, each `k3sMs` long, not before the API is up;
 *   - agents: join once the API is up and their node is ready; Ready `k3sMs` later;
 *   - the run ends when every node is Ready (cluster:ready).
 */

export interface NodeTiming {
  name: string;
  role: 'server' | 'agent';
  first?: boolean;
  /** resize + start tasks + boot + k3s binary download: from the end of its clone to k3s starting. */
  tailMs: number;
  /** k3s start → Ready (first server: start; joining server: learner join; agent: register + Ready). */
  k3sMs: number;
}

export interface CloneTiming {
  /** Storage-lock holds of this clone (one per disk), by storage. */
  holds: Array<{ storage: string; ms: number }>;
  /** The task's duration minus its lock waits (work: holds + the unlocked part). */
  workMs: number;
}

export interface RunRecord {
  /** Template tasks (download, import, convert), serial. 0 when the template existed. */
  templateMs: number;
  clones: CloneTiming[];
  nodes: NodeTiming[];
  /** The first server: k3s start → API accepting joins. */
  apiDelayMs: number;
}

export interface Bound {
  ms: number;
  /** One line per term, for printing. */
  derivation: string[];
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function honestBound(r: RunRecord): Bound {
  const first = r.nodes.find((n) => n.first) ?? r.nodes.find((n) => n.role === 'server');
  if (!first) throw new Error('honestBound: no server in the record');
  const works = r.clones.map((c) => c.workMs);
  const minClone = works.length ? Math.min(...works) : 0;
  const unlockedAfterHold = r.clones.map((c) => c.workMs - c.holds.reduce((a, h) => a + h.ms, 0));
  const minUnlocked = unlockedAfterHold.length ? Math.max(0, Math.min(...unlockedAfterHold)) : 0;
  const T0 = r.templateMs;
  const avail = (n: NodeTiming) => T0 + minClone + n.tailMs;

  // 1) chains: every node cloned at once (the shortest clone), then the model's k3s rules.
  const apiUp = avail(first) + r.apiDelayMs;
  const firstReady = avail(first) + first.k3sMs;
  let joinsEnd = apiUp;
  const joiners = r.nodes.filter((n) => n.role === 'server' && n !== first).sort((a, b) => avail(a) - avail(b));
  for (const n of joiners) joinsEnd = Math.max(joinsEnd, avail(n)) + n.k3sMs;
  const agents = r.nodes.filter((n) => n.role === 'agent');
  const agentsEnd = Math.max(0, ...agents.map((a) => Math.max(apiUp, avail(a)) + a.k3sMs));
  const chains = Math.max(firstReady, joinsEnd, agentsEnd);

  // 2) storage locks: the holds on one storage are serial. The j-th clone through a storage ends no
  // sooner than the j shortest holds plus the shortest unlocked part; the best order clones the node with
  // the longest remaining path first (the nodes that used a storage are unknown: take the shortest paths).
  const byStorage = new Map<string, number[]>();
  for (const c of r.clones) for (const h of c.holds) byStorage.set(h.storage, [...(byStorage.get(h.storage) ?? []), h.ms]);
  const rest = r.nodes.map((n) => n.tailMs + n.k3sMs).sort((a, b) => a - b);
  let locks = 0;
  let lockLine = 'no storage-lock holds recorded';
  for (const [storage, holds] of byStorage) {
    holds.sort((a, b) => a - b);
    const paths = rest.slice(0, holds.length).sort((a, b) => b - a);
    let sum = 0;
    let worst = 0;
    holds.forEach((h, j) => {
      sum += h;
      worst = Math.max(worst, T0 + sum + minUnlocked + (paths[j] ?? 0));
    });
    if (worst > locks) {
      locks = worst;
      lockLine = `storage ${storage}: ${holds.length} serial lock holds (${s(sum)} in all) + shortest unlocked clone part ${s(minUnlocked)} + remaining paths, longest first = ${s(worst)}`;
    }
  }

  const ms = Math.max(chains, locks);
  return {
    ms,
    derivation: [
      `template (download → import → convert) ${s(T0)}; shortest clone ${s(minClone)}`,
      `first server: ready for k3s at ${s(avail(first))}, API up +${s(r.apiDelayMs)} = ${s(apiUp)}, Ready ${s(firstReady)}`,
      `server joins one at a time from the API being up: last Ready ${s(joinsEnd)} (${joiners.length} joins)`,
      `agents from the API being up and their node ready: last Ready ${s(agentsEnd)} (${agents.length} agents)`,
      lockLine,
      `bound = max(${s(chains)}, ${s(locks)}) = ${s(ms)}`,
    ],
  };
}
