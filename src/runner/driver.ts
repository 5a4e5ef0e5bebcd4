/**
 * The driver: walks the step DAG (over `needs`) with a global concurrency limit and per-lane limits.
 * For each step, once its needs are done or skipped in this run: `check` (the real world decides),
 * then `run` when not done. Every transition is saved (atomically) before the next action and
 * emitted as an event. A failed step leaves its dependents pending while independent branches go on.
 * On abort (Ctrl-C): nothing new starts; running steps see ctx.signal, and once they settle they go
 * back to pending (the next `up` checks them again).
 */
import type { Config } from '../config/schema.js';
import type { RunEvents, StepStatus } from '../events.js';
import { BugError, FlatcarK3sError, isAbort } from '../errors.js';
import type { LaneHold, Step, StepContext } from '../../steps/types.js';
import type { Redactor } from '../log/redact.js';
import { hashOf } from './changes.js';
import { topoOrder, type StepAction } from './reducer.js';
import type { StateStore, StepError } from './state.js';

/** Concurrency per lane (steps set `lane`); lanes not listed are limited only by --parallel. */
export const LANE_LIMITS: Readonly<Record<string, number>> = {
  /**
   * Parallel clones of one template: users report lock timeouts from 2–6 at once on slow storage
   * (pve-timings.md). The lane starts here and adapts (LANE_CAPS).
   */
  'pve-clone': 3,
  /** Image downloads to PVE storage: bandwidth-bound, one at a time. */
  'pve-download': 1,
  /** VM deletions (destroy): each holds its VM's and its storage's locks, like clones. */
  'pve-destroy': 3,
  /** etcd admits one learner at a time: server joins are serialized. */
  'k3s-server-join': 1,
};

/**
 * Lanes whose limit adapts to what Proxmox answers (additive increase, multiplicative decrease): the
 * limit grows by one after a window of holds (as many as the limit) that saw no congestion, up to the
 * cap here, and halves at once when a hold reports congestion (a lock timeout; once per window). A
 * clone holds its storage's lock for only part of its task, so fast storage clones more at once
 * than 3 without a single timeout, and slow storage soon drops back to 1–2.
 */
export const LANE_CAPS: Readonly<Record<string, number>> = {
  'pve-clone': 8,
};

/** The lane limits of a run: LANE_LIMITS, and the agents of a rolling k3s upgrade cluster.upgrade.agentBatch at a time. */
export function laneLimitsFor(config: Config): Record<string, number> {
  return { ...LANE_LIMITS, 'k3s-roll-agent': config.cluster.upgrade.agentBatch };
}

export const DEFAULT_PARALLEL = 8;

export interface DriverOptions {
  steps: Step[];
  store: StateStore;
  events: RunEvents;
  /** Builds the context for one step (with the step's log/progress bound to it). */
  context: (step: Step, signal: AbortSignal) => StepContext;
  signal: AbortSignal;
  parallel?: number;
  laneLimits?: Readonly<Record<string, number>>;
  /** Lanes whose limit adapts, and its cap (LANE_CAPS); others keep their limit. */
  laneCaps?: Readonly<Record<string, number>>;
  redactor?: Redactor;
  now?: () => number;
}

export type RunOutcome = 'succeeded' | 'failed' | 'interrupted';

export interface RunResult {
  status: RunOutcome;
  /** Steps that failed in this run. */
  failed: Array<{ id: string; title: string; error: StepError }>;
  /** Steps not reached because something they need failed (or the run was interrupted). */
  blocked: string[];
  done: string[];
  skipped: string[];
}

export function errorInfo(err: unknown, redactor?: Redactor): StepError {
  const r = (s: string | undefined) => (s === undefined ? undefined : redactor ? redactor.redact(s) : s);
  if (err instanceof FlatcarK3sError) {
    const bug = err instanceof BugError;
    return { message: r(err.message)!, fix: r(err.fix), detail: r(err.detail ?? (bug ? err.stack : undefined)) };
  }
  if (err instanceof Error) return { message: r(err.message)!, detail: r(err.stack?.split('\n').slice(1, 6).join('\n')) };
  return { message: r(String(err))! };
}

export async function runSteps(opts: DriverOptions): Promise<RunResult> {
  const { steps, store, events } = opts;
  const now = opts.now ?? Date.now;
  const parallel = Math.max(1, opts.parallel ?? DEFAULT_PARALLEL);
  const lanes = opts.laneLimits ?? LANE_LIMITS;
  const order = topoOrder(steps);
  const byId = new Map(steps.map((s) => [s.id, s]));
  /** Outcome of each step in this run. */
  const outcome = new Map<string, 'done' | 'skipped' | 'failed' | 'interrupted'>();
  const running = new Map<string, Promise<void>>();
  const result: RunResult = { status: 'succeeded', failed: [], blocked: [], done: [], skipped: [] };

  const { transition, safe } = recorder(opts, now);

  const { readySteps, finish } = readyQueue(steps, order, outcome);

  /**
   * Lane slots a step takes for only the part of its work that needs one (ctx.slot: e.g. the clone
   * task, not the check or the state writes around it). A step waiting for a slot does not count
   * against --parallel, so other steps run meanwhile.
   */
  // Woken by a step that ends, or that starts waiting (for a slot, or idle): its place under --parallel is free.
  let wake: () => void = () => {};
  const lanesIn = laneSlots(lanes, opts.laneCaps ?? {}, opts.signal, () => wake());
  const { slot, idle } = lanesIn;

  const visit = async (step: Step): Promise<void> => {
    const ctx: StepContext = { ...opts.context(step, opts.signal), slot, idle };
    const inputsHash = hashOf(step.inputs ?? null, opts.redactor);
    let startedRun = false;
    try {
      const checked = await step.check(ctx);
      if (opts.signal.aborted) throw opts.signal.reason ?? new Error('aborted');
      if ('skip' in checked) {
        await transition(step, {
          type: 'skipped',
          id: step.id,
          title: step.title,
          at: now(),
          reason: safe(step, checked.reason),
          inputsHash,
        });
        finish(step.id, 'skipped');
        result.skipped.push(step.id);
        return;
      }
      if (checked.done) {
        await transition(step, {
          type: 'done',
          id: step.id,
          title: step.title,
          at: now(),
          via: 'check',
          outputs: safe(step, checked.outputs),
          reason: safe(step, checked.reason),
          inputsHash,
        });
        finish(step.id, 'done');
        result.done.push(step.id);
        return;
      }
      // Persisted before run(): a kill from here on leaves "running", and the next check decides.
      await transition(step, { type: 'running', id: step.id, title: step.title, at: now(), inputsHash });
      startedRun = true;
      const outputs = await step.run(ctx, checked.plan);
      // A step that returns normally did its work, even if an abort came meanwhile.
      await transition(step, {
        type: 'done',
        id: step.id,
        title: step.title,
        at: now(),
        via: 'run',
        outputs: safe(step, outputs ?? undefined),
        inputsHash,
      });
      finish(step.id, 'done');
      result.done.push(step.id);
    } catch (err) {
      if (opts.signal.aborted) {
        // Stopped on request (the step threw AbortedError, or failed because its work was cut off):
        // back to pending; its check decides on the next run.
        if (startedRun) await transition(step, { type: 'pending', id: step.id, title: step.title, at: now(), reason: 'interrupted' });
        outcome.set(step.id, 'interrupted');
        return;
      }
      const error = errorInfo(err, opts.redactor);
      if (isAbort(err)) error.message = `stopped: ${error.message}`;
      await transition(step, { type: 'failed', id: step.id, title: step.title, at: now(), error });
      outcome.set(step.id, 'failed');
      result.failed.push({ id: step.id, title: step.title, error });
    }
  };

  const laneFree = (step: Step): boolean => !step.lane || lanesIn.free(step.lane);

  events.emitEvent({
    type: 'plan',
    steps: order.map((id) => {
      const s = byId.get(id)!;
      return { id, title: s.title, group: s.group, status: (store.step(id)?.status ?? 'pending') as StepStatus };
    }),
  });

  const failures: unknown[] = [];
  for (;;) {
    if (!opts.signal.aborted) {
      // the ready steps in plan order (a step that cannot start for its lane stays for the next pass)
      for (let i = 0; i < readySteps.length; ) {
        if (running.size - lanesIn.waiting() >= parallel) break;
        const step = byId.get(readySteps[i]!)!;
        if (!laneFree(step)) {
          i++;
          continue;
        }
        readySteps.splice(i, 1);
        if (step.lane) lanesIn.take(step.lane);
        // visit() turns step errors into state; a rejection here is a failure to save the state.
        const p = visit(step)
          .catch((err: unknown) => void failures.push(err))
          .finally(() => {
            running.delete(step.id);
            // a step waiting in ctx.slot for this lane takes the place
            if (step.lane) lanesIn.release(step.lane);
            wake();
          });
        running.set(step.id, p);
      }
    }
    if (failures.length) throw failures[0];
    if (running.size === 0) break;
    await new Promise<void>((resolve) => (wake = resolve));
  }

  for (const id of order) if (!outcome.has(id) || outcome.get(id) === 'interrupted') result.blocked.push(id);
  result.status = opts.signal.aborted ? 'interrupted' : result.failed.length || result.blocked.length ? 'failed' : 'succeeded';
  return result;
}

/** How the driver records a step: each transition saved, then emitted; outputs and reasons redacted. */
function recorder(opts: DriverOptions, now: () => number) {
  const { store, events } = opts;
  /** Saved (atomically; transitions of the same moment share one write) before it is emitted or acted on. */
  const transition = async (step: Step, action: StepAction) => {
    const rec = await store.dispatchSaved(action);
    events.emitEvent({
      type: 'step',
      id: step.id,
      title: step.title,
      group: step.group,
      status: rec.status,
      at: rec.at,
      via: rec.status === 'done' ? rec.via : undefined,
      reason: rec.reason,
      error: rec.status === 'failed' ? rec.error : undefined,
    });
  };

  /** Secrets never reach the state file: outputs holding a known secret are recorded redacted. */
  const safe = <T>(step: Step, value: T): T => {
    if (!opts.redactor || value === undefined) return value;
    const clean = opts.redactor.redactDeep(value);
    if (JSON.stringify(clean) !== JSON.stringify(value))
      events.emitEvent({
        type: 'log',
        id: step.id,
        group: step.group,
        level: 'warn',
        at: now(),
        line: "a secret value in this step's outputs or reason was recorded as *** (steps keep secrets in the SecretStore)",
      });
    return clean;
  };
  return { transition, safe };
}

/** The steps whose needs are all done or skipped, in plan order: a step joins when its last need does. */
function readyQueue(steps: Step[], order: string[], outcome: Map<string, 'done' | 'skipped' | 'failed' | 'interrupted'>) {
  const position = new Map(order.map((id, i) => [id, i]));
  const unmet = new Map(steps.map((st) => [st.id, new Set(st.needs).size]));
  const dependents = new Map<string, string[]>();
  for (const st of steps)
    for (const n of new Set(st.needs)) {
      const list = dependents.get(n);
      if (list) list.push(st.id);
      else dependents.set(n, [st.id]);
    }
  const readySteps = order.filter((id) => unmet.get(id) === 0);
  /** A step ended done or skipped: its dependents with no other unmet need become ready. */
  const finish = (id: string, o: 'done' | 'skipped'): void => {
    outcome.set(id, o);
    for (const d of dependents.get(id) ?? []) {
      const left = unmet.get(d)! - 1;
      unmet.set(d, left);
      if (left > 0) continue;
      const at = position.get(d)!;
      let i = readySteps.length;
      while (i > 0 && position.get(readySteps[i - 1]!)! > at) i--;
      readySteps.splice(i, 0, d);
    }
  };
  return { readySteps, finish };
}

/** The lanes' slots: how many steps of each lane hold one, and the steps waiting for one in ctx.slot. */
function laneSlots(
  lanes: Readonly<Record<string, number>>,
  caps: Readonly<Record<string, number>>,
  signal: AbortSignal,
  /** A step starts waiting (for a slot, or idle): its place under --parallel is free. */
  onWait: () => void,
) {
  const use = new Map<string, number>();
  const waiters = new Map<string, Array<() => void>>();
  const adaptive = new Map(Object.keys(caps).map((lane) => [lane, { limit: lanes[lane] ?? 1, clean: 0, window: 0 }]));
  let waiting = 0;
  const limit = (lane: string): number => adaptive.get(lane)?.limit ?? lanes[lane] ?? Infinity;
  const free = (lane: string): boolean => (use.get(lane) ?? 0) < limit(lane);
  const take = (lane: string): void => void use.set(lane, (use.get(lane) ?? 0) + 1);
  /** Hand free slots to the steps waiting in slot() for this lane, first come first served. */
  const pump = (lane: string): void => {
    const q = waiters.get(lane);
    while (q?.length && free(lane)) {
      take(lane);
      q.shift()!();
    }
  };
  /** Give a slot back: to a step waiting in slot() for this lane if the limit allows, else to the lane. */
  const release = (lane: string): void => {
    use.set(lane, (use.get(lane) ?? 1) - 1);
    pump(lane);
  };
  /** AIMD on an adaptive lane: a hold that ended; `congested` when Proxmox answered with a lock timeout. */
  const feedback = (lane: string, window: number, congested: boolean): void => {
    const a = adaptive.get(lane);
    if (!a) return;
    if (congested) {
      // one cut per window: holds that began before the cut saw the old limit
      if (window !== a.window) return;
      a.limit = Math.max(1, Math.floor(a.limit / 2));
      a.clean = 0;
      a.window++;
    } else if (++a.clean >= a.limit && a.limit < caps[lane]!) {
      a.limit++;
      a.clean = 0;
      a.window++;
      pump(lane);
    }
  };
  const slot = async <T>(lane: string, fn: (hold: LaneHold) => Promise<T>): Promise<T> => {
    if (!free(lane)) {
      waiting++;
      onWait();
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            const q = waiters.get(lane) ?? [];
            q.splice(q.indexOf(go), 1);
            reject(signal.reason ?? new Error('aborted'));
          };
          const go = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
          waiters.set(lane, [...(waiters.get(lane) ?? []), go]);
        });
      } finally {
        waiting--;
      }
    } else take(lane);
    const window = adaptive.get(lane)?.window ?? 0;
    let congested = false;
    try {
      const out = await fn({ congested: () => void (congested = true) });
      feedback(lane, window, congested);
      return out;
    } catch (err) {
      if (congested) feedback(lane, window, true);
      throw err;
    } finally {
      release(lane);
    }
  };
  /** Run `fn` as a wait on the world (a VM booting): meanwhile the step does not count against --parallel. */
  const idle = async <T>(fn: () => Promise<T>): Promise<T> => {
    waiting++;
    onWait();
    try {
      return await fn();
    } finally {
      waiting--;
    }
  };
  return {
    free,
    take,
    release,
    slot,
    idle,
    /** Steps waiting in slot() or idle(): they do not count against --parallel. */
    waiting: () => waiting,
  };
}
