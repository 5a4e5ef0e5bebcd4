/**
 * A persisted simulator: its whole world in one directory, so a second start finds the Proxmox the
 * first one left (used by the demo, `<stateDir>/demo/`):
 *
 *   sim.json        (0600) nodes, storages, VMs with their config, volumes, the UPID counters, the
 *                   ports, the TLS certificate and key, the API credentials and the SSH keys
 *   pve/<node>/     the `local` directory storage of each PVE node (snippets, images, ISOs)
 *   pve/_shared/    the shared storage `nfs`, when the world has one (--shared-storage)
 *
 * sim.json is rewritten atomically (temp file + rename) before every API answer and at least every
 * SAVE_INTERVAL_MS while something changes, so a SIGKILL at any moment leaves a loadable world that
 * the client has seen all of, and at worst misses changes nobody was told about yet. Loading such a
 * world is a Proxmox coming back after a crash (see recoverAfterCrash): tasks are gone, VMs still being
 * created or cloned are removed as their failed worker would, other stale locks are cleared, a template
 * conversion is completed.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { SIM_WORLD_FILE } from '../store/layout.js';
import type { AuthSecrets } from './auth.js';
import type { SimState, SimStorage, SimVm, SimVolume } from './state.js';
import type { TaskCounters } from './tasks.js';

const FORMAT = 1;
const SAVE_INTERVAL_MS = 200;

export interface SavedPorts {
  api: number;
  ssh?: number;
  /** each node's SSH port (the first node's is `ssh`) */
  sshNodes?: Record<string, number>;
  mirror: number;
}

export interface SavedSimWorld {
  format: number;
  pveVersion: string;
  nodes: string[];
  ports: SavedPorts;
  tls: { certPem: string; keyPem: string; fingerprint: string };
  auth: AuthSecrets;
  ssh?: { hostKey: string; clientKey: string; nodeHostKeys?: Record<string, string> };
  /** storages without their path (the directory is always <dir>/pve/<first node>) */
  storages: Array<Omit<SimStorage, 'path'> & { hasPath: boolean }>;
  vms: Array<Omit<SimVm, 'agent'>>;
  volumes: SimVolume[];
  tasks: TaskCounters;
}

/** The shared storage (`nfs`) of a persisted world, mounted on every node. */
export const sharedStorageDir = (dir: string): string => join(dir, 'pve', '_shared');

/** The `local` storage directory of a PVE node in a persisted world. */
export const nodeStorageDir = (dir: string, node: string): string => join(dir, 'pve', node);

/** The saved world in `dir`, or undefined when there is none yet. A damaged file is an error (never silently replaced). */
export function loadSimWorld(dir: string): SavedSimWorld | undefined {
  const file = join(dir, SIM_WORLD_FILE);
  if (!existsSync(file)) return undefined;
  let w: SavedSimWorld;
  try {
    w = JSON.parse(readFileSync(file, 'utf8')) as SavedSimWorld;
  } catch (e) {
    throw new Error(`the saved simulator world ${file} is unreadable (${(e as Error).message}); delete ${dir} to start the demo over`);
  }
  if (w.format !== FORMAT || !Array.isArray(w.nodes) || !Array.isArray(w.vms)) {
    throw new Error(`the saved simulator world ${file} has an unknown format; delete ${dir} to start the demo over`);
  }
  return w;
}

/** Put the saved storages, VMs and volumes into a fresh SimState. */
export function restoreState(state: SimState, w: SavedSimWorld): void {
  for (const s of w.storages) {
    const { hasPath, ...rest } = s;
    const cur = state.storages.get(s.storage);
    state.storages.set(s.storage, { ...rest, ...(hasPath ? { path: cur?.path ?? state.storageRoot } : {}) });
  }
  for (const v of w.volumes) state.volumes.set(v.volid, { ...v });
  for (const vm of w.vms) state.vms.set(vm.vmid, { ...vm, config: { ...vm.config } });
}

/**
 * What a real Proxmox looks like after its workers died with it: a VM whose create or clone never
 * finished is removed with its volumes (as the failed worker would have done), any other lock left by a
 * dead task is cleared, and a template conversion that had started is completed (its disks become base
 * volumes). Returns one line per repair, for the log.
 */
export function recoverAfterCrash(state: SimState): string[] {
  const lines: string[] = [];
  for (const vm of [...state.vms.values()]) {
    const lock = vm.config.lock;
    if (lock === 'create' || lock === 'clone') {
      for (const v of state.vmVolumes(vm.vmid)) state.volumes.delete(v.volid);
      state.vms.delete(vm.vmid);
      lines.push(`VM ${vm.vmid}: its ${lock} task did not finish; removed`);
      continue;
    }
    if (lock !== undefined) {
      delete vm.config.lock;
      lines.push(`VM ${vm.vmid}: cleared the stale lock '${lock}'`);
    }
    if (vm.config.template) {
      for (const [key, value] of Object.entries(vm.config)) {
        const m = /^([^:,]+):vm-(\d+)-disk-(\d+)(.*)$/.exec(String(value));
        if (!m || /cloudinit/.test(String(value))) continue;
        const volid = `${m[1]}:vm-${m[2]}-disk-${m[3]}`;
        const baseId = `${m[1]}:base-${m[2]}-disk-${m[3]}`;
        const vol = state.volumes.get(volid);
        if (!vol) continue;
        state.volumes.delete(volid);
        state.volumes.set(baseId, { ...vol, volid: baseId });
        vm.config[key] = `${baseId}${m[4]}`;
        lines.push(`VM ${vm.vmid}: completed the conversion to a template (${key})`);
      }
    }
  }
  return lines;
}

/** Saves the world when it changed: now (save) or soon (the interval catches background changes). */
export class SimPersister {
  private last = '';
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(
    private readonly dir: string,
    private readonly snapshot: () => SavedSimWorld,
    private readonly log: (line: string) => void = () => {},
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Write sim.json if anything changed since the last write. */
  save(): void {
    const text = JSON.stringify(this.snapshot());
    if (text === this.last) return;
    try {
      writeFileAtomic(join(this.dir, SIM_WORLD_FILE), text, 0o600);
      this.last = text;
      this.failed = false;
    } catch (e) {
      if (!this.failed) this.log(`could not save the simulator world in ${this.dir}: ${(e as Error).message}`);
      this.failed = true;
    }
  }

  start(): void {
    this.save();
    this.timer = setInterval(() => this.save(), SAVE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.save();
  }
}

export function snapshotState(state: SimState): Pick<SavedSimWorld, 'nodes' | 'storages' | 'vms' | 'volumes' | 'pveVersion'> {
  return {
    pveVersion: state.version,
    nodes: [...state.nodes],
    storages: [...state.storages.values()].map(({ path, ...s }) => ({ ...s, content: [...s.content], hasPath: path !== undefined })),
    vms: [...state.vms.values()].map(({ agent: _agent, ...vm }) => ({ ...vm, config: { ...vm.config } })),
    volumes: [...state.volumes.values()].map((v) => ({ ...v })),
  };
}
