/**
 * The latency model of pve-timings.md ("Suggested default latency model"), with a seeded RNG so runs
 * repeat. Durations are in seconds of a real host; `speed` scales them (1 = real, 0.01 in tests, 0 = instant).
 */
export type Jitter = { kind: 'lognormal'; sigma: number; cap?: number } | { kind: 'uniform'; fraction: number };

export interface OpModel {
  seconds: number;
  jitter: Jitter;
}

/** Base figures; sizes add on top where the model says so (see durationFor). */
export const DEFAULT_MODEL = {
  get: { seconds: 0.015, jitter: { kind: 'lognormal', sigma: 0.5 } },
  postUpid: { seconds: 0.2, jitter: { kind: 'uniform', fraction: 0.5 } },
  download: { seconds: 1, jitter: { kind: 'lognormal', sigma: 0.6 } },
  /** + 10 s per allocated GB */
  importFrom: { seconds: 2, jitter: { kind: 'uniform', fraction: 0.3 } },
  template: { seconds: 1.5, jitter: { kind: 'uniform', fraction: 0.3 } },
  linkedClone: { seconds: 2, jitter: { kind: 'uniform', fraction: 0.5 } },
  /** + allocated GB / 0.3 GB/s (lvm-thin) */
  fullClone: { seconds: 2, jitter: { kind: 'uniform', fraction: 0.4 } },
  storageLockHold: { seconds: 0.5, jitter: { kind: 'uniform', fraction: 0.2 } },
  resize: { seconds: 1, jitter: { kind: 'uniform', fraction: 0.5 } },
  /** + 0.45 per extra NIC */
  start: { seconds: 2, jitter: { kind: 'uniform', fraction: 0.3 } },
  stop: { seconds: 1, jitter: { kind: 'uniform', fraction: 0.3 } },
  shutdown: { seconds: 3, jitter: { kind: 'uniform', fraction: 0.3 } },
  destroy: { seconds: 1, jitter: { kind: 'uniform', fraction: 0.3 } },
  config: { seconds: 0.1, jitter: { kind: 'uniform', fraction: 0.3 } },
  boot: { seconds: 20, jitter: { kind: 'lognormal', sigma: 0.3, cap: 45 } },
  /** Proxmox delays every unauthorized answer by 3 s. */
  authFailure: { seconds: 3, jitter: { kind: 'uniform', fraction: 0 } },
} satisfies Record<string, OpModel>;

export type OpName = keyof typeof DEFAULT_MODEL;

/** Lock timeouts of qemu-server / pve-storage, seconds. */
export const LOCK_TIMEOUTS = { config: 10, create: 1, cloneSource: 1, cloneTarget: 1, storage: 10 } as const;

/** Small, fast, seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class LatencyModel {
  private readonly rand: () => number;
  private readonly slow = new Map<string, number>();
  constructor(
    public speed: number,
    seed: number,
    private readonly model: Record<OpName, OpModel> = DEFAULT_MODEL,
  ) {
    this.rand = seededRandom(seed);
  }

  private normal(): number {
    const u = Math.max(this.rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rand());
  }

  /** Real-host seconds for an operation, jittered; `extra` adds size-dependent seconds. */
  seconds(op: OpName, extra = 0): number {
    const m = this.model[op];
    const base = m.seconds + extra;
    if (m.jitter.kind === 'lognormal') {
      const v = base * Math.exp(m.jitter.sigma * this.normal());
      return m.jitter.cap !== undefined ? Math.min(v, m.jitter.cap) : v;
    }
    return base * (1 + m.jitter.fraction * (2 * this.rand() - 1));
  }

  /** Milliseconds to wait in this simulator for `op` on `node`. */
  ms(op: OpName, node?: string, extra = 0): number {
    return this.scale(this.seconds(op, extra), node);
  }

  /** Scale real seconds to simulator milliseconds. */
  scale(seconds: number, node?: string): number {
    return seconds * 1000 * this.speed * (node ? (this.slow.get(node) ?? 1) : 1);
  }

  /**
   * A lock timeout in simulator milliseconds: scaled like everything else (so timeouts keep their ratio to
   * hold times), with a 25 ms floor so event-loop jitter on a busy machine does not make locks fail
   * that a real host would get. Not slowed by slowNode, which is how tests provoke timeouts.
   */
  lockMs(seconds: number): number {
    return Math.max(25, seconds * 1000 * this.speed);
  }

  slowNode(node: string, factor: number): void {
    if (factor === 1) this.slow.delete(node);
    else this.slow.set(node, factor);
  }
  clearSlow(): void {
    this.slow.clear();
  }
}

/**
 * Simulated time passing. The timer is unref'd: the simulator's servers keep a process alive while it
 * runs, and after close() a worker still "waiting" (a 20 s boot at speed 1) must not hold the process.
 */
export const sleep = (ms: number): Promise<void> => (ms <= 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, ms).unref()));
