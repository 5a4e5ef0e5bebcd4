/**
 * The demo Flatcar node's state: its identity (VM, loopback address, MAC, SSH host key), an in-memory
 * filesystem, systemd units, and the k3s cluster it belongs to. Behaviour lives in the other modules of
 * src/demo (the shell, the installer, the k3s model, the SSH server); this module is the data.
 */
import { createHash, randomBytes } from 'node:crypto';
import { generateEd25519KeyPair } from '../ssh/keys.js';
import type { Sshd } from '../sim/sshd.js';

/** What the simulator tells a guest when its VM starts (structurally the sim's GuestHooks argument). */
export interface DemoVm {
  node: string;
  vmid: number;
  name: string;
  config: Record<string, string | number>;
  userData?: string;
}

export interface DemoAgentInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: Array<{ 'ip-address': string; 'ip-address-type': 'ipv4' | 'ipv6'; prefix: number }>;
}

export interface FileEntry {
  data: Buffer;
  mode: number;
  owner: 'root' | 'core';
  /** Symlink target, if a link. */
  link?: string;
}

export type UnitState = 'inactive' | 'activating' | 'active' | 'failed';

export interface Unit {
  state: UnitState;
  enabled: boolean;
  journal: string[];
  /** Bumped at every (re)start: timers of an older run stop acting. */
  generation: number;
}

export interface DemoClusterNode {
  name: string;
  role: 'server' | 'agent';
  address: string;
  /** When its k3s started this (successful) attempt, and when it is Ready (ms epoch). */
  startedAt: number;
  readyAt: number;
  owner: DemoNode;
  /** The k3s version it runs: the binary's when its k3s last started (kubeletVersion). */
  version: string;
  /** Cordoned (spec.unschedulable). */
  unschedulable?: boolean;
  annotations?: Record<string, string>;
}

/** Asks k3s to take a server out of etcd without deleting its Node (k3s's own annotation). */
export const ETCD_REMOVE_ANNOTATION = 'etcd.k3s.cattle.io/remove';
/** Set by k3s once the member is gone. */
export const ETCD_REMOVED_ANNOTATION = 'etcd.k3s.cattle.io/removed-node-name';

/** One k3s cluster of the demo: created by the first server, joined by token. */
export class DemoCluster {
  readonly nodes = new Map<string, DemoClusterNode>();
  /** Addresses that reach its API (first server, other servers, VIP). */
  readonly addresses = new Set<string>();
  learnerBusyUntil = 0;
  /** etcd's voting members, by node name. */
  readonly members = new Set<string>();
  apiReadyAt: number;
  readonly caData: string;
  constructor(
    readonly token: string,
    readonly version: string,
    apiReadyAt: number,
    caData?: string,
  ) {
    this.apiReadyAt = apiReadyAt;
    this.caData = caData ?? randomBytes(32).toString('base64');
  }

  /** Whether etcd has quorum now: more than half of its members have their k3s running. */
  etcdHealthy(): boolean {
    const up = [...this.members].filter((m) => this.nodes.get(m)?.owner.units.get('k3s')?.state === 'active').length;
    return up > this.members.size / 2;
  }

  /** Ready as `kubectl get nodes` shows it. */
  ready(n: DemoClusterNode, now = Date.now()): boolean {
    const unit = n.owner.units.get(n.role === 'server' ? 'k3s' : 'k3s-agent');
    const inEtcd = n.role === 'agent' || this.members.has(n.name) || !n.annotations?.[ETCD_REMOVED_ANNOTATION];
    return now >= n.readyAt && unit?.state === 'active' && n.owner.cluster === this && inEtcd;
  }
}

export class DemoNode {
  readonly fs = new Map<string, FileEntry>();
  readonly dirs = new Set<string>(['/', '/home', '/home/core', '/tmp', '/etc', '/opt', '/var', '/run', '/usr', '/usr/bin']);
  readonly units = new Map<string, Unit>();
  hostKey: { privateKey: string; fingerprint: string };
  /** Its SSH server while the VM runs. */
  sshd?: Sshd;
  authorizedKeys: Array<{ type: string; data: Buffer }> = [];
  /** Simulated boot time of the last boot (ms). */
  bootMs = 0;
  /** Simulated download time of the last k3s binary install (ms; the benchmark's lower bound uses it). */
  binaryMs = 0;
  cluster?: DemoCluster;
  vm: DemoVm;
  constructor(
    vm: DemoVm,
    readonly address: string,
    readonly prefix: number,
    readonly mac: string,
    hostKey?: { privateKey: string; fingerprint: string },
  ) {
    this.vm = vm;
    this.hostKey = hostKey ?? newHostKey();
    this.writeFile('/etc/os-release', osRelease('4459.2.1'), 0o644, 'root');
  }
  get name(): string {
    return this.vm.name;
  }
  writeFile(path: string, data: string | Buffer, mode: number, owner: 'root' | 'core'): void {
    this.mkdirp(parentOf(path));
    this.fs.set(path, { data: Buffer.isBuffer(data) ? data : Buffer.from(data), mode, owner });
  }
  mkdirp(dir: string): void {
    const parts = dir.split('/').filter(Boolean);
    let cur = '';
    this.dirs.add('/');
    for (const p of parts) {
      cur += `/${p}`;
      this.dirs.add(cur);
    }
  }
  readText(path: string): string | undefined {
    return this.fs.get(path)?.data.toString('utf8');
  }
  unit(name: string): Unit {
    let u = this.units.get(name);
    if (!u) this.units.set(name, (u = { state: 'inactive', enabled: false, journal: [], generation: 0 }));
    return u;
  }
}

/** An ed25519 key pair (OpenSSH format) and its public blob: the shared generator of src/ssh/keys.ts. */
export function sshKeyPair(comment?: string): { private: string; public: string; blob: Buffer } {
  const kp = generateEd25519KeyPair(comment ?? '');
  return { private: kp.privateKey, public: kp.publicKeyLine, blob: Buffer.from(kp.publicKeyLine.split(' ')[1]!, 'base64') };
}

export function newHostKey(): { privateKey: string; fingerprint: string } {
  const kp = sshKeyPair();
  return { privateKey: kp.private, fingerprint: 'SHA256:' + createHash('sha256').update(kp.blob).digest('base64').replace(/=+$/, '') };
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function normalize(path: string, cwd = '/home/core'): string {
  const abs = path.startsWith('/') ? path : `${cwd}/${path}`;
  const out: string[] = [];
  for (const p of abs.split('/')) {
    if (!p || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return '/' + out.join('/');
}

export const osRelease = (version: string) => `NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nID_LIKE=coreos\nVERSION=${version}\n`;

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The k3s version a binary on a demo node is (the demo mirror's binaries carry it as text). */
export function binaryVersion(data: Buffer | undefined): string | undefined {
  return data?.toString('utf8').match(/v\d+\.\d+\.\d+\+k3s\d+/)?.[0];
}

/** Where a simulated command writes, and the world's clock. */
export interface ExecIo {
  out(line: string): void;
  err(line: string): void;
  /** Resolves after `ms` of simulated time (already scaled). */
  sleep(ms: number): Promise<void>;
}
