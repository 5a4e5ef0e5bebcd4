/**
 * What the terminal UI needs from the rest of the program, as narrow interfaces injected by
 * src/app/main.tsx (real Proxmox client, feed reader, runner) or by tests (fakes, the simulator).
 * Screens never import network code: their data comes through these.
 */
import type { ProxmoxClient, PveVmResource } from '../proxmox/types.js';
import type { FlatcarRelease } from '../flatcar/releases.js';
import type { Config } from '../config/schema.js';
import type { RunEvent } from '../events.js';

export type { FlatcarRelease };

export interface ConnectOptions {
  url: string;
  tokenId?: string;
  tokenSecret?: string;
  username?: string;
  password?: string;
  /** The TLS certificate fingerprint the user trusted (SHA-256, "AB:CD:…"). */
  fingerprint: string;
}

export interface ProxmoxGateway {
  /** Fetch the server certificate's SHA-256 fingerprint without trusting it. */
  probeFingerprint(url: string): Promise<string>;
  /** Connect with credentials, pinned to the trusted fingerprint, and check the credentials work. */
  connect(opts: ConnectOptions): Promise<ProxmoxClient>;
}

export interface FlatcarReleases {
  /** Releases of a channel that can be installed on Proxmox, newest first (feedBaseUrl: a mirror, from the config). */
  list(channel: string, feedBaseUrl?: string): Promise<FlatcarRelease[]>;
}

/** A cluster in the state dir whose last run did not finish. */
export interface UnfinishedRun {
  cluster: string;
  clusterDir: string;
  /** The saved config file (YAML without secrets) to resume from, when there is one. */
  configPath?: string;
  status: 'failed' | 'interrupted' | 'running';
  /** Title of the step it stopped at. */
  stoppedAt?: string;
  /** Why: the error message, or "interrupted". */
  reason?: string;
  updatedAt: number;
  done: number;
  total: number;
}

/** A cluster in the state dir with a config saved by the UI (to open it again: change it, converge it). */
export interface KnownCluster {
  cluster: string;
  clusterDir: string;
  configPath: string;
  /** Status of its last run, when it has one. */
  lastRun?: 'running' | 'succeeded' | 'failed' | 'interrupted';
  updatedAt: number;
}

export interface RunOutcome {
  status: 'succeeded' | 'failed' | 'interrupted';
  kubeconfigPath?: string;
  /** The API server address (VIP or the first server). */
  server?: string;
  message?: string;
}

export interface StartRunOptions {
  signal: AbortSignal;
  onEvent: (e: RunEvent) => void;
  recreateTemplate?: boolean;
}

export interface SavedConfig {
  /** The YAML file written (no secrets): `flatcar-k3s up --config <it>` reproduces the run. */
  configPath: string;
  /** Where the secrets are: e.g. "in the environment (PROXMOX_VE_API_TOKEN)" or "in <file> (mode 0600)". */
  secrets: string;
  /** The command line that reproduces the run. */
  command: string;
}

export interface UiServices {
  gateway: ProxmoxGateway;
  releases: FlatcarReleases;
  /** The Pulumi CLI's version when found, true when found without a version, false when missing. */
  pulumiAvailable: boolean | string;
  /** The plan lines (`flatcar-k3s plan`): each step's describe(). */
  describePlan(config: Config): Promise<string[]>;
  /** Where saveConfig will write, shown on the Review screen before anything is written. */
  configPathFor(config: Config): string;
  /** Where the secrets will be kept (said on the Review screen). */
  secretsNote(config: Config): string;
  /** Write the config YAML (no secrets) and the secrets (0600 file unless they come from the environment). */
  saveConfig(config: Config, draft: Record<string, unknown>): Promise<SavedConfig>;
  /** Secrets saved for a cluster by an earlier session (0600 file), as a raw config patch. */
  savedSecrets(clusterDir: string): Record<string, unknown>;
  /** Run the steps for the config through the runner; resolves when the run ends (also after an abort). */
  startRun(config: Config, opts: StartRunOptions): Promise<RunOutcome>;
  /** Read a config file (YAML) as a raw document (not yet merged with the preset). */
  readConfigFile(path: string): Promise<Record<string, unknown>>;
  /** Raw preset documents by name (homelab, ha). */
  presets: Array<{ name: string; summary: string; doc: Record<string, unknown> }>;
  unfinished: UnfinishedRun[];
  /** Every cluster with a saved config (finished or not). */
  clusters: KnownCluster[];
  /** Values pre-filled from the environment or --demo (raw config doc, may hold secrets in memory). */
  prefill: Record<string, unknown>;
  /** Values that replace the user's in `doc` (--demo: the simulator's connection, mirrors and node settings, fitted to its layout). */
  overridesFor(doc: Record<string, unknown>): Record<string, unknown>;
  /** Which connection fields came from the environment (to say so on screen). */
  prefillSources: Record<string, string>;
  env: NodeJS.ProcessEnv;
  logFile?: string;
  /** The log file of a cluster's run (shown on failure). */
  logFileFor(config: Config): string;
}
