/**
 * The live-run store: consumes RunEvents outside React and publishes immutable snapshots at a fixed
 * frame budget (default 10 fps, FRAME_MS), so thousands of log lines per second cost one render per frame.
 * Each step keeps a bounded tail (what its pane shows) and a bounded buffer (what "expand" shows);
 * the full log goes to the log file, never into memory.
 */
import type { RunEvent, StepStatus } from '../events.js';

export interface StepError {
  message: string;
  fix?: string;
  detail?: string;
}

export interface PaneView {
  id: string;
  title: string;
  group: string;
  startedAt: number;
  /** The latest log lines, oldest first, at most `tailLines`. */
  tail: string[];
  /** Lines received for this step so far (the tail shows only the last few). */
  lineCount: number;
  progress?: { message: string; fraction?: number };
}

export interface FinishedStep {
  id: string;
  title: string;
  group: string;
  status: Extract<StepStatus, 'done' | 'skipped' | 'failed'>;
  via?: 'check' | 'run';
  reason?: string;
  error?: StepError;
  /** Milliseconds the step ran (0 when found done by its check). */
  ms: number;
}

export type RunStatus = 'idle' | 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface RunSnapshot {
  /** Increases with every published snapshot. */
  version: number;
  status: RunStatus;
  message?: string;
  total: number;
  /** Steps done or skipped. */
  completed: number;
  running: PaneView[];
  /** Append-only, in the order steps finished (fed to <Static>). */
  finished: FinishedStep[];
  failed: FinishedStep[];
  startedAt?: number;
  endedAt?: number;
  /** When this snapshot was published: the screen's clock (elapsed times, spinner frame). */
  at: number;
}

/**
 * The live view's frame: 100 ms (10 fps). The spinner steps one glyph per 100 ms (the screen's frame
 * index is publish time / 100), so every frame shows the next glyph, where 15 fps showed some glyphs
 * twice and some once; 100 ms is also the delay under which an update still reads as immediate. Under a
 * log flood a faster rate shows nothing more a person can read, and each frame costs Ink a full
 * redraw (about 4 ms of CPU for a full 80x24 screen, npm run bench -- ui).
 */
export const FRAME_MS = 100;

export interface RunStoreOptions {
  /** Lines kept per pane for the live view. */
  tailLines?: number;
  /** Lines kept per step for the expanded view (the log file has them all). */
  bufferLines?: number;
  /** Publish interval in ms (default FRAME_MS); 0 = publish only on flush() (tests). */
  frameMs?: number;
  /** While running, publish at least this often even without events (spinners, elapsed time); by
   * default every other frame. */
  heartbeatMs?: number;
  now?: () => number;
}

/** A fixed-size ring of strings: O(1) push, no growth. */
export class Ring {
  private readonly items: string[];
  private start = 0;
  private size = 0;
  constructor(readonly capacity: number) {
    this.items = new Array<string>(capacity);
  }
  push(s: string): void {
    if (this.capacity === 0) return;
    if (this.size < this.capacity) {
      this.items[(this.start + this.size++) % this.capacity] = s;
    } else {
      this.items[this.start] = s;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  /** The last n items, oldest first. */
  last(n = this.size): string[] {
    const k = Math.min(n, this.size);
    const out = new Array<string>(k);
    for (let i = 0; i < k; i++) out[i] = this.items[(this.start + this.size - k + i) % this.capacity]!;
    return out;
  }
  get length(): number {
    return this.size;
  }
}

interface LiveStep {
  id: string;
  title: string;
  group: string;
  status: StepStatus;
  startedAt?: number;
  buffer?: Ring;
  lineCount: number;
  progress?: { message: string; fraction?: number };
  /** A step of the run (in the plan or with a status), counted in the total; not the services' own log. */
  listed: boolean;
}

export class RunStore {
  private readonly tailLines: number;
  private readonly bufferLines: number;
  private readonly steps = new Map<string, LiveStep>();
  private readonly order: string[] = [];
  private finished: FinishedStep[] = [];
  private status: RunStatus = 'idle';
  private message?: string;
  private startedAt?: number;
  private endedAt?: number;
  private dirty = false;
  private snapshot: RunSnapshot;
  private readonly listeners = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private version = 0;
  private readonly now: () => number;

  constructor(opts: RunStoreOptions = {}) {
    this.tailLines = opts.tailLines ?? 8;
    this.bufferLines = Math.max(opts.bufferLines ?? 500, this.tailLines);
    this.now = opts.now ?? Date.now;
    this.snapshot = this.build();
    const frameMs = opts.frameMs ?? FRAME_MS;
    // Just under two frames, so timer jitter cannot stretch it to three.
    const heartbeat = opts.heartbeatMs ?? 2 * frameMs - 10;
    if (frameMs > 0) {
      // The one clock of the live view: at most one snapshot (so one render) per frame, and a
      // heartbeat while running so spinners and elapsed times move when no log line arrives.
      this.timer = setInterval(() => {
        if (!this.dirty && this.status === 'running' && this.now() - this.snapshot.at >= heartbeat) this.dirty = true;
        this.flush();
      }, frameMs);
      this.timer.unref();
    }
  }

  /** Feed one event; cheap (no allocation per log line beyond the ring slot). */
  ingest = (e: RunEvent): void => {
    switch (e.type) {
      case 'plan':
        for (const s of e.steps) {
          const live = this.ensure(s.id, s.title, s.group);
          live.status = s.status;
        }
        break;
      case 'run':
        if (e.status === 'started') {
          this.status = 'running';
          this.startedAt ??= e.at;
          this.endedAt = undefined;
          this.message = e.message;
        } else {
          this.status = e.status;
          this.endedAt = e.at;
          this.message = e.message;
        }
        break;
      case 'step': {
        const live = this.ensure(e.id, e.title, e.group);
        const was = live.status;
        live.status = e.status;
        if (e.status === 'running') {
          live.startedAt = e.at;
          live.buffer ??= new Ring(this.bufferLines);
        } else if (e.status === 'done' || e.status === 'skipped' || e.status === 'failed') {
          this.finished.push({
            id: e.id,
            title: e.title,
            group: e.group,
            status: e.status,
            via: e.via,
            reason: e.reason,
            error: e.error,
            ms: was === 'running' && live.startedAt !== undefined ? Math.max(0, e.at - live.startedAt) : 0,
          });
          // Done steps drop their buffer; failed ones keep it for the failure view.
          if (e.status !== 'failed') live.buffer = undefined;
          live.progress = undefined;
        } else if (e.status === 'pending' && was === 'failed') {
          // A retry re-opens the step.
          this.finished = this.finished.filter((f) => f.id !== e.id);
        }
        break;
      }
      case 'log': {
        // Lines of no step (the runner's services log as 'services') keep a buffer but are not a step.
        const live = this.ensure(e.id, e.id, e.group, false);
        live.buffer ??= new Ring(this.bufferLines);
        live.buffer.push(e.level === 'info' ? e.line : `${e.level}: ${e.line}`);
        live.lineCount++;
        break;
      }
      case 'progress': {
        const live = this.ensure(e.id, e.id, e.group, false);
        live.progress = { message: e.message, fraction: e.fraction };
        break;
      }
    }
    this.dirty = true;
  };

  private ensure(id: string, title: string, group: string, step = true): LiveStep {
    let s = this.steps.get(id);
    if (!s) {
      s = { id, title, group, status: 'pending', lineCount: 0, listed: false };
      this.steps.set(id, s);
    }
    if (step && !s.listed) {
      s.listed = true;
      this.order.push(id);
    }
    if (title !== id) {
      s.title = title;
      s.group = group;
    }
    return s;
  }

  private build(): RunSnapshot {
    const running: PaneView[] = [];
    const failed: FinishedStep[] = [];
    let completed = 0;
    for (const id of this.order) {
      const s = this.steps.get(id)!;
      if (s.status === 'done' || s.status === 'skipped') completed++;
      if (s.status === 'running')
        running.push({
          id,
          title: s.title,
          group: s.group,
          startedAt: s.startedAt ?? 0,
          tail: s.buffer ? s.buffer.last(this.tailLines) : [],
          lineCount: s.lineCount,
          progress: s.progress,
        });
    }
    for (const f of this.finished) if (f.status === 'failed' && this.steps.get(f.id)?.status === 'failed') failed.push(f);
    return {
      version: ++this.version,
      status: this.status,
      message: this.message,
      total: this.order.length,
      completed,
      running,
      finished: this.finished.slice(),
      failed,
      startedAt: this.startedAt,
      endedAt: this.endedAt,
      at: this.now(),
    };
  }

  /** Publish a new snapshot now if anything changed. */
  flush = (): void => {
    if (!this.dirty) return;
    this.dirty = false;
    this.snapshot = this.build();
    for (const l of this.listeners) l();
  };

  getSnapshot = (): RunSnapshot => this.snapshot;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  /** The bounded in-memory log of one step (for the expanded view). */
  buffered(id: string): { lines: string[]; total: number } {
    const s = this.steps.get(id);
    return { lines: s?.buffer?.last() ?? [], total: s?.lineCount ?? 0 };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
