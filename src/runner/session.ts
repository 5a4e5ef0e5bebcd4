/**
 * A run of one cluster, as the CLI and the UI use it:
 * - `planRun`: read-only view (steps, describe lines, saved statuses, config changes): touches nothing.
 * - `ClusterRun.open`: takes the cluster lock, opens state, secrets, log file; `execute` runs the steps.
 * The runner emits events only; printing is the caller's business.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { RunEvents, type StepStatus } from '../events.js';
import type { RunOptions, SecretStore, Step } from '../../steps/types.js';
import { LogFile } from '../log/file.js';
import { Redactor } from '../log/redact.js';
import { detectChanges, flattenConfig, configHash, type ConfigChanges } from './changes.js';
import { contextFactory } from './context.js';
import { DEFAULT_PARALLEL, LANE_CAPS, laneLimitsFor, runSteps, type RunResult } from './driver.js';
import { acquireLock, type ClusterLock } from './lock.js';
import { topoOrder } from './reducer.js';
import { FileSecretStore } from './secrets.js';
import { createServices, offlineServices } from './services.js';
import { StateStore, readState, type ClusterState } from './state.js';
import { loadBuildSteps, type BuildSteps } from './steps.js';
import { clusterDirFor, clusterFiles } from '../store/layout.js';

export interface PlanLine {
  id: string;
  title: string;
  group: string;
  /** The step's own plan sentence. */
  describe: string;
  /** Saved status from earlier runs ('new' = never seen). */
  status: StepStatus | 'new';
  reopened: boolean;
}

export interface PlanView {
  clusterDir: string;
  state?: ClusterState;
  steps: Step[];
  lines: PlanLine[];
  changes: ConfigChanges;
}

/** Secrets for describe(): reads the file if there is one, never writes. */
class ReadOnlySecrets implements SecretStore {
  private values: Record<string, string> = {};
  constructor(clusterDir: string) {
    const f = clusterFiles(clusterDir).secrets;
    if (existsSync(f)) {
      try {
        this.values = JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>;
      } catch {}
    }
  }
  get(name: string) {
    return this.values[name];
  }
  getOrCreate(name: string, _make: () => string) {
    return this.values[name] ?? '<created on the first run>';
  }
  set() {}
}

/** The plan lines of a step list: describe() with offline services (nothing can connect). */
export function describeSteps(a: {
  config: Config;
  clusterDir: string;
  stateDir: string;
  options: RunOptions;
  steps: Step[];
  state: ClusterState | undefined;
  redactor: Redactor;
  changes: ConfigChanges;
}): PlanLine[] {
  const reopened = new Set(a.changes.reopened.map((r) => r.id));
  const state = a.state;
  const pins = { get: (k: string) => state?.pins[k], set: () => {} };
  const ctxFor = contextFactory({
    config: a.config,
    clusterDir: a.clusterDir,
    stateDir: a.stateDir,
    state: () => state,
    events: new RunEvents(),
    redactor: a.redactor,
    services: offlineServices(new ReadOnlySecrets(a.clusterDir), pins),
    options: a.options,
  });
  const byId = new Map(a.steps.map((s) => [s.id, s]));
  const signal = new AbortController().signal;
  return topoOrder(a.steps).map((id) => {
    const s = byId.get(id)!;
    return {
      id,
      title: s.title,
      group: s.group,
      describe: a.redactor.redact(s.describe(ctxFor(s, signal))),
      status: state?.steps[id]?.status ?? ('new' as const),
      reopened: reopened.has(id),
    };
  });
}

export interface PlanOptions {
  config: Config;
  stateDir: string;
  options: RunOptions;
  env?: NodeJS.ProcessEnv;
  /** A subset of the plan instead of steps/index.ts (e.g. `apps`: only the app steps). */
  buildSteps?: BuildSteps;
}

export async function planRun(opts: PlanOptions): Promise<PlanView> {
  const clusterDir = clusterDirFor(opts.stateDir, opts.config.cluster.name);
  const state = readState(clusterDir);
  const buildSteps = opts.buildSteps ?? (await loadBuildSteps());
  const steps = await buildSteps(opts.config, opts.options, state);
  const redactor = new Redactor();
  redactor.addConfig(opts.config);
  const changes = detectChanges(state, opts.config, steps, redactor);
  const lines = describeSteps({
    config: opts.config,
    clusterDir,
    stateDir: opts.stateDir,
    options: opts.options,
    steps,
    state,
    redactor,
    changes,
  });
  return { clusterDir, state, steps, lines, changes };
}

export interface OpenRunOptions extends PlanOptions {
  /** --log-file; default <clusterDir>/run.log. */
  logFile?: string;
  events?: RunEvents;
  /** A terminal question (TLS trust on first use); absent without a terminal. */
  confirm?: (question: string) => Promise<boolean>;
  /** Warnings before the run starts (stale lock taken over…). */
  warn?: (line: string) => void;
}

export class ClusterRun {
  private constructor(
    readonly config: Config,
    readonly stateDir: string,
    readonly clusterDir: string,
    readonly store: StateStore,
    readonly steps: Step[],
    readonly changes: ConfigChanges,
    readonly events: RunEvents,
    readonly redactor: Redactor,
    readonly secrets: FileSecretStore,
    readonly log: LogFile,
    private readonly lock: ClusterLock,
    private readonly detachLog: () => void,
    private readonly opts: OpenRunOptions,
  ) {}

  static async open(opts: OpenRunOptions): Promise<ClusterRun> {
    const clusterDir = clusterDirFor(opts.stateDir, opts.config.cluster.name);
    mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
    const redactor = new Redactor();
    redactor.addConfig(opts.config);
    const log = new LogFile(opts.logFile ?? clusterFiles(clusterDir).runLog, redactor);
    let lock: ClusterLock | undefined;
    try {
      lock = acquireLock(clusterDir, {
        warn: (line) => {
          log.write(`warning: ${line}`);
          opts.warn?.(line);
        },
      });
      const store = StateStore.open(clusterDir, opts.config.cluster.name);
      const secrets = new FileSecretStore(clusterDir, redactor);
      const buildSteps = opts.buildSteps ?? (await loadBuildSteps());
      const steps = await buildSteps(opts.config, opts.options, store.get());
      topoOrder(steps); // a cycle or an unknown need is a bug: fail before changing anything
      const changes = detectChanges(store.get(), opts.config, steps, redactor);
      const events = opts.events ?? new RunEvents();
      const detachLog = log.attach(events);
      return new ClusterRun(
        opts.config,
        opts.stateDir,
        clusterDir,
        store,
        steps,
        changes,
        events,
        redactor,
        secrets,
        log,
        lock,
        detachLog,
        opts,
      );
    } catch (err) {
      lock?.release();
      log.close();
      throw err;
    }
  }

  planLines(): PlanLine[] {
    return describeSteps({
      config: this.config,
      clusterDir: this.clusterDir,
      stateDir: this.stateDir,
      options: this.opts.options,
      steps: this.steps,
      state: this.store.get(),
      redactor: this.redactor,
      changes: this.changes,
    });
  }

  get logFile(): string {
    return this.log.path;
  }

  /** Run (or resume) every step. `command` is recorded in the state for `status`. */
  async execute(signal: AbortSignal, command?: string): Promise<RunResult> {
    const now = Date.now();
    const reopened = new Set(this.changes.reopened.map((r) => r.id));
    const order = topoOrder(this.steps);
    this.store.update((s) => {
      s.config = flattenConfig(this.config);
      s.configHash = configHash(this.config);
      s.order = order;
      s.titles = Object.fromEntries(this.steps.map((st) => [st.id, st.title]));
      s.lastRun = { startedAt: now, status: 'running', pid: process.pid, command };
    });
    for (const id of reopened) this.store.dispatch({ type: 'pending', id, at: now, reason: 'config changed' });
    this.events.emitEvent({ type: 'run', status: 'started', at: now, message: command });
    const services = createServices({
      config: this.config,
      secrets: this.secrets,
      pins: this.store.pins(),
      yes: this.opts.options.yes,
      confirm: this.opts.confirm,
      log: (line, level = 'info') =>
        this.events.emitEvent({ type: 'log', id: 'services', group: 'proxmox', line: this.redactor.redact(line), level, at: Date.now() }),
    });
    const context = contextFactory({
      config: this.config,
      clusterDir: this.clusterDir,
      stateDir: this.stateDir,
      state: () => this.store.get(),
      events: this.events,
      redactor: this.redactor,
      services,
      options: this.opts.options,
    });
    let result: RunResult;
    try {
      result = await runSteps({
        steps: this.steps,
        store: this.store,
        events: this.events,
        context,
        signal,
        parallel: this.opts.options.parallel || DEFAULT_PARALLEL,
        laneLimits: laneLimitsFor(this.config),
        laneCaps: LANE_CAPS,
        redactor: this.redactor,
      });
    } catch (err) {
      await services.close();
      this.store.update((s) => {
        if (s.lastRun)
          Object.assign(s.lastRun, {
            finishedAt: Date.now(),
            status: 'failed',
            message: this.redactor.redact(String((err as Error)?.message ?? err)),
          });
      });
      throw err;
    }
    await services.close();
    const message =
      result.status === 'failed'
        ? result.failed.length
          ? `${result.failed.length} step${result.failed.length === 1 ? '' : 's'} failed: ${result.failed.map((f) => f.id).join(', ')}`
          : `${result.blocked.length} step(s) not reached`
        : undefined;
    this.store.update((s) => {
      if (s.lastRun) Object.assign(s.lastRun, { finishedAt: Date.now(), status: result.status, message });
    });
    this.events.emitEvent({ type: 'run', status: result.status, at: Date.now(), message });
    return result;
  }

  close(): void {
    this.detachLog();
    this.log.close();
    this.store.close();
    this.lock.release();
  }
}
