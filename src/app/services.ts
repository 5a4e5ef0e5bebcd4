/**
 * The real UiServices: the Proxmox client (H3), the Flatcar feed (H5), the runner session (H1),
 * presets and the state dir. Heavy modules load lazily so the wizard opens fast.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { stringify as toYaml } from 'yaml';
import type { Config } from '../config/schema.js';
import { configFromEnv, listPresets, parseYamlText, readPreset } from '../config/load.js';
import { fitDemoOverrides } from '../demo/overrides.js';
import { presetsDir } from '../paths.js';
import { shq } from '../shell/quote.js';
import { writeFileAtomic } from '../store/atomic.js';
import { clusterDirFor, clusterFiles, clusterNames } from '../store/layout.js';
import type { ProxmoxClient } from '../proxmox/types.js';
import type { FlatcarRelease } from '../flatcar/releases.js';
import type { Plain } from '../ui/state.js';
import type { BuildSteps } from '../runner/steps.js';
import { importLazy } from '../runner/lazy.js';
import type { KnownCluster, ProxmoxGateway, RunOutcome, SavedConfig, StartRunOptions, UiServices, UnfinishedRun } from '../ui/types.js';

const savedConfigPath = (clusterDir: string): string => clusterFiles(clusterDir).config;
const savedSecretsPath = (clusterDir: string): string => clusterFiles(clusterDir).proxmoxEnv;

export function realGateway(): ProxmoxGateway {
  type ClientModule = {
    probeFingerprint(url: string): Promise<{ fingerprint: string }>;
    createProxmoxClient(o: Record<string, unknown>): Promise<{ client: ProxmoxClient; fingerprint: string }>;
  };
  return {
    async probeFingerprint(url) {
      const m = await importLazy<ClientModule>(() => import('../proxmox/client.js'), 'the Proxmox client');
      return (await m.probeFingerprint(url)).fingerprint;
    },
    async connect(o) {
      const m = await importLazy<ClientModule>(() => import('../proxmox/client.js'), 'the Proxmox client');
      const { client } = await m.createProxmoxClient({ ...o });
      // createProxmoxClient authenticates lazily: one call proves the credentials now.
      await client.version();
      return client;
    },
  };
}

/** The first comment line of a preset file is its summary. */
export function presetSummaries(): Array<{ name: string; summary: string; doc: Plain }> {
  const first = ['homelab', 'ha'];
  const names = listPresets().sort((a, b) => (first.indexOf(a) + 1 || 99) - (first.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const out = names.map((name) => {
    const text = readFileSync(join(presetsDir(), `${name}.yaml`), 'utf8');
    const line = /^#\s*(?:[\w-]+:\s*)?(.+)$/m.exec(text)?.[1] ?? '';
    return { name, summary: line.replace(/[,.;]\s*$/, ''), doc: readPreset(name) };
  });
  out.push({ name: 'custom', summary: 'start from the defaults and choose every value', doc: {} });
  return out;
}

/** Clusters in the state dir whose last run did not succeed. */
export async function findUnfinished(stateDir: string): Promise<UnfinishedRun[]> {
  const names = clusterNames(stateDir);
  if (!names.length) return [];
  const { readState } = await import('../runner/state.js');
  const out: UnfinishedRun[] = [];
  for (const name of names) {
    const dir = clusterDirFor(stateDir, name);
    let st;
    try {
      st = readState(dir);
    } catch {
      continue;
    }
    if (!st?.lastRun || st.lastRun.status === 'succeeded') continue;
    const entries = Object.entries(st.steps);
    const failed = entries.find(([, r]) => r.status === 'failed');
    const running = entries.find(([, r]) => r.status === 'running');
    const cut = failed ?? running ?? entries.filter(([, r]) => r.reason === 'interrupted').sort((a, b) => b[1].at - a[1].at)[0];
    const total = st.order?.length ?? entries.length;
    out.push({
      cluster: st.cluster,
      clusterDir: dir,
      configPath: existsSync(savedConfigPath(dir)) ? savedConfigPath(dir) : undefined,
      status: st.lastRun.status === 'failed' ? 'failed' : st.lastRun.status === 'interrupted' ? 'interrupted' : 'running',
      stoppedAt: cut ? (cut[1].title ?? cut[0]) : undefined,
      reason:
        failed?.[1].error?.message ??
        (st.lastRun.status === 'running'
          ? 'the program was stopped during the run'
          : st.lastRun.status === 'interrupted'
            ? 'interrupted (quit)'
            : st.lastRun.message),
      updatedAt: st.updatedAt,
      done: entries.filter(([, r]) => r.status === 'done' || r.status === 'skipped').length,
      total,
    });
  }
  return out.sort((a, b) => b.updatedAt - a.updatedAt);
}

/** Clusters in the state dir with a config saved by the UI, newest first. */
export async function findClusters(stateDir: string): Promise<KnownCluster[]> {
  const names = clusterNames(stateDir);
  if (!names.length) return [];
  const { readState } = await import('../runner/state.js');
  const out: KnownCluster[] = [];
  for (const name of names) {
    const dir = clusterDirFor(stateDir, name);
    const configPath = savedConfigPath(dir);
    if (!existsSync(configPath)) continue;
    let st;
    try {
      st = readState(dir);
    } catch {
      st = undefined;
    }
    out.push({ cluster: name, clusterDir: dir, configPath, lastRun: st?.lastRun?.status, updatedAt: st?.updatedAt ?? 0 });
  }
  return out.sort((a, b) => b.updatedAt - a.updatedAt);
}

/** --demo: the simulated Proxmox VE and nodes in this process (src/demo), loaded only when asked for. */
export async function startUiDemo(
  stateDir: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<{ overrides: Plain; close(): Promise<void> }> {
  const mod = await importLazy<{
    startDemo(o: { stateDir: string; speed?: number; log?: (line: string) => void }): Promise<{ overrides: Plain; close(): Promise<void> }>;
    demoSpeedFromEnv(env: Record<string, string | undefined>): number | undefined;
  }>(() => import('../demo/index.js'), 'the demo');
  // Checked like `up --demo` does: a typo is an error naming the variable, not a NaN speed.
  const speed = mod.demoSpeedFromEnv(env);
  return mod.startDemo({ stateDir, speed, log });
}

/** `pulumi version` (PATH, then ~/.pulumi/bin): the version string, or false when missing. */
export function detectPulumi(env: NodeJS.ProcessEnv): Promise<boolean | string> {
  const tryRun = (cmd: string) =>
    new Promise<string | false>((resolve) => {
      execFile(cmd, ['version'], { timeout: 5000, env }, (err, stdout) => resolve(err ? false : stdout.trim() || 'found'));
    });
  return tryRun('pulumi').then((v) => v || tryRun(join(env.HOME ?? homedir(), '.pulumi', 'bin', 'pulumi')));
}

/** Secret values of the config, as environment variables `up --config` reads. */
function secretEnv(config: Config): Record<string, string> {
  const p = config.proxmox;
  const out: Record<string, string> = {};
  if (p.tokenId && p.tokenSecret) out.PROXMOX_VE_API_TOKEN = `${p.tokenId}=${p.tokenSecret}`;
  if (p.username && p.password) {
    out.PROXMOX_VE_USERNAME = p.username;
    out.PROXMOX_VE_PASSWORD = p.password;
  }
  return out;
}

/** Parse the `export NAME='value'` lines written by saveSecrets (shq quoting). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if (v.startsWith("'")) v = v.slice(1, -1).replace(/'\\''/g, "'");
    out[m[1]!] = v;
  }
  return out;
}

export function withoutSecrets(draft: Plain): Plain {
  const p = (draft.proxmox ?? {}) as Plain;
  const { tokenSecret: _t, password: _p, ...rest } = p;
  return { ...draft, proxmox: rest };
}

export interface RealServicesOptions {
  stateDir: string;
  logFile?: string;
  env: NodeJS.ProcessEnv;
  demo?: boolean;
  prefill: Plain;
  /** --demo: the simulator's settings, which replace the user's. */
  overrides?: Plain;
  prefillSources: Record<string, string>;
  pulumiAvailable: boolean | string;
  unfinished: UnfinishedRun[];
  clusters?: KnownCluster[];
  /** The steps a run goes through (default: steps/index.ts); tests hand in theirs. */
  buildSteps?: BuildSteps;
  /** Where demo lines go once a run log is open. */
  onRunLog?: (write: ((line: string) => void) | undefined) => void;
}

export function realServices(o: RealServicesOptions): UiServices {
  const secretsFromEnv = (config: Config): string | undefined => {
    const env = configFromEnvSafe(o.env);
    const p = config.proxmox;
    if (p.tokenSecret && env.tokenSecret === p.tokenSecret) return 'PROXMOX_VE_API_TOKEN';
    if (p.password && env.password === p.password) return 'PROXMOX_VE_PASSWORD';
    return undefined;
  };
  return {
    gateway: realGateway(),
    releases: {
      async list(channel: string, feedBaseUrl?: string): Promise<FlatcarRelease[]> {
        const [{ loadReleases }, { proxmoxReleases }] = await Promise.all([import('../flatcar/feed.js'), import('../flatcar/releases.js')]);
        const r = await loadReleases({
          channel,
          feedBaseUrl: feedBaseUrl ?? 'https://www.flatcar.org/releases-json',
          stateDir: o.stateDir,
          timeoutMs: 15_000,
        });
        return proxmoxReleases(r.releases);
      },
    },
    pulumiAvailable: o.pulumiAvailable,
    async describePlan(config) {
      const { planRun } = await import('../runner/session.js');
      const view = await planRun({
        config,
        stateDir: o.stateDir,
        options: { parallel: 8, demo: o.demo, yes: true },
        env: o.env,
        buildSteps: o.buildSteps,
      });
      return view.lines.map(
        (l) => `${l.describe}${l.status === 'done' && !l.reopened ? '  [done before]' : l.reopened ? '  [re-check: config changed]' : ''}`,
      );
    },
    configPathFor: (config) => savedConfigPath(clusterDirFor(o.stateDir, config.cluster.name)),
    secretsNote(config) {
      const fromEnv = secretsFromEnv(config);
      if (fromEnv) return `taken from the environment (${fromEnv}); keep it set when you re-run`;
      return `written to ${savedSecretsPath(clusterDirFor(o.stateDir, config.cluster.name))} (mode 0600; \`set -a; . FILE\` before up)`;
    },
    async saveConfig(config, draft): Promise<SavedConfig> {
      const dir = clusterDirFor(o.stateDir, config.cluster.name);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const configPath = savedConfigPath(dir);
      const header = `# Written by the flatcar-k3s terminal UI on ${new Date().toISOString()}.\n# Reproduce: flatcar-k3s up --config ${configPath}${o.demo ? ' --demo' : ''}\n# No secrets in this file: see ${savedSecretsPath(dir)} or the environment.\n`;
      writeFileAtomic(configPath, header + toYaml(withoutSecrets(draft)), 0o600);
      const fromEnv = secretsFromEnv(config);
      let secrets: string;
      const envFile = savedSecretsPath(dir);
      if (fromEnv) secrets = `taken from the environment (${fromEnv})`;
      else {
        const vars = secretEnv(config);
        writeFileAtomic(
          envFile,
          `# Proxmox credentials of cluster ${config.cluster.name} (flatcar-k3s). Keep private.\n${Object.entries(vars)
            .map(([k, v]) => `export ${k}=${shq(v)}`)
            .join('\n')}\n`,
          0o600,
        );
        secrets = `written to ${envFile} (mode 0600)`;
      }
      const command = `${fromEnv ? '' : `set -a; . ${shq(envFile)}; set +a; `}flatcar-k3s up --config ${shq(configPath)}${o.demo ? ' --demo' : ''}`;
      return { configPath, secrets, command };
    },
    savedSecrets(clusterDir) {
      const f = savedSecretsPath(clusterDir);
      if (!existsSync(f)) return {};
      try {
        const proxmox = configFromEnvSafe(parseEnvFile(readFileSync(f, 'utf8')));
        return Object.keys(proxmox).length ? { proxmox } : {};
      } catch {
        return {};
      }
    },
    async startRun(config, opts: StartRunOptions): Promise<RunOutcome> {
      const [{ ClusterRun }, { STEP }] = await Promise.all([import('../runner/session.js'), import('../../steps/ids.js')]);
      const run = await ClusterRun.open({
        config,
        stateDir: o.stateDir,
        logFile: o.logFile,
        options: { parallel: 8, yes: true, demo: o.demo, recreateTemplate: opts.recreateTemplate, mergeKubeconfig: true },
        env: o.env,
        buildSteps: o.buildSteps,
      });
      o.onRunLog?.((line) => run.log.write(line));
      const detach = run.events.onEvent(opts.onEvent);
      try {
        const result = await run.execute(opts.signal, 'flatcar-k3s (terminal UI)');
        const kc = run.store.step(STEP.kubeconfig)?.outputs as { kubeconfigPath?: string; server?: string } | undefined;
        return {
          status: result.status,
          kubeconfigPath: kc?.kubeconfigPath,
          server: kc?.server,
          message: result.failed.map((f) => `${f.title}: ${f.error.message}`).join('; ') || undefined,
        };
      } finally {
        detach();
        o.onRunLog?.(undefined);
        run.close();
      }
    },
    async readConfigFile(path) {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        const { UserError } = await import('../errors.js');
        throw new UserError(
          `Cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`,
          { fix: 'Give the path of a YAML config file (see docs/config.md).' },
        );
      }
      return parseYamlText(text, path);
    },
    presets: presetSummaries(),
    unfinished: o.unfinished,
    clusters: o.clusters ?? [],
    prefill: o.prefill,
    overridesFor: (doc) => (o.overrides ? fitDemoOverrides(o.overrides, doc) : {}),
    prefillSources: o.prefillSources,
    env: o.env,
    logFile: o.logFile,
    logFileFor: (config) => o.logFile ?? clusterFiles(clusterDirFor(o.stateDir, config.cluster.name)).runLog,
  };
}

/** configFromEnv's proxmox block, or {} when the environment holds a malformed value. */
function configFromEnvSafe(env: NodeJS.ProcessEnv): Record<string, string> {
  try {
    return ((configFromEnv(env).proxmox ?? {}) as Record<string, string>) ?? {};
  } catch {
    return {};
  }
}

/** Pre-filled connection values from the environment, and which variable each came from. */
export function envPrefill(env: NodeJS.ProcessEnv): { prefill: Plain; sources: Record<string, string> } {
  const p = configFromEnvSafe(env);
  const sources: Record<string, string> = {};
  if (p.url) sources.url = 'PROXMOX_VE_ENDPOINT';
  if (p.tokenId) sources.tokenId = sources.tokenSecret = 'PROXMOX_VE_API_TOKEN';
  if (p.username) sources.username = 'PROXMOX_VE_USERNAME';
  if (p.password) sources.password = 'PROXMOX_VE_PASSWORD';
  return { prefill: Object.keys(p).length ? { proxmox: p } : {}, sources };
}
