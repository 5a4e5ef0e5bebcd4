/**
 * The simulated cluster: PVE nodes, storages, bridges, VMs and volumes. The `local` dir storage is a real
 * directory (storageRoot), so files written over SFTP or by download-url are what the simulator lists;
 * volumes on `local-lvm` are in memory.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PveAgentInterface } from '../proxmox/types.js';

export interface SimStorage {
  storage: string;
  /** dir and nfs are file based (path set); lvmthin holds block volumes */
  type: 'dir' | 'lvmthin' | 'nfs';
  content: string[];
  path?: string;
  /** nfs: the export, as storage.cfg has it */
  server?: string;
  export?: string;
  shared: boolean;
  /** bytes */
  total: number;
  vgname?: string;
  thinpool?: string;
}

export interface SimVolume {
  volid: string;
  storage: string;
  node: string;
  content: string;
  format: string;
  /** bytes (virtual size) */
  size: number;
  vmid?: number;
  ctime: number;
  /** linked clone: the base volume it references */
  base?: string;
}

export interface SimVm {
  vmid: number;
  node: string;
  config: Record<string, string | number>;
  status: 'running' | 'stopped';
  /** set once the guest hooks report the guest has booted */
  agent?: PveAgentInterface[];
  startedAt?: number;
  /** increments each start, so a late boot of an earlier run is ignored */
  generation: number;
}

/** Directory below a dir storage for each content type (PVE::Storage::Plugin get_subdir). */
export const CONTENT_DIRS: Record<string, string> = {
  iso: 'template/iso',
  vztmpl: 'template/cache',
  snippets: 'snippets',
  import: 'import',
  backup: 'dump',
  images: 'images',
};

/** The id of the shared storage `--shared-storage` adds. */
export const SHARED_STORAGE = 'nfs';

/** A storage whose volumes are files (dir, nfs), as opposed to block volumes (lvmthin). */
export const isFileStorage = (st: SimStorage): boolean => st.path !== undefined;

export class SimState {
  readonly nodes: string[];
  readonly storages = new Map<string, SimStorage>();
  readonly bridges = ['vmbr0'];
  readonly vms = new Map<number, SimVm>();
  /** local-lvm (and other block) volumes by volid */
  readonly volumes = new Map<string, SimVolume>();
  readonly nextIdRange = { lower: 100, upper: 1000000 };
  /** Each node's address in /cluster/status (where its SSH answers); default 127.0.0.1. */
  readonly addresses = new Map<string, string>();
  /** The API certificate's SHA-256 fingerprint, as /nodes reports it (ssl_fingerprint). */
  sslFingerprint?: string;

  constructor(
    nodeCount: number,
    readonly storageRoot: string,
    readonly version: string,
    /** The `local` directory of every node but the first (default: below storageRoot, in .pve-sim-nodes/<node>). */
    private readonly nodeRoot?: (node: string) => string,
    /** A directory for the shared storage `nfs` (mounted on every node), or none. */
    sharedRoot?: string,
  ) {
    this.nodes = Array.from({ length: nodeCount }, (_v, i) => `pve${i + 1}`);
    const atLeast = (v: string) => versionAtLeast(version, v);
    this.storages.set('local', {
      storage: 'local',
      type: 'dir',
      path: storageRoot,
      // a fresh install: iso,vztmpl,backup; snippets enabled here, `import` exists only from 8.3
      content: ['iso', 'vztmpl', 'backup', 'snippets', ...(atLeast('8.4') ? ['import'] : [])],
      shared: false,
      total: 100 * 1024 ** 3,
    });
    this.storages.set('local-lvm', {
      storage: 'local-lvm',
      type: 'lvmthin',
      content: ['images', 'rootdir'],
      shared: false,
      total: 400 * 1024 ** 3,
      vgname: 'pve',
      thinpool: 'data',
    });
    if (sharedRoot) {
      // an NFS export every node mounts at the same path: images, snippets and imports for all hosts
      this.storages.set(SHARED_STORAGE, {
        storage: SHARED_STORAGE,
        type: 'nfs',
        path: sharedRoot,
        server: '127.0.0.1',
        export: '/export/pve',
        shared: true,
        content: ['images', 'iso', 'snippets', ...(atLeast('8.4') ? ['import'] : [])],
        total: 1024 ** 4,
      });
      for (const dir of Object.values(CONTENT_DIRS)) mkdirSync(join(sharedRoot, dir), { recursive: true });
    }
    for (const dir of Object.values(CONTENT_DIRS)) mkdirSync(join(storageRoot, dir), { recursive: true });
    // each node's own /var/lib/vz exists from the start
    if (nodeRoot)
      for (const n of this.nodes.slice(1))
        for (const dir of Object.values(CONTENT_DIRS)) mkdirSync(join(nodeRoot(n), dir), { recursive: true });
  }

  nodeAddress(node: string): string {
    return this.addresses.get(node) ?? '127.0.0.1';
  }

  hasNode(node: string): boolean {
    return this.nodes.includes(node);
  }

  /**
   * The directory behind a dir storage on one node. A shared storage is the same everywhere; a local
   * one (like `local`) is storageRoot on the first node and a separate directory on every other node,
   * as each real node has its own /var/lib/vz.
   */
  dirRoot(storage: SimStorage, node: string = this.nodes[0]!): string | undefined {
    if (!storage.path) return undefined;
    if (storage.shared || node === this.nodes[0]) return storage.path;
    const dir =
      (!storage.shared && storage.path === this.storageRoot && this.nodeRoot?.(node)) || join(storage.path, '.pve-sim-nodes', node);
    for (const d of Object.values(CONTENT_DIRS)) mkdirSync(join(dir, d), { recursive: true });
    return dir;
  }

  /** Absolute path of a dir-storage volume ("local:snippets/x.ign") on a node, or undefined. */
  volumePath(volid: string, node: string = this.nodes[0]!): string | undefined {
    const m = /^([^:]+):(.+)$/.exec(volid);
    if (!m) return undefined;
    const st = this.storages.get(m[1]!);
    if (!st?.path) return undefined;
    const root = this.dirRoot(st, node);
    const vm = /^(iso|vztmpl|snippets|import|backup)\/([^/]+)$/.exec(m[2]!);
    if (!vm || !root) return undefined;
    const [, kind, file] = vm;
    return join(root, CONTENT_DIRS[kind!]!, file!);
  }

  /** Files of a dir storage for one content type, on one node. */
  dirVolumes(storage: SimStorage, node: string, content: string): SimVolume[] {
    const root = this.dirRoot(storage, node);
    if (!root) return [];
    const dir = join(root, CONTENT_DIRS[content] ?? content);
    if (!existsSync(dir)) return [];
    const out: SimVolume[] = [];
    for (const name of readdirSync(dir)) {
      if (name.startsWith('.')) continue;
      const st = statSync(join(dir, name));
      if (!st.isFile()) continue;
      const format =
        content === 'iso'
          ? 'iso'
          : content === 'snippets'
            ? 'snippet'
            : content === 'import'
              ? (/\.(\w+)$/.exec(name)?.[1] ?? 'raw')
              : 'raw';
      out.push({
        volid: `${storage.storage}:${content}/${name}`,
        storage: storage.storage,
        node,
        content,
        format,
        size: content === 'import' ? (qcow2VirtualSize(join(dir, name)) ?? st.size) : st.size,
        ctime: Math.floor(st.mtimeMs / 1000),
      });
    }
    return out;
  }

  /** Is this (block) volume visible on `node`? Local storages are per host; a shared one is everywhere. */
  volumeVisible(v: SimVolume, node: string): boolean {
    return v.node === node || !!this.storages.get(v.storage)?.shared;
  }

  vmVolumes(vmid: number): SimVolume[] {
    return [...this.volumes.values()].filter((v) => v.vmid === vmid);
  }

  /** Next free disk name "vm-N-disk-K" on a storage. */
  nextDiskName(storage: string, vmid: number): string {
    for (let k = 0; ; k++) {
      const name = `vm-${vmid}-disk-${k}`;
      const taken = [...this.volumes.keys()].some(
        (v) => v === `${storage}:${name}` || v.endsWith(`/${name}`) || v === `${storage}:base-${vmid}-disk-${k}`,
      );
      if (!taken) return name;
    }
  }

  configDigest(vm: SimVm): string {
    return createHash('sha1').update(JSON.stringify(vm.config)).digest('hex');
  }
}

/** Virtual size of a qcow2 image from its header, or undefined when the file is not qcow2. */
export function qcow2VirtualSize(file: string): number | undefined {
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(32);
      if (readSync(fd, buf, 0, 32, 0) < 32 || buf.readUInt32BE(0) !== 0x514649fb) return undefined;
      return Number(buf.readBigUInt64BE(24));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** Compare dotted versions: is `v` >= `min`? */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  const b = min.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
