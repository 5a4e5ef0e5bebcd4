/** Public types of the Proxmox VE simulator (see src/sim/index.ts). */
import type { PveAgentInterface } from '../proxmox/types.js';
import type { DropFault, RequestFault, TaskFault } from './faults.js';
import type { SimState } from './state.js';
import type { SimTask } from './tasks.js';

export type { SimTask } from './tasks.js';
export type { SimState, SimVm, SimVolume, SimStorage } from './state.js';

export interface GuestVm {
  node: string;
  vmid: number;
  name: string;
  config: Record<string, string | number>;
  /** contents of the cicustom user snippet, if any */
  userData?: string;
}

export interface GuestHooks {
  /** Called when a VM's start task completes. Resolve when the guest has booted; returns what the guest agent reports. */
  boot(vm: GuestVm): Promise<{ interfaces: PveAgentInterface[] }>;
  stop?(vm: { node: string; vmid: number; name: string }): Promise<void>;
  /**
   * A persisted simulator starts again with its saved world (SimOptions.persistDir): `vms` are all its
   * VMs, and guests of any other VM are gone. The running ones kept running while the simulator was
   * away: they resume at once, without a boot. Resolves to what each running guest's agent reports, by
   * VMID. Without this hook, the running VMs boot again.
   */
  resume?(vms: Array<GuestVm & { running: boolean }>): Promise<Map<number, { interfaces: PveAgentInterface[] }>>;
  /** The VM was destroyed: its guest and its disk are gone. */
  destroyed?(vm: { node: string; vmid: number }): void;
}

export interface SimOptions {
  /** number of PVE nodes pve1..pveN (default 1) */
  pveNodes?: number;
  /** version /version reports, e.g. "8.4.1" or "9.1.2" (default "8.4.1"); features are gated by it */
  pveVersion?: string;
  /** 1 = real-host timings, 0.01 = tests, 0 = instant (default 0.01) */
  speed?: number;
  port?: number;
  host?: string;
  seed?: number;
  /** real directory used as the path of the `local` dir storage (default: a fresh temp dir) */
  storageRoot?: string;
  /** content types of `local` (default: iso,vztmpl,backup,snippets and import from 8.4) */
  localContent?: string[];
  guest?: GuestHooks;
  /** start the PVE host's SSH server (default true) */
  sshHost?: boolean;
  /** fault specs to register at start (see faults.ts) */
  faults?: string[];
  /**
   * Keep the whole world in this directory and continue it on the next start (see persist.ts): the
   * `local` storage of each node is <persistDir>/pve/<node>/ (storageRoot is ignored); the saved node
   * count and PVE version win over pveNodes/pveVersion; the saved ports are used again when free.
   */
  persistDir?: string;
  /**
   * Add the shared storage `nfs` (an NFS export every node mounts: images, snippets, import): linked
   * clones with target= work from it. A persisted world that has it keeps it.
   */
  sharedStorage?: boolean;
  /** Lines about loading a persisted world (repairs after a crash, a port that changed). */
  log?: (line: string) => void;
}

export interface SimRequest {
  /** ms since epoch */
  time: number;
  method: string;
  path: string;
  /** parameters, secrets redacted */
  params: Record<string, unknown>;
  user?: string;
  status: number;
  durationMs: number;
}

export interface SimFaultsApi {
  failRequest(spec: RequestFault): void;
  failTask(spec: TaskFault): void;
  dropConnection(spec: DropFault): void;
  slowNode(node: string, factor: number): void;
  clear(): void;
  /** register a spec string ("POST /nodes/*\/qemu/*\/clone#2=500:msg", "task:qmclone#1=msg", "drop:GET /version#1", "slow:pve2=5") */
  add(spec: string): void;
}

export interface SimSsh {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  privateKeyPath: string;
  /** "SHA256:…" */
  hostKeyFingerprint: string;
}

export interface Simulator {
  url: string;
  /** SHA-256, colon hex, uppercase */
  fingerprint: string;
  /** PEM of the self-signed certificate (pin it as `ca`) */
  certPem: string;
  node: string;
  nodes: string[];
  token: { tokenId: string; tokenSecret: string };
  limitedToken: { tokenId: string; tokenSecret: string };
  /** A privilege-separated token holding exactly `privs` on every path (a token missing a privilege). */
  addToken(name: string, privs: string[]): { tokenId: string; tokenSecret: string };
  login: { username: string; password: string };
  /** SSH of the first node (pve1) */
  ssh: SimSsh | undefined;
  /** SSH of every node, by name: each its own address (127.0.0.N), host key and `local` storage */
  sshNodes: Record<string, SimSsh>;
  storageRoot: string;
  /** true when the world was loaded from persistDir (false for a fresh one) */
  resumed: boolean;
  /** Save a persisted world now (it is also saved before every API answer); no-op otherwise. */
  save(): void;
  mirror: {
    url: string;
    put(path: string, data: string | Buffer, contentType?: string): void;
    redirect(path: string, location: string): void;
  };
  requests(): SimRequest[];
  tasks(): SimTask[];
  faults: SimFaultsApi;
  state: SimState;
  proxmoxConfig(): Record<string, unknown>;
  close(): Promise<void>;
}
