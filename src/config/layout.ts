/**
 * The node layout derived from a validated config: names, roles, VMIDs, MACs, addresses.
 * Pure: the same config always gives the same layout, so resumed runs and re-created VMs agree.
 * Placement over PVE nodes needs the list of online PVE nodes and is done by `placeNodes`.
 */
import { sha256 } from '../sha256.js';
import type { Config, NodeRole } from './schema.js';
import { intToIp, ipToInt, parseCidr } from './net.js';

export interface PlannedNode {
  /** VM name and hostname, e.g. "homelab-server-1". */
  name: string;
  role: NodeRole;
  /** 1-based index within its role. */
  index: number;
  vmid: number;
  mac: string;
  cores: number;
  memory: number;
  disk: number;
  /** Static address with prefix ("192.168.1.50/24"), or undefined for DHCP. */
  address?: string;
  labels: Record<string, string>;
  taints: string[];
}

/** Proxmox's own OUI (BC:24:11) keeps generated MACs recognisable; the rest is a hash of cluster and node. */
export function deriveMac(cluster: string, nodeName: string): string {
  const h = sha256(`${cluster}/${nodeName}`);
  return ['BC', '24', '11', h[0]!, h[1]!, h[2]!]
    .map((b) => (typeof b === 'number' ? b.toString(16).padStart(2, '0') : b).toUpperCase())
    .join(':');
}

export function templateVmid(config: Config): number {
  return config.flatcar.templateVmid ?? config.nodes.vmids.start;
}

/** VMIDs for nodes: the range minus the template's id, in order. */
export function nodeVmids(config: Config): number[] {
  const t = templateVmid(config);
  const ids: number[] = [];
  for (let id = config.nodes.vmids.start; id <= config.nodes.vmids.end; id++) if (id !== t) ids.push(id);
  return ids;
}

/** planNodes per config object: steps ask for the layout (or its first server) once per node and per check. */
const plannedByConfig = new WeakMap<Config, readonly PlannedNode[]>();

/** The nodes a config asks for, in plan order (servers, then agents). Callers get their own copies. */
export function planNodes(config: Config): PlannedNode[] {
  let planned = plannedByConfig.get(config);
  if (!planned) {
    planned = computePlan(config);
    plannedByConfig.set(config, planned);
  }
  return planned.map((n) => ({ ...n }));
}

function computePlan(config: Config): PlannedNode[] {
  const ids = nodeVmids(config);
  const net = config.nodes.network;
  const subnet = net.mode === 'static' && net.cidr ? parseCidr(net.cidr) : undefined;
  const first = net.mode === 'static' && net.firstAddress ? ipToInt(net.firstAddress) : undefined;
  const nodes: PlannedNode[] = [];
  const roles: Array<[NodeRole, Config['nodes']['servers']]> = [
    ['server', config.nodes.servers],
    ['agent', config.nodes.agents],
  ];
  for (const [role, spec] of roles) {
    for (let i = 1; i <= spec.count; i++) {
      const ordinal = nodes.length;
      const name = `${config.cluster.name}-${role}-${i}`;
      nodes.push({
        name,
        role,
        index: i,
        vmid: ids[ordinal]!,
        mac: spec.macs[i - 1] ?? deriveMac(config.cluster.name, name),
        cores: spec.cores,
        memory: spec.memory,
        disk: spec.disk,
        address: subnet && first !== undefined ? `${intToIp(first + ordinal)}/${subnet.prefix}` : undefined,
        labels: spec.labels,
        taints: spec.taints,
      });
    }
  }
  return nodes;
}

/**
 * The layout with the VMIDs (and static addresses) earlier runs gave the nodes kept (`recorded`: node
 * name → what its steps recorded), and new nodes on the free ones in plan order: raising
 * nodes.servers.count must not move the agents, whose VMIDs and addresses follow the servers' in
 * planNodes. Without records it is planNodes.
 */
export function planNodesKeeping(config: Config, recorded: ReadonlyMap<string, { vmid: number; address?: string }>): PlannedNode[] {
  const nodes = planNodes(config);
  // every recorded VMID and address stays taken, also those of nodes leaving the cluster
  const takenIds = new Set([...recorded.values()].map((r) => r.vmid));
  const freeIds = nodeVmids(config).filter((id) => !takenIds.has(id));
  const net = config.nodes.network;
  const subnet = net.mode === 'static' && net.cidr ? parseCidr(net.cidr) : undefined;
  const takenIps = new Set([...recorded.values()].map((r) => r.address).filter((a): a is string => !!a));
  let next = net.mode === 'static' && net.firstAddress ? ipToInt(net.firstAddress) : undefined;
  const freeIp = (): string | undefined => {
    if (next === undefined || !subnet) return undefined;
    while (takenIps.has(intToIp(next))) next++;
    return `${intToIp(next++)}/${subnet.prefix}`;
  };
  return nodes.map((n) => {
    const r = recorded.get(n.name);
    const address = subnet ? (r?.address ? `${r.address}/${subnet.prefix}` : freeIp()) : n.address;
    return { ...n, vmid: r?.vmid ?? freeIds.shift() ?? n.vmid, address };
  });
}

/**
 * Spread nodes over PVE hosts: servers round-robin first (no two on one host while there are enough
 * hosts), then agents on the least loaded host. Returns node name → PVE node.
 */
export function placeNodes(nodes: PlannedNode[], pveNodes: string[]): Map<string, string> {
  if (pveNodes.length === 0) throw new Error('placeNodes: no PVE nodes to place VMs on');
  const load = new Map(pveNodes.map((n) => [n, 0]));
  const placement = new Map<string, string>();
  let rr = 0;
  for (const n of nodes.filter((x) => x.role === 'server')) {
    const host = pveNodes[rr++ % pveNodes.length]!;
    placement.set(n.name, host);
    load.set(host, load.get(host)! + 1);
  }
  for (const n of nodes.filter((x) => x.role === 'agent')) {
    let best = pveNodes[0]!;
    for (const h of pveNodes) if (load.get(h)! < load.get(best)!) best = h;
    placement.set(n.name, best);
    load.set(best, load.get(best)! + 1);
  }
  return placement;
}
