/**
 * The demo guests' saved world (<stateDir>/demo/guests.json, 0600: it holds the nodes' host keys and
 * the k3s token in their config.yaml): each node's identity (VM, loopback address, MAC, SSH host key,
 * authorized keys), its in-memory filesystem and systemd units, the k3s clusters they formed, and the
 * DHCP leases. Written atomically, so a kill leaves the previous or the new version, never half.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../store/atomic.js';
import { DemoCluster, DemoNode, type DemoVm } from './node.js';

const FORMAT = 1;

interface SavedFile {
  path: string;
  /** base64 */
  data: string;
  mode: number;
  owner: 'root' | 'core';
  link?: string;
}

interface SavedNode {
  vm: DemoVm;
  address: string;
  prefix: number;
  mac: string;
  hostKey: { privateKey: string; fingerprint: string };
  authorizedKeys: Array<{ type: string; data: string }>;
  files: SavedFile[];
  dirs: string[];
  units: Array<{ name: string; state: 'inactive' | 'activating' | 'active' | 'failed'; enabled: boolean; journal: string[] }>;
  /** index into clusters */
  cluster?: number;
}

interface SavedCluster {
  token: string;
  version: string;
  apiReadyAt: number;
  learnerBusyUntil: number;
  caData: string;
  addresses: string[];
  nodes: Array<{
    name: string;
    role: 'server' | 'agent';
    address: string;
    startedAt: number;
    readyAt: number;
    ownerVmid: number;
    /** Running k3s version (older saves: the cluster's). */
    version?: string;
    unschedulable?: boolean;
    annotations?: Record<string, string>;
  }>;
  /** etcd members (older saves: every server node). */
  members?: string[];
}

export interface SavedGuests {
  format: number;
  dhcpNext: number;
  addressByMac: Record<string, string>;
  nodes: SavedNode[];
  clusters: SavedCluster[];
}

export interface GuestWorld {
  nodesByVmid: Map<number, DemoNode>;
  clusters: DemoCluster[];
  addressByMac: Map<string, string>;
  dhcpNext: number;
}

export function snapshotGuests(w: GuestWorld): SavedGuests {
  const clusters = w.clusters.filter((c) => [...w.nodesByVmid.values()].some((n) => n.cluster === c));
  return {
    format: FORMAT,
    dhcpNext: w.dhcpNext,
    addressByMac: Object.fromEntries(w.addressByMac),
    clusters: clusters.map((c) => ({
      token: c.token,
      version: c.version,
      apiReadyAt: c.apiReadyAt,
      learnerBusyUntil: c.learnerBusyUntil,
      caData: c.caData,
      addresses: [...c.addresses],
      members: [...c.members],
      nodes: [...c.nodes.values()]
        .filter((n) => w.nodesByVmid.get(n.owner.vm.vmid) === n.owner)
        .map((n) => ({
          name: n.name,
          role: n.role,
          address: n.address,
          startedAt: n.startedAt,
          readyAt: n.readyAt,
          ownerVmid: n.owner.vm.vmid,
          version: n.version,
          ...(n.unschedulable ? { unschedulable: true } : {}),
          ...(n.annotations ? { annotations: { ...n.annotations } } : {}),
        })),
    })),
    nodes: [...w.nodesByVmid.values()].map((n) => ({
      vm: { ...n.vm, config: { ...n.vm.config } },
      address: n.address,
      prefix: n.prefix,
      mac: n.mac,
      hostKey: { ...n.hostKey },
      authorizedKeys: n.authorizedKeys.map((k) => ({ type: k.type, data: k.data.toString('base64') })),
      files: [...n.fs].map(([path, f]) => ({
        path,
        data: f.data.toString('base64'),
        mode: f.mode,
        owner: f.owner,
        ...(f.link ? { link: f.link } : {}),
      })),
      dirs: [...n.dirs],
      units: [...n.units].map(([name, u]) => ({ name, state: u.state, enabled: u.enabled, journal: [...u.journal] })),
      ...(n.cluster && clusters.includes(n.cluster) ? { cluster: clusters.indexOf(n.cluster) } : {}),
    })),
  };
}

/** Read a saved guest world; undefined when there is none. A damaged file is an error. */
export function loadGuests(file: string): GuestWorld | undefined {
  if (!existsSync(file)) return undefined;
  let s: SavedGuests;
  try {
    s = JSON.parse(readFileSync(file, 'utf8')) as SavedGuests;
  } catch (e) {
    throw new Error(`the saved demo nodes ${file} are unreadable (${(e as Error).message}); delete the demo directory to start over`);
  }
  if (s.format !== FORMAT || !Array.isArray(s.nodes))
    throw new Error(`the saved demo nodes ${file} have an unknown format; delete the demo directory to start over`);
  const nodesByVmid = new Map<number, DemoNode>();
  for (const sn of s.nodes) {
    const node = new DemoNode(sn.vm, sn.address, sn.prefix, sn.mac, sn.hostKey);
    node.fs.clear();
    node.dirs.clear();
    for (const d of sn.dirs) node.dirs.add(d);
    for (const f of sn.files)
      node.fs.set(f.path, { data: Buffer.from(f.data, 'base64'), mode: f.mode, owner: f.owner, ...(f.link ? { link: f.link } : {}) });
    node.authorizedKeys = sn.authorizedKeys.map((k) => ({ type: k.type, data: Buffer.from(k.data, 'base64') }));
    for (const u of sn.units) node.units.set(u.name, { state: u.state, enabled: u.enabled, journal: [...u.journal], generation: 0 });
    nodesByVmid.set(sn.vm.vmid, node);
  }
  const clusters = s.clusters.map((sc) => {
    const c = new DemoCluster(sc.token, sc.version, sc.apiReadyAt, sc.caData);
    c.learnerBusyUntil = sc.learnerBusyUntil;
    for (const a of sc.addresses) c.addresses.add(a);
    for (const n of sc.nodes) {
      const owner = nodesByVmid.get(n.ownerVmid);
      if (!owner) continue;
      const { ownerVmid: _vmid, ...rest } = n;
      c.nodes.set(n.name, { ...rest, owner, version: n.version ?? sc.version });
    }
    for (const m of sc.members ?? sc.nodes.filter((n) => n.role === 'server').map((n) => n.name)) c.members.add(m);
    return c;
  });
  for (const sn of s.nodes) if (sn.cluster !== undefined) nodesByVmid.get(sn.vm.vmid)!.cluster = clusters[sn.cluster];
  return { nodesByVmid, clusters, addressByMac: new Map(Object.entries(s.addressByMac)), dhcpNext: s.dhcpNext };
}

/** Writes the guests' file when it changed. */
export class GuestSaver {
  private last = '';
  constructor(
    private readonly file: string,
    private readonly log: (line: string) => void,
  ) {}
  private failed = false;
  save(w: GuestWorld): void {
    const text = JSON.stringify(snapshotGuests(w));
    if (text === this.last) return;
    try {
      writeFileAtomic(this.file, text, 0o600);
      this.last = text;
      this.failed = false;
    } catch (e) {
      if (!this.failed) this.log(`could not save the demo nodes to ${this.file}: ${(e as Error).message}`);
      this.failed = true;
    }
  }
}
