/**
 * Which PVE host each node VM goes to (nodes.placement), as a pure decision over the layout, the
 * hosts VMs may go to and the hosts of VMs that exist already (they stay: migration is not ours).
 *
 *   spread (default)  servers on distinct hosts (round-robin), agents on the least loaded host; with
 *                     fewer hosts than servers some share one (a warning names them); when there are
 *                     enough hosts but existing servers already share one, a refusal
 *   pack              every VM on the first host
 *   { node: host }    the named nodes on the named hosts; the others as spread places them
 */
import { UserError } from '../errors.js';
import type { PlannedNode } from './layout.js';

export type PlacementSetting = 'spread' | 'pack' | Record<string, string>;

export interface PlacementDecision {
  /** node name → PVE host */
  placement: Map<string, string>;
  /** Why, in one line (for plan and log). */
  reason: string;
  /** Warnings (etcd servers sharing a host, …). */
  warnings: string[];
}

/** Hosts with more than one server: host → the servers there. */
export function serversSharingHosts(nodes: PlannedNode[], placement: Map<string, string>): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const n of nodes) {
    if (n.role !== 'server') continue;
    const h = placement.get(n.name);
    if (h) by.set(h, [...(by.get(h) ?? []), n.name]);
  }
  return new Map([...by].filter(([, names]) => names.length > 1));
}

export function sharingWarning(shared: Map<string, string[]>): string | undefined {
  if (shared.size === 0) return undefined;
  const list = [...shared].map(([h, names]) => `${h} (${names.join(', ')})`).join('; ');
  return `etcd servers share a PVE host: ${list}. Losing such a host loses those servers at once, and etcd quorum with them.`;
}

export function decidePlacement(
  nodes: PlannedNode[],
  hosts: string[],
  setting: PlacementSetting,
  existing: Map<string, string> = new Map(),
): PlacementDecision {
  if (hosts.length === 0) throw new Error('decidePlacement: no PVE hosts to place VMs on');
  const placement = new Map<string, string>();
  const load = new Map(hosts.map((h) => [h, 0]));
  const put = (name: string, host: string) => {
    placement.set(name, host);
    load.set(host, (load.get(host) ?? 0) + 1);
  };
  for (const n of nodes) {
    const h = existing.get(n.name);
    if (h) put(n.name, h);
  }
  const explicit = typeof setting === 'object' ? setting : {};
  for (const [name, host] of Object.entries(explicit)) {
    if (!nodes.some((n) => n.name === name)) {
      throw new UserError(`nodes.placement names ${name}, which is not a node of this layout`, {
        field: `nodes.placement.${name}`,
        fix: `Use the node names of the layout (${nodes.map((n) => n.name).join(', ')}), or remove the entry.`,
      });
    }
    if (!hosts.includes(host)) {
      throw new UserError(
        `nodes.placement puts ${name} on ${host}, which is not one of the PVE nodes VMs may go to (${hosts.join(', ')})`,
        {
          field: `nodes.placement.${name}`,
          fix: `Choose one of ${hosts.join(', ')} (proxmox.nodes limits the list; empty = every online node).`,
        },
      );
    }
    if (!placement.has(name)) put(name, host);
  }
  let reason: string;
  if (setting === 'pack') {
    for (const n of nodes) if (!placement.has(n.name)) put(n.name, hosts[0]!);
    reason = `pack: every VM on ${hosts[0]}`;
  } else {
    const servers = nodes.filter((n) => n.role === 'server' && !placement.has(n.name));
    for (const n of servers) {
      // the host with the fewest servers, then the fewest VMs, in the listed order
      const serversOn = (h: string) => nodes.filter((x) => x.role === 'server' && placement.get(x.name) === h).length;
      let best = hosts[0]!;
      for (const h of hosts)
        if (serversOn(h) < serversOn(best) || (serversOn(h) === serversOn(best) && load.get(h)! < load.get(best)!)) best = h;
      put(n.name, best);
    }
    for (const n of nodes.filter((x) => x.role === 'agent' && !placement.has(x.name))) {
      let best = hosts[0]!;
      for (const h of hosts) if (load.get(h)! < load.get(best)!) best = h;
      put(n.name, best);
    }
    reason =
      typeof setting === 'object'
        ? `explicit hosts for ${Object.keys(setting).join(', ')}, the rest spread over ${hosts.join(', ')}`
        : `spread over ${hosts.join(', ')}`;
  }
  const warnings: string[] = [];
  const shared = serversSharingHosts(nodes, placement);
  const serverCount = nodes.filter((n) => n.role === 'server').length;
  if (shared.size && setting === 'spread' && hosts.length >= serverCount) {
    // enough hosts, yet servers share one: existing VMs sit there (an earlier run, or moved by hand)
    const list = [...shared].map(([h, names]) => `${names.join(', ')} on ${h}`).join('; ');
    throw new UserError(
      `nodes.placement is spread, but existing servers share a PVE host (${list}) although there are ${hosts.length} hosts for ${serverCount} servers`,
      {
        field: 'nodes.placement',
        fix: 'Migrate one of those servers to another PVE host in Proxmox (its VMID stays), or destroy it so the next up re-creates it on a free host; or accept it with nodes.placement: pack or an explicit host per node.',
      },
    );
  }
  const w = sharingWarning(shared);
  if (w)
    warnings.push(
      setting === 'spread' ? `${w} There are ${hosts.length} PVE hosts for ${serverCount} servers: add hosts to spread them.` : w,
    );
  return { placement, reason, warnings };
}

/**
 * What the config alone says about placement, for the review screen: a one-line description and the
 * warning when etcd servers will share a host (pack, explicit hosts doubling up, or fewer listed PVE
 * nodes than servers). The hosts of a spread over "all online nodes" are known only after connecting.
 */
export function placementSummary(nodes: PlannedNode[], setting: PlacementSetting, pveNodes: string[]): { line: string; warning?: string } {
  const servers = nodes.filter((n) => n.role === 'server');
  if (setting === 'pack') {
    return {
      line: `placement pack: every VM on ${pveNodes[0] ?? 'the first PVE node'}`,
      warning: servers.length > 1 ? `etcd servers share one PVE host (pack): losing it loses all ${servers.length} servers.` : undefined,
    };
  }
  if (typeof setting === 'object') {
    const placed = new Map(Object.entries(setting));
    const shared = serversSharingHosts(nodes, placed);
    return {
      line: `placement: ${Object.entries(setting)
        .map(([n, h]) => `${n} → ${h}`)
        .join(', ')}; others spread`,
      warning: sharingWarning(shared),
    };
  }
  const few = pveNodes.length > 0 && pveNodes.length < servers.length;
  return {
    line: `placement spread: servers on distinct PVE hosts${pveNodes.length ? ` (${pveNodes.join(', ')})` : ''}, agents balanced`,
    warning: few
      ? `${servers.length} etcd servers on ${pveNodes.length} PVE host${pveNodes.length === 1 ? '' : 's'}: some share a host, and losing it loses them together.`
      : undefined,
  };
}
