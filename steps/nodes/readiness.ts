/**
 * One readiness watcher per run on the first server: one SSH connection (the run's shared one), one
 * poll loop of `sudo k3s kubectl get nodes -o json`, whose answers every node step waits on (agents
 * waiting to be registered, cluster:ready waiting for all Ready) instead of each polling on its own.
 *
 * `read()` joins the poll under way or starts one (for checks); `until(pred)` resolves once a poll
 * that started after the call satisfies `pred`. The loop runs while someone waits, at an interval that
 * grows with how long the oldest waiter has waited (2 %, 25 ms – 1 s), like pollUntil.
 */
import { AbortedError, RemoteError } from '../../src/errors.js';
import type { StepContext, StepServices } from '../types.js';
import { connectNode } from './common.js';
import { getNodes, readinessOf, type KubeNode } from '../../src/k3s/kubectl.js';

export type NodeReadiness = Map<string, boolean>;

interface Waiter {
  pred: (nodes: NodeReadiness) => boolean;
  since: number;
  timeoutMs: number;
  signal: AbortSignal;
  resolve: (nodes: NodeReadiness) => void;
  reject: (err: unknown) => void;
  what: string;
  fix?: string;
  onTimeout?: () => Promise<string | undefined>;
  /** Called between polls (e.g. a look at the waiting node's journal); a throw fails this waiter. */
  onTick?: () => Promise<void>;
  ticking?: boolean;
}

export class ReadinessWatcher {
  private inflight?: Promise<KubeNode[] | undefined>;
  private waiters = new Set<Waiter>();
  private looping = false;
  /** Polls made (for tests and the bench). */
  polls = 0;

  /** `list` asks the server once (undefined while its API is down); `ctx` gives the clock and the log. */
  constructor(
    private readonly ctx: Pick<StepContext, 'services' | 'log' | 'signal'>,
    private readonly list: () => Promise<KubeNode[] | undefined>,
  ) {}

  /** The nodes as the first server lists them now (joins a poll under way); undefined while its API is down. */
  async read(): Promise<NodeReadiness | undefined> {
    return readinessOf(await this.nodes());
  }

  /** The same list with each node's versions and annotations (the rolling upgrade's checks). */
  nodes(): Promise<KubeNode[] | undefined> {
    this.inflight ??= this.poll().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async poll(): Promise<KubeNode[] | undefined> {
    this.polls++;
    try {
      return await this.list();
    } catch (err) {
      if (this.ctx.signal.aborted) return undefined;
      this.ctx.log(`could not list the nodes yet: ${(err as Error).message}`, 'debug');
      return undefined;
    }
  }

  /** Resolves with the node list once `pred` holds on it; RemoteError after `timeoutMs`. */
  until(
    pred: (nodes: NodeReadiness) => boolean,
    o: {
      signal: AbortSignal;
      timeoutMs: number;
      what: string;
      fix?: string;
      onTimeout?: () => Promise<string | undefined>;
      onTick?: () => Promise<void>;
    },
  ): Promise<NodeReadiness> {
    if (o.signal.aborted) return Promise.reject(new AbortedError());
    return new Promise<NodeReadiness>((resolve, reject) => {
      const w: Waiter = { pred, since: this.ctx.services.now(), resolve, reject, ...o };
      this.waiters.add(w);
      void this.loop();
    });
  }

  private settle(w: Waiter, f: () => void): void {
    if (!this.waiters.delete(w)) return;
    f();
  }

  private async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      while (this.waiters.size) {
        const started = this.ctx.services.now();
        // a waiter is answered only by a poll that started after it began waiting
        const nodes = await (this.inflight ? this.inflight.then(() => this.read()) : this.read());
        const now = this.ctx.services.now();
        for (const w of [...this.waiters]) {
          if (w.signal.aborted) this.settle(w, () => w.reject(new AbortedError()));
          else if (nodes && w.since <= started && w.pred(nodes)) this.settle(w, () => w.resolve(nodes));
          else if (now - w.since > w.timeoutMs) this.timeout(w, now);
          else if (w.onTick && !w.ticking) {
            w.ticking = true;
            w.onTick().then(
              () => (w.ticking = false),
              (err: unknown) => this.settle(w, () => w.reject(err)),
            );
          }
        }
        if (!this.waiters.size) break;
        const oldest = Math.min(...[...this.waiters].map((w) => w.since));
        await this.ctx.services.sleep(Math.min(1000, Math.max(25, (now - oldest) * 0.02)));
      }
    } finally {
      this.looping = false;
    }
  }

  private timeout(w: Waiter, now: number): void {
    this.waiters.delete(w);
    void (async () => {
      const detail = w.onTimeout ? await w.onTimeout().catch(() => undefined) : undefined;
      w.reject(new RemoteError(`Timed out after ${Math.round((now - w.since) / 1000)} s waiting for ${w.what}`, { fix: w.fix, detail }));
    })();
  }
}

const watchers = new WeakMap<StepServices, Map<string, ReadinessWatcher>>();

/** The run's watcher on `server` (the run's services identify the run). */
export function readinessWatcher(ctx: StepContext, server: string): ReadinessWatcher {
  let m = watchers.get(ctx.services);
  if (!m) watchers.set(ctx.services, (m = new Map()));
  let w = m.get(server);
  if (!w) {
    const list = async () => getNodes(await connectNode(ctx, server, { timeoutMs: 30_000 }), ctx.signal);
    m.set(server, (w = new ReadinessWatcher(ctx, list)));
  }
  return w;
}
