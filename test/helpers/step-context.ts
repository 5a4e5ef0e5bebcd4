/**
 * A minimal StepContext for step tests (shared): in-memory SecretStore/PinStore, a log collector,
 * recorded outputs, and whatever Proxmox client / SSH connector the test gives (e.g. the real
 * adapter pointed at the simulator and the real connector pointed at a loopback sshd).
 *
 *   const h = createStepHarness({ config, proxmox: async () => client, ssh: createSshConnector() });
 *   h.setOutputs(STEP.proxmoxConnect, facts);
 *   await h.runSteps(templateSteps(config, h.options));   // check → run, like the runner
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/schema.js';
import type { ProxmoxClient } from '../../src/proxmox/types.js';
import type { SshConnector } from '../../src/ssh/types.js';
import type { PinStore, RunOptions, SecretStore, Step, StepContext, StepOutputs, StepServices } from '../../steps/types.js';

export interface LogEntry {
  step: string;
  line: string;
  level: 'info' | 'warn' | 'error' | 'debug';
}

export interface StepRunRecord {
  id: string;
  via: 'check' | 'run' | 'skip';
  outputs?: StepOutputs;
  reason?: string;
}

export interface StepHarness {
  config: Config;
  options: RunOptions;
  stateDir: string;
  clusterDir: string;
  logs: LogEntry[];
  progress: Array<{ step: string; message: string; fraction?: number }>;
  pins: Map<string, string>;
  secrets: Map<string, string>;
  outputs: Map<string, StepOutputs>;
  services: StepServices;
  abort: AbortController;
  setOutputs(stepId: string, outputs: StepOutputs): void;
  /** The context a step sees. */
  context(step: Pick<Step, 'id'> | string): StepContext;
  /** check(); when not done, run(); records the outputs either way. */
  runStep(step: Step): Promise<StepRunRecord>;
  /** runStep for each step in order (they must already be in dependency order). */
  runSteps(steps: Step[], opts?: { stopAfter?: string }): Promise<StepRunRecord[]>;
  logText(step?: string): string;
  /** Remove the temp state dir (when the harness made it). */
  cleanup(): void;
}

export interface StepHarnessOptions {
  config: Config;
  proxmox?: () => Promise<ProxmoxClient>;
  ssh?: SshConnector;
  options?: Partial<RunOptions>;
  stateDir?: string;
  outputs?: Record<string, StepOutputs>;
  pins?: Record<string, string>;
  now?: () => number;
}

const noProxmox = async (): Promise<ProxmoxClient> => {
  throw new Error('this test gave the step harness no Proxmox client');
};
const noSsh: SshConnector = {
  connect: async () => {
    throw new Error('this test gave the step harness no SSH connector');
  },
};

export function createStepHarness(o: StepHarnessOptions): StepHarness {
  const madeDir = o.stateDir === undefined;
  const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), 'step-harness-'));
  const pins = new Map(Object.entries(o.pins ?? {}));
  const secrets = new Map<string, string>();
  const outputs = new Map(Object.entries(o.outputs ?? {}));
  const logs: LogEntry[] = [];
  const progress: StepHarness['progress'] = [];
  const abort = new AbortController();
  const pinStore: PinStore = { get: (k) => pins.get(k), set: (k, v) => void pins.set(k, v) };
  const secretStore: SecretStore = {
    get: (k) => secrets.get(k),
    set: (k, v) => void secrets.set(k, v),
    getOrCreate(k, make) {
      if (!secrets.has(k)) secrets.set(k, make());
      return secrets.get(k)!;
    },
  };
  let client: Promise<ProxmoxClient> | undefined;
  const services: StepServices = {
    proxmox: () => (client ??= (o.proxmox ?? noProxmox)()),
    ssh: o.ssh ?? noSsh,
    secrets: secretStore,
    pins: pinStore,
    now: o.now ?? Date.now,
    sleep: (ms, signal) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(resolve, ms);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            reject(signal.reason ?? new Error('aborted'));
          },
          { once: true },
        );
      }),
  };
  const options: RunOptions = { parallel: 2, ...o.options };
  const clusterDir = join(stateDir, 'clusters', o.config.cluster.name);

  const h: StepHarness = {
    config: o.config,
    options,
    stateDir,
    clusterDir,
    logs,
    progress,
    pins,
    secrets,
    outputs,
    services,
    abort,
    setOutputs: (id, out) => void outputs.set(id, out),
    context(step) {
      const id = typeof step === 'string' ? step : step.id;
      return {
        config: o.config,
        clusterDir,
        stateDir,
        outputs: <T extends StepOutputs = StepOutputs>(stepId: string) => outputs.get(stepId) as T | undefined,
        outputsMatching: (prefix) => [...outputs.entries()].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => ({ id: k, outputs: v })),
        log: (line, level = 'info') => void logs.push({ step: id, line, level }),
        progress: (message, fraction) => void progress.push({ step: id, message, fraction }),
        signal: abort.signal,
        services,
        options,
      };
    },
    async runStep(step) {
      const ctx = h.context(step);
      const c = await step.check(ctx);
      if ('skip' in c) return { id: step.id, via: 'skip', reason: c.reason };
      if (c.done) {
        if (c.outputs) outputs.set(step.id, c.outputs);
        return { id: step.id, via: 'check', outputs: c.outputs, reason: c.reason };
      }
      const out = (await step.run(ctx)) ?? undefined;
      if (out) outputs.set(step.id, out);
      return { id: step.id, via: 'run', outputs: out, reason: c.reason };
    },
    async runSteps(steps, opts = {}) {
      const records: StepRunRecord[] = [];
      for (const s of steps) {
        records.push(await h.runStep(s));
        if (opts.stopAfter === s.id) break;
      }
      return records;
    },
    logText: (step) =>
      logs
        .filter((l) => !step || l.step === step)
        .map((l) => `[${l.step}] ${l.level}: ${l.line}`)
        .join('\n'),
    cleanup() {
      if (madeDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return h;
}
