/**
 * The persisted run state of one cluster: `<clusterDir>/state.json` (mode 0600).
 * Holds each step's status, outputs and inputs hash, the redacted config snapshot, and pins
 * (TLS / SSH fingerprints: not secret). Never secrets: those live in secrets.json (SecretStore).
 *
 * Why not `conf`: it loads ajv/ajv-formats at import (slows `plan`/`status`, which read this file),
 * and we need a reader that never writes (plan/status touch nothing) plus a clear error on a corrupt
 * file instead of a silent reset. The writer is ours: temp + fsync + rename (src/store/atomic.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { PinStore } from '../../steps/types.js';
import { UserError } from '../errors.js';
import { prepareFileAtomic, writeFileAtomic } from '../store/atomic.js';
import { clusterFiles } from '../store/layout.js';
import { reduceStep, type StepAction, type StepRecord } from './reducer.js';
import { stateShapeProblems } from './state-shape.js';

export type { StepError, StepRecord } from './reducer.js';


export type RunStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface ClusterState {
  version: 1;
  cluster: string;
  createdAt: number;
  updatedAt: number;
  /** Hash of the whole (redacted) config at the start of the last run. */
  configHash?: string;
  /** Flattened, redacted config at the start of the last run (dotted path → value). */
  config?: Record<string, unknown>;
  /** Step ids in plan order, as of the last run (for `status`). */
  order?: string[];
  /** Step titles of the last run's plan (for `status` of steps not reached yet). */
  titles?: Record<string, string>;
  steps: Record<string, StepRecord>;
  pins: Record<string, string>;
  lastRun?: { startedAt: number; finishedAt?: number; status: RunStatus; pid: number; command?: string; message?: string };
}

export function emptyState(cluster: string, now = Date.now()): ClusterState {
  return { version: 1, cluster, createdAt: now, updatedAt: now, steps: {}, pins: {} };
}

/** Read a state file without writing anything; undefined when there is none. */
export function readState(clusterDir: string): ClusterState | undefined {
  const file = clusterFiles(clusterDir).state;
  if (!existsSync(file)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`The state file ${file} is not valid JSON (${(err as Error).message})`, { fix: brokenStateFix(file) });
  }
  const problems = stateShapeProblems(doc);
  if (problems.length) {
    const future = (doc as { version?: unknown } | null)?.version !== undefined && (doc as { version?: unknown }).version !== 1;
    throw new UserError(`The state file ${file} is not a flatcar-k3s state file this version can read: ${problems.join('; ')}`, {
      fix: future ? `Use the flatcar-k3s version that wrote it, or: ${brokenStateFix(file)}` : brokenStateFix(file),
    });
  }
  const state = doc as ClusterState;
  state.pins ??= {};
  return state;
}

/** Moving a broken state file away is safe (steps are checked against the real world) but drops its pins. */
function brokenStateFix(file: string): string {
  return (
    `Restore it from a backup, or move it away (mv ${file} ${file}.broken) and run "up" again: every step is checked ` +
    'against the real world, so nothing done is redone. The fingerprints pinned in it are lost with it: put ' +
    'proxmox.fingerprint in the config first so the next run does not trust the certificate it meets.'
  );
}

/**
 * The writable state of one cluster. Every change is saved atomically (temp + fsync + rename):
 * `update`/`dispatch` before they return; `dispatchSaved` (the driver's step transitions) before its
 * promise resolves. The state is changed in place and written compactly; transitions that come while a
 * write is under way share the next write (group commit), so a run of many steps costs O(writes × size)
 * rather than one clone + pretty print + fsync per transition, and fsync does not block the event loop.
 */
export class StateStore {
  readonly clusterDir: string;
  private state: ClusterState;
  private readonly now: () => number;
  /** Bumped on every change; `savedVersion` is the version the file on disk holds. */
  private version = 0;
  private savedVersion = 0;
  /** The next group write, shared by every transition made before it starts. */
  private next?: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void };
  private writing = false;
  /**
   * JSON of what rarely changes, reused by every save: each step record (the reducer makes a new
   * record per transition, so a record's text never goes stale) and the run's fixed fields (order,
   * titles, config…). `update()` may change anything in place, so it drops both.
   */
  private recordJson = new WeakMap<StepRecord, string>();
  private fixedJson?: string;

  constructor(clusterDir: string, state: ClusterState, now: () => number = Date.now) {
    this.clusterDir = clusterDir;
    this.state = state;
    this.now = now;
  }

  static open(clusterDir: string, cluster: string, now: () => number = Date.now): StateStore {
    return new StateStore(clusterDir, readState(clusterDir) ?? emptyState(cluster, now()), now);
  }

  get file(): string {
    return clusterFiles(this.clusterDir).state;
  }

  get(): Readonly<ClusterState> {
    return this.state;
  }

  step(id: string): Readonly<StepRecord> | undefined {
    return this.state.steps[id];
  }

  /** Apply a step transition (validated by the reducer) and save. */
  dispatch(action: StepAction): StepRecord {
    const next = reduceStep(this.state.steps[action.id], action);
    this.update((s) => {
      s.steps[action.id] = next;
    });
    return next;
  }

  /**
   * Apply a step transition (validated by the reducer at once) and resolve once a write holding it is
   * on disk. Transitions of the same moment share one write.
   */
  async dispatchSaved(action: StepAction): Promise<StepRecord> {
    const next = reduceStep(this.state.steps[action.id], action);
    this.state.steps[action.id] = next;
    this.state.updatedAt = this.now();
    this.version++;
    await this.saved();
    return next;
  }

  /** Change and save before returning (synchronous write). */
  update(fn: (s: ClusterState) => void): void {
    fn(this.state);
    this.recordJson = new WeakMap();
    this.fixedJson = undefined;
    this.writeNow();
  }

  private writeNow(): void {
    this.state.updatedAt = this.now();
    const v = ++this.version;
    writeFileAtomic(this.file, this.serialize(), 0o600);
    this.savedVersion = Math.max(this.savedVersion, v);
  }

  /** Resolves when every change made so far is on disk. */
  saved(): Promise<void> {
    if (this.savedVersion >= this.version && !this.next) return Promise.resolve();
    if (!this.next) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { promise, resolve, reject };
      // setImmediate: transitions made in the same turn of the event loop join this write.
      if (!this.writing) setImmediate(() => void this.flush());
    }
    return this.next.promise;
  }

  /** Compact JSON of the whole state (the file is rewritten whole on every save; pretty printing tripled it). */
  private serialize(): string {
    const { steps, pins, updatedAt, ...fixed } = this.state;
    this.fixedJson ??= JSON.stringify(fixed);
    const parts: string[] = [];
    for (const id in steps) {
      const rec = steps[id]!;
      let text = this.recordJson.get(rec);
      if (text === undefined) this.recordJson.set(rec, (text = `${JSON.stringify(id)}:${JSON.stringify(rec)}`));
      parts.push(text);
    }
    const head = this.fixedJson.slice(0, -1);
    return `${head}${head.length > 1 ? ',' : ''}"updatedAt":${JSON.stringify(updatedAt)},"pins":${JSON.stringify(pins)},"steps":{${parts.join(',')}}}\n`;
  }

  private async flush(): Promise<void> {
    const group = this.next;
    if (!group) return;
    this.next = undefined;
    this.writing = true;
    try {
      const v = this.version;
      if (this.savedVersion < v) {
        const write = await prepareFileAtomic(this.file, this.serialize(), 0o600);
        // A synchronous update() may have saved a newer state meanwhile (it holds these changes too,
        // since the state is changed in place): then this older file must not replace it.
        if (this.savedVersion >= v) write.discard();
        else {
          await write.commit();
          this.savedVersion = Math.max(this.savedVersion, v);
        }
      }
      group.resolve();
    } catch (err) {
      group.reject(err);
    } finally {
      this.writing = false;
      if (this.next) setImmediate(() => void this.flush());
    }
  }

  pins(): PinStore {
    return {
      get: (key) => this.state.pins[key],
      set: (key, fingerprint) => {
        if (this.state.pins[key] === fingerprint) return;
        // Saved before returning (a pin is trusted at once); pins are not in the cached JSON.
        this.state.pins[key] = fingerprint;
        this.writeNow();
      },
    };
  }
}
