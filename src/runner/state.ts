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
import { writeFileAtomic } from '../store/atomic.js';
import { Journal, readJournal, type JournalEntry } from '../store/journal.js';
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
  return loadState(clusterDir)?.state;
}

type JournalLine = JournalEntry & { u: number; id?: string; r?: StepRecord; pin?: string; fp?: string };

/**
 * The snapshot (state.json) with the journal's later entries applied (state.journal: step transitions
 * and pins since the snapshot), and the sequence number reached. Writes nothing.
 */
function loadState(clusterDir: string): { state: ClusterState; seq: number } | undefined {
  const files = clusterFiles(clusterDir);
  const file = files.state;
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
  const state = doc as ClusterState & { journalSeq?: number };
  state.pins ??= {};
  let seq = state.journalSeq ?? 0;
  delete state.journalSeq;
  for (const e of readJournal<JournalLine>(files.stateJournal)) {
    if (e.s <= seq) continue; // already in the snapshot
    seq = e.s;
    state.updatedAt = e.u;
    if (e.id !== undefined && e.r) state.steps[e.id] = e.r;
    else if (e.pin !== undefined && e.fp !== undefined) state.pins[e.pin] = e.fp;
  }
  return { state, seq };
}

/** Moving a broken state file away is safe (steps are checked against the real world) but drops its pins. */
function brokenStateFix(file: string): string {
  return (
    `Restore it from a backup, or move it away (mv ${file} ${file}.broken) and run "up" again: every step is checked ` +
    'against the real world, so nothing done is redone. The fingerprints pinned in it are lost with it: put ' +
    'proxmox.fingerprint in the config first so the next run does not trust the certificate it meets.'
  );
}

/** The journal is folded into a new snapshot once it is this big, or twice the snapshot's size. */
const COMPACT_MIN_BYTES = 256 * 1024;

/**
 * The writable state of one cluster: a snapshot (state.json, written atomically) and a journal
 * (state.journal) of the step transitions and pins since, so a run writes O(transitions) bytes, not
 * O(transitions × state size). `update`/`dispatch` and pins are saved before they return (fdatasync'd
 * journal line; `update` writes a snapshot); `dispatchSaved` (the driver's step transitions) resolves once
 * a journal append holding it is on disk, and transitions of the same moment share one append (group
 * commit) off the event loop. Now and then the journal is compacted into a new snapshot.
 */
export class StateStore {
  readonly clusterDir: string;
  private state: ClusterState;
  private readonly now: () => number;
  /** Bumped on every change; `savedSeq` is the last change on disk (snapshot or journal). */
  private seq: number;
  private savedSeq: number;
  /** Journal lines of changes not yet on disk, in order. */
  private pending: string[] = [];
  private readonly journal: Journal;
  private hasSnapshot: boolean;
  private snapshotBytes = 0;
  /** Journal bytes written by this store (for the bench). */
  written = 0;
  /** The next group write, shared by every transition made before it starts. */
  private next?: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void };
  private writing = false;
  /**
   * JSON of what rarely changes, reused by every snapshot: each step record (the reducer makes a new
   * record per transition, so a record's text never goes stale) and the run's fixed fields (order,
   * titles, config…). `update()` may change anything in place, so it drops both.
   */
  private recordJson = new WeakMap<StepRecord, string>();
  private fixedJson?: string;

  constructor(clusterDir: string, state: ClusterState, now: () => number = Date.now, seq?: number) {
    this.clusterDir = clusterDir;
    this.state = state;
    this.now = now;
    this.journal = new Journal(clusterFiles(clusterDir).stateJournal);
    this.hasSnapshot = existsSync(this.file);
    // A store made from readState() continues after what is on disk.
    this.seq = this.savedSeq = seq ?? (this.hasSnapshot ? (loadState(clusterDir)?.seq ?? 0) : 0);
  }

  static open(clusterDir: string, cluster: string, now: () => number = Date.now): StateStore {
    const loaded = loadState(clusterDir);
    return new StateStore(clusterDir, loaded?.state ?? emptyState(cluster, now()), now, loaded?.seq ?? 0);
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

  /** Apply a step transition (validated by the reducer) and save before returning. */
  dispatch(action: StepAction): StepRecord {
    const next = reduceStep(this.state.steps[action.id], action);
    this.state.steps[action.id] = next;
    this.writeLineNow(this.stepLine(action.id, next));
    return next;
  }

  /**
   * Apply a step transition (validated by the reducer at once) and resolve once a write holding it is
   * on disk. Transitions of the same moment share one write.
   */
  async dispatchSaved(action: StepAction): Promise<StepRecord> {
    const next = reduceStep(this.state.steps[action.id], action);
    this.state.steps[action.id] = next;
    this.pending.push(this.stepLine(action.id, next));
    await this.saved();
    return next;
  }

  /** Change anything and save before returning (a new snapshot: rare, e.g. at the start of a run). */
  update(fn: (s: ClusterState) => void): void {
    fn(this.state);
    this.recordJson = new WeakMap();
    this.fixedJson = undefined;
    this.snapshotNow();
  }

  private stepLine(id: string, rec: StepRecord): string {
    this.state.updatedAt = this.now();
    return JSON.stringify({ s: ++this.seq, u: this.state.updatedAt, id, r: rec });
  }

  private pinLine(key: string, fp: string): string {
    this.state.updatedAt = this.now();
    return JSON.stringify({ s: ++this.seq, u: this.state.updatedAt, pin: key, fp });
  }

  /** Save `line` (and any pending lines before it) now, synchronously. */
  private writeLineNow(line: string): void {
    if (!this.hasSnapshot) return this.snapshotNow();
    const lines = [...this.pending.splice(0), line];
    const seq = this.seq;
    this.journal.appendSync(lines);
    this.written += lines.reduce((a, l) => a + l.length + 1, 0);
    this.savedSeq = Math.max(this.savedSeq, seq);
    this.maybeCompact();
  }

  /** Write the whole state as a new snapshot and empty the journal. */
  private snapshotNow(): void {
    this.state.updatedAt = this.now();
    const v = ++this.seq;
    const text = this.serialize(v);
    writeFileAtomic(this.file, text, 0o600);
    this.journal.resetSync();
    this.written += text.length;
    this.snapshotBytes = text.length;
    this.pending = [];
    this.hasSnapshot = true;
    this.savedSeq = Math.max(this.savedSeq, v);
  }

  private maybeCompact(): void {
    if (this.journal.bytes > Math.max(COMPACT_MIN_BYTES, 2 * this.snapshotBytes)) this.snapshotNow();
  }

  /** Resolves when every change made so far is on disk. */
  saved(): Promise<void> {
    if (this.savedSeq >= this.seq && !this.next) return Promise.resolve();
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

  /** Compact JSON of the whole state, with the journal position it holds. */
  private serialize(seq: number): string {
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
    return `${head}${head.length > 1 ? ',' : ''}"updatedAt":${JSON.stringify(updatedAt)},"journalSeq":${seq},"pins":${JSON.stringify(pins)},"steps":{${parts.join(',')}}}\n`;
  }

  private async flush(): Promise<void> {
    const group = this.next;
    if (!group) return;
    this.next = undefined;
    this.writing = true;
    try {
      const v = this.seq;
      if (this.savedSeq < v) {
        if (!this.hasSnapshot) this.snapshotNow();
        else {
          const lines = this.pending.splice(0);
          await this.journal.append(lines);
          this.written += lines.reduce((a, l) => a + l.length + 1, 0);
          this.savedSeq = Math.max(this.savedSeq, v);
          this.maybeCompact();
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

  /** Close the journal's descriptor (a later write opens it again). */
  close(): void {
    this.journal.close();
  }

  pins(): PinStore {
    return {
      get: (key) => this.state.pins[key],
      set: (key, fingerprint) => {
        if (this.state.pins[key] === fingerprint) return;
        // Trusted at once in memory; on disk with the next group write, which comes before (or with)
        // the transition of the step that set it: nothing that relied on the pin is recorded done
        // before the pin is saved. A crash in between finds the step not done and meets the host as for
        // the first time. (A synchronous fsync per pin cost 200 fsyncs on the event loop at 200 nodes.)
        this.state.pins[key] = fingerprint;
        this.pending.push(this.pinLine(key, fingerprint));
        this.saved().catch(() => undefined); // a failed write fails the next transition's save too
      },
    };
  }
}
