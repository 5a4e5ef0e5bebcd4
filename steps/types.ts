/**
 * A step is data plus `describe` (its plan line), `check` (read the real world: is it done already?)
 * and `run` (do it; safe to re-run after a partial failure). `steps/index.ts` builds the ordered list
 * (a DAG through `needs`) from the validated config. See STYLE.md.
 */
import type { Config } from '../src/config/schema.js';
import type { ProxmoxClient } from '../src/proxmox/types.js';
import type { SshConnector } from '../src/ssh/types.js';
import type { SshPool } from '../src/ssh/pool.js';

/** JSON-serialisable outputs a step records in the state file (VM ids, IPs, host keys…). Never secrets. */
export type StepOutputs = Record<string, unknown>;

/** What building the step list may read of the saved run (the runner's ClusterState is one). */
export interface SavedRun {
  steps: Record<string, { status: string; at: number; outputs?: StepOutputs }>;
}

/**
 * What check found. Not done: `plan` is what check worked out to do (e.g. the VMs to delete), handed to
 * `run` right after so it does not look the world up again (prepare, then run).
 */
export type CheckResult<P = unknown> =
  | { done: true; outputs?: StepOutputs; reason?: string }
  | { done: false; reason?: string; plan?: P }
  /** The step does not apply (e.g. apps without the Pulumi CLI under --demo): shown as skipped with the reason. */
  | { skip: true; reason: string };

export interface StepServices {
  /** Connected (and TLS-pinned) Proxmox client; created lazily on first use. */
  proxmox(): Promise<ProxmoxClient>;
  ssh: SshConnector;
  /** One connection per host for the whole run (src/ssh/pool.ts); absent in some tests: connect per use. */
  sshPool?: SshPool;
  /** Secrets kept in the 0600 secrets file of the cluster (k3s token, Pulumi passphrase…). */
  secrets: SecretStore;
  /** Record a trusted fingerprint (PVE TLS, PVE host SSH key, node host keys) in the state. */
  pins: PinStore;
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Ask the user a yes/no question (terminal or UI); absent when nobody can answer (no TTY, CI). */
  confirm?: (question: string) => Promise<boolean>;
}

export interface SecretStore {
  get(name: string): string | undefined;
  /** Returns the existing value, or creates and saves one with `make`. */
  getOrCreate(name: string, make: () => string): string;
  set(name: string, value: string): void;
}

/** A slot of a lane, while it is held (ctx.slot). */
export interface LaneHold {
  /** Proxmox answered with a lock timeout: an adaptive lane (LANE_CAPS) halves its limit. */
  congested(): void;
}

export interface PinStore {
  get(key: string): string | undefined;
  set(key: string, fingerprint: string): void;
}

export interface StepContext {
  config: Config;
  /** Per-cluster directory in the state dir (kubeconfig, ignition, pulumi workdir…). */
  clusterDir: string;
  stateDir: string;
  /** Outputs recorded by another (finished) step. */
  outputs<T extends StepOutputs = StepOutputs>(stepId: string): T | undefined;
  /** All steps' outputs whose id starts with a prefix (e.g. "node:"). */
  outputsMatching(prefix: string): Array<{ id: string; outputs: StepOutputs }>;
  log(line: string, level?: 'info' | 'warn' | 'error' | 'debug'): void;
  progress(message: string, fraction?: number): void;
  signal: AbortSignal;
  services: StepServices;
  /**
   * Run `fn` holding one slot of `lane` (LANE_LIMITS): for the part of a step that needs the limit (a
   * clone task), not its check or state writes. Absent outside the driver (tests): run `fn` directly.
   */
  slot?<T>(lane: string, fn: (hold: LaneHold) => Promise<T>): Promise<T>;
  /**
   * Run `fn` as a wait on the world that puts no load on Proxmox or the nodes (a VM booting until its
   * SSH answers): meanwhile the step does not count against --parallel, so 200 booting VMs do not keep
   * the other nodes' work waiting. When it ends the step goes on at once. Absent outside the driver.
   */
  idle?<T>(fn: () => Promise<T>): Promise<T>;
  /** Options from the command line (--parallel, --recreate-template, --demo, --no-merge-kubeconfig…). */
  options: RunOptions;
}

export interface RunOptions {
  parallel: number;
  recreateTemplate?: boolean;
  demo?: boolean;
  mergeKubeconfig?: boolean;
  yes?: boolean;
  /** Home directory for ~/.kube/config (tests point it at a temp dir). */
  homeDir?: string;
}

export interface Step<P = unknown> {
  /** Stable unique id, e.g. "template:image" or "node:homelab-agent-1:clone". */
  id: string;
  title: string;
  /** Pane/group in the UI: "proxmox", "template", a node name, "apps". */
  group: string;
  /** Ids of steps that must be done (or skipped) first. */
  needs: string[];
  /** Concurrency class with its own limit, e.g. "pve-clone". */
  lane?: string;
  /** The config slice this step depends on: a change re-opens the step. */
  inputs: unknown;
  describe(ctx: StepContext): string;
  check(ctx: StepContext): Promise<CheckResult<P>>;
  /**
   * Do the work; return the outputs to record. Must honour ctx.signal. `plan` is the one check just
   * returned (undefined when run is called on its own: then run works it out itself).
   */
  run(ctx: StepContext, plan?: P): Promise<StepOutputs | void>;
}
