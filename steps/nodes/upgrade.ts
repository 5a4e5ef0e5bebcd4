/**
 * Who upgrades k3s (docs/day2.md "One owner per upgrade"): `up`, by a rolling upgrade, when the config
 * pins a version (or a channel resolved once and recorded); the system-upgrade-controller when
 * apps.systemUpgradeController.channel follows a channel. Either way nothing is ever downgraded.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes, type PlannedNode } from '../../src/config/layout.js';
import { compareK3sVersions } from '../../src/k3s/kubectl.js';
import { sh } from '../../src/shell/quote.js';
import type { SshSession } from '../../src/ssh/types.js';

export type UpgradeOwner = { by: 'up' } | { by: 'controller'; channel: string };

export function upgradeOwner(config: Config): UpgradeOwner {
  const suc = config.apps.systemUpgradeController;
  return suc.enabled && suc.channel ? { by: 'controller', channel: suc.channel } : { by: 'up' };
}

/** The k3s version of /opt/bin/k3s on the node (undefined when there is none). */
export async function installedK3s(s: SshSession, signal?: AbortSignal): Promise<string | undefined> {
  const r = await s.exec('/opt/bin/k3s --version', { signal });
  return r.code === 0 ? /v\d+\.\d+\.\d+\+k3s\d+/.exec(r.stdout)?.[0] : undefined;
}

export async function unitActive(s: SshSession, unit: string, signal?: AbortSignal): Promise<boolean> {
  return (await s.exec(sh`systemctl is-active ${unit}`, { signal })).stdout.trim() === 'active';
}

export const isNewer = (a: string | undefined, b: string) => a !== undefined && compareK3sVersions(a, b) > 0;

/** What to tell the user about a node running a newer k3s than the config asks for. */
export function newerFix(node: string, running: string, wanted: string): string {
  return `${node} runs k3s ${running}, newer than ${wanted}: left alone (flatcar-k3s never downgrades). Set cluster.k3sVersion: ${running} to match.`;
}

/**
 * Where kubectl runs for a roll of `node`: a server other than the one being restarted (its API stays
 * up), or the only server.
 */
export function apiServerFor(config: Config, node: string): PlannedNode {
  const servers = planNodes(config).filter((n) => n.role === 'server');
  return servers.find((s) => s.name !== node) ?? servers[0]!;
}

/**
 * The roll order: servers one at a time; agents after the last server. Agents do not wait for one
 * another in the plan (their checks run at once, so a cluster with nothing to roll is checked in
 * parallel): the ones that do roll take a slot of the agent roll lane, which admits
 * cluster.upgrade.agentBatch at a time (laneLimitsFor in src/runner/driver.ts). Returns each node's predecessors.
 */
export function rollOrder(config: Config): Map<string, string[]> {
  const nodes = planNodes(config);
  const servers = nodes.filter((n) => n.role === 'server');
  const agents = nodes.filter((n) => n.role === 'agent');
  const after = new Map<string, string[]>();
  servers.forEach((n, i) => after.set(n.name, i === 0 ? [] : [servers[i - 1]!.name]));
  const lastServer = servers.at(-1)?.name;
  for (const n of agents) after.set(n.name, lastServer ? [lastServer] : []);
  return after;
}
