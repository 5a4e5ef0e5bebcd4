/**
 * The pure reducer over one step's state: pending → running → done | skipped | failed.
 * `check` may find a step done (or not applicable) from any status, since it reads the real world;
 * `done via run` only follows `running`; an interrupted or re-opened step goes back to pending.
 */
import type { StepStatus } from '../events.js';
import { BugError } from '../errors.js';
import type { StepOutputs } from '../../steps/types.js';

export interface StepError {
  message: string;
  fix?: string;
  detail?: string;
}

export interface StepRecord {
  status: StepStatus;
  title?: string;
  /** Time of the last transition (ms since epoch). */
  at: number;
  /** How the step became done: found done by `check`, or by `run`. */
  via?: 'check' | 'run';
  reason?: string;
  error?: StepError;
  outputs?: StepOutputs;
  /** Hash of the step's `inputs` when it last became running/done/skipped. */
  inputsHash?: string;
}

export type StepAction =
  | { type: 'running'; id: string; at: number; title?: string; inputsHash?: string }
  | {
      type: 'done';
      id: string;
      at: number;
      title?: string;
      via: 'check' | 'run';
      outputs?: StepOutputs;
      inputsHash?: string;
      reason?: string;
    }
  | { type: 'skipped'; id: string; at: number; title?: string; reason: string; inputsHash?: string }
  | { type: 'failed'; id: string; at: number; title?: string; error: StepError }
  | { type: 'pending'; id: string; at: number; title?: string; reason?: string };

/** Where a transition leads: the status, with `done` told apart by how (found by check, or by run). */
export type Transition = Exclude<StepStatus, 'done'> | 'done:check' | 'done:run';

/**
 * The transition table: from each status, where a step may go.
 * - check reads the real world, so from any status it may find the step done, not applicable (skipped),
 *   or fail (the check itself threw);
 * - running follows any status: the check said "not done" (a `running` left by a killed run runs again);
 * - done:run follows only running;
 * - pending follows running (interrupted) or a finished step the config re-opened (done, skipped);
 *   a pending or failed step has nothing to go back from.
 */
export const TRANSITIONS: Readonly<Record<StepStatus, ReadonlyArray<Transition>>> = {
  pending: ['running', 'done:check', 'skipped', 'failed'],
  running: ['running', 'done:check', 'done:run', 'skipped', 'failed', 'pending'],
  done: ['running', 'done:check', 'skipped', 'failed', 'pending'],
  skipped: ['running', 'done:check', 'skipped', 'failed', 'pending'],
  failed: ['running', 'done:check', 'skipped', 'failed'],
};

export const transitionOf = (action: StepAction): Transition => (action.type === 'done' ? `done:${action.via}` : action.type);

export function reduceStep(prev: StepRecord | undefined, action: StepAction): StepRecord {
  const from: StepStatus = prev?.status ?? 'pending';
  const to = transitionOf(action);
  if (!TRANSITIONS[from].includes(to)) {
    throw new BugError(
      `step ${action.id}: invalid transition ${from} → ${to}${to === 'done:run' ? ' ("done via run" must follow "running")' : ''}`,
    );
  }
  const title = action.title ?? prev?.title;
  const base = { title, at: action.at };
  switch (action.type) {
    case 'running':
      return { ...base, status: 'running', inputsHash: action.inputsHash ?? prev?.inputsHash, outputs: prev?.outputs };
    case 'done':
      return {
        ...base,
        status: 'done',
        via: action.via,
        reason: action.reason,
        inputsHash: action.inputsHash ?? prev?.inputsHash,
        outputs: action.outputs ?? prev?.outputs,
      };
    case 'skipped':
      return { ...base, status: 'skipped', reason: action.reason, inputsHash: action.inputsHash ?? prev?.inputsHash };
    case 'failed':
      return { ...base, status: 'failed', error: action.error, inputsHash: prev?.inputsHash, outputs: prev?.outputs };
    case 'pending':
      return { ...base, status: 'pending', reason: action.reason, inputsHash: prev?.inputsHash, outputs: prev?.outputs };
  }
}

/** Step ids in an order where every step follows its needs (stable: keeps list order otherwise). */
export function topoOrder(steps: ReadonlyArray<{ id: string; needs: string[] }>): string[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]) => {
    const st = state.get(id);
    if (st === 'done') return;
    if (st === 'visiting') throw new BugError(`steps form a cycle: ${[...path, id].join(' → ')}`);
    const s = byId.get(id);
    if (!s) throw new BugError(`step ${path[path.length - 1]} needs unknown step ${id}`);
    state.set(id, 'visiting');
    for (const n of s.needs) visit(n, [...path, id]);
    state.set(id, 'done');
    out.push(id);
  };
  for (const s of steps) visit(s.id, []);
  return out;
}
