/**
 * The wizard's state and its reducer. The draft is a raw config document (what a user would write in
 * a YAML file), filled in screen by screen; the Review screen validates it with resolveConfig, so the
 * UI produces exactly what `up --config` takes. Going back keeps everything typed.
 */
import type { Config } from '../config/schema.js';
import type { PveStorageInfo, PveVmResource } from '../proxmox/types.js';
import type { RunOutcome, SavedConfig, UnfinishedRun } from './types.js';

export type Plain = Record<string, unknown>;

export type ScreenId = 'start' | 'proxmox' | 'flatcar' | 'nodes' | 'apps' | 'review' | 'run' | 'done';

/** What the Proxmox screen learned from the server (used by the later screens). */
export interface ConnectionFacts {
  pveVersion?: string;
  /** Online PVE nodes, in the order chosen for placement. */
  pveNodes: string[];
  storages: PveStorageInfo[];
  templates: PveVmResource[];
}

export interface WizardState {
  screen: ScreenId;
  history: ScreenId[];
  draft: Plain;
  facts?: ConnectionFacts;
  recreateTemplate: boolean;
  config?: Config;
  saved?: SavedConfig;
  resume?: UnfinishedRun;
  outcome?: RunOutcome;
  runStartedAt?: number;
  runEndedAt?: number;
  /** Bumped at every run start: the Run screen gets a fresh store. */
  runAttempt: number;
  /** A message for the current screen (e.g. why a resume needs the connection again). */
  notice?: string;
}

export type WizardAction =
  | { type: 'next'; screen: ScreenId; patch?: Plain }
  | { type: 'back'; patch?: Plain }
  | { type: 'begin'; draft: Plain; screen: ScreenId; resume?: UnfinishedRun; notice?: string; history?: ScreenId[] }
  | { type: 'facts'; facts: ConnectionFacts }
  | { type: 'recreate'; value: boolean }
  | { type: 'ready'; config: Config; saved: SavedConfig }
  | { type: 'run-started'; at: number; config: Config }
  | { type: 'run-ended'; outcome: RunOutcome; at: number };

const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge where objects merge key by key, other values replace, and `undefined` removes a key. */
export function mergeDraft(base: Plain, patch: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete out[k];
    else if (isPlain(v) && isPlain(out[k])) out[k] = mergeDraft(out[k] as Plain, v);
    else out[k] = v;
  }
  return out;
}

/** Read a value at a dotted path of the draft. */
export function draftGet(draft: Plain, path: string): unknown {
  let cur: unknown = draft;
  for (const k of path.split('.')) {
    if (!isPlain(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

export function initialState(draft: Plain = {}): WizardState {
  return { screen: 'start', history: [], draft, recreateTemplate: false, runAttempt: 0 };
}

export function wizard(s: WizardState, a: WizardAction): WizardState {
  switch (a.type) {
    case 'next':
      return {
        ...s,
        screen: a.screen,
        history: [...s.history, s.screen],
        draft: a.patch ? mergeDraft(s.draft, a.patch) : s.draft,
        notice: undefined,
      };
    case 'back': {
      const prev = s.history.at(-1);
      const draft = a.patch ? mergeDraft(s.draft, a.patch) : s.draft;
      if (!prev) return { ...s, draft };
      return { ...s, screen: prev, history: s.history.slice(0, -1), draft, notice: undefined };
    }
    case 'begin':
      return {
        ...initialState(a.draft),
        screen: a.screen,
        history: a.history ?? ['start'],
        resume: a.resume,
        notice: a.notice,
        facts: s.facts,
        runAttempt: s.runAttempt,
      };
    case 'facts':
      return { ...s, facts: a.facts };
    case 'recreate':
      return { ...s, recreateTemplate: a.value };
    case 'ready':
      return { ...s, config: a.config, saved: a.saved };
    case 'run-started':
      return {
        ...s,
        config: a.config,
        screen: 'run',
        history: s.screen === 'run' ? s.history : [...s.history, s.screen],
        runStartedAt: s.runStartedAt ?? a.at,
        runEndedAt: undefined,
        outcome: undefined,
        runAttempt: s.runAttempt + 1,
      };
    case 'run-ended':
      return { ...s, outcome: a.outcome, runEndedAt: a.at, screen: a.outcome.status === 'succeeded' ? 'done' : s.screen };
  }
}
