/**
 * The state directory's layout, in one place. Nothing else spells a path inside it.
 *
 *   <stateDir>/
 *     flatcar-k3s.log                       log of what happened before a cluster was known (--log-file overrides)
 *     cache/flatcar-releases-<channel>.json the Flatcar releases feed, for offline runs
 *     demo/                                 the demo's world (see demoFiles)
 *     clusters/<name>/                      one cluster (see clusterFiles)
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Default state dir: $FLATCAR_K3S_STATE_DIR, else env-paths' data dir (~/.local/share/flatcar-k3s on Linux). */
export async function defaultStateDir(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.FLATCAR_K3S_STATE_DIR) return resolve(env.FLATCAR_K3S_STATE_DIR);
  const { default: envPaths } = await import('env-paths');
  return envPaths('flatcar-k3s', { suffix: '' }).data;
}

export const clustersDir = (stateDir: string): string => join(stateDir, 'clusters');
export const clusterDirFor = (stateDir: string, cluster: string): string => join(clustersDir(stateDir), cluster);
/** Log file before a cluster is known (e.g. a config that does not validate). */
export const globalLogFile = (stateDir: string): string => join(stateDir, 'flatcar-k3s.log');
export const feedCacheFile = (stateDir: string, channel: string): string => join(stateDir, 'cache', `flatcar-releases-${channel}.json`);

/** Names of the cluster directories in the state dir (none when it does not exist yet). */
export function clusterNames(stateDir: string): string[] {
  const dir = clustersDir(stateDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
}

/** The files of one cluster directory, `<stateDir>/clusters/<name>/`. */
export const clusterFiles = (clusterDir: string) => ({
  /** Step records, config hash, TLS/SSH pins (0600, atomic). */
  state: join(clusterDir, 'state.json'),
  /** Step transitions and pins since the last snapshot of state.json, one JSON line each (src/store/journal.ts). */
  stateJournal: join(clusterDir, 'state.journal'),
  /** Generated secrets: k3s token, Pulumi passphrase (0600, atomic). */
  secrets: join(clusterDir, 'secrets.json'),
  /** The pid of the run working on the cluster. */
  lock: join(clusterDir, 'lock'),
  /** The run log (--log-file overrides). */
  runLog: join(clusterDir, 'run.log'),
  /** The config the UI saved. */
  config: join(clusterDir, 'cluster.yaml'),
  /** Proxmox credentials the UI saved, as environment variables (0600, atomic). */
  proxmoxEnv: join(clusterDir, 'proxmox.env'),
  /** The cluster's own kubeconfig (0600). */
  kubeconfig: join(clusterDir, 'kubeconfig'),
  /** The apps' Pulumi backend and projects. */
  pulumi: join(clusterDir, 'pulumi'),
  /** Downloaded k3s binaries, one directory per version. */
  k3s: join(clusterDir, 'k3s'),
});

/** A downloaded k3s binary: `<clusterDir>/k3s/<version with + as _>/k3s[-arm64]`. */
export const k3sBinaryFile = (clusterDir: string, version: string, arch: string): string =>
  join(clusterFiles(clusterDir).k3s, version.replace(/\+/g, '_'), arch === 'amd64' ? 'k3s' : 'k3s-arm64');

/** The simulated Proxmox's saved world inside a persist directory (the demo's: demoFiles().dir). */
export const SIM_WORLD_FILE = 'sim.json';

/** The demo's files, `<stateDir>/demo/`. */
export const demoFiles = (stateDir: string) => {
  const dir = join(stateDir, 'demo');
  return {
    dir,
    /** The simulated Proxmox's world. */
    simWorld: join(dir, SIM_WORLD_FILE),
    /** The demo guests (nodes) and their files. */
    guests: join(dir, 'guests.json'),
    /** Settings kept across runs (the nodes' SSH port). */
    settings: join(dir, 'demo.json'),
    /** The pid of the process using the world. */
    inUse: join(dir, 'in-use'),
    /** The demo identity whose public key goes into the Ignition (0600; .pub beside it). */
    nodeKey: join(dir, 'id_ed25519'),
    /** The simulated PVE host's SSH private key (0600). */
    pveHostKey: join(dir, 'pve-host-ssh-key'),
  };
};
