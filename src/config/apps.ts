/**
 * Checks on the apps selection that need more than one config field. Pure (no Pulumi import), so the
 * config loader, the step builder and the programs can all use them.
 */
import { APP_KEYS, type Config } from './schema.js';
import type { ConfigIssue } from '../errors.js';

export const LOCKSMITHD = 'locksmithd.service';

/**
 * kured decides when nodes reboot; Flatcar's own reboot manager (locksmithd) must not race it.
 * One source of truth: the template masks locksmithd and writes REBOOT_STRATEGY=off; with kured on,
 * anything else is refused rather than silently overridden.
 */
export function kuredRebootIssues(c: Pick<Config, 'apps' | 'flatcar'>): ConfigIssue[] {
  if (!c.apps.kured.enabled) return [];
  const ign = c.flatcar.ignition;
  const masked = ign.maskedUnits.includes(LOCKSMITHD);
  const off = ign.rebootStrategy === 'off';
  if (masked && off) return [];
  const what = [
    !masked ? `flatcar.ignition.maskedUnits does not contain "${LOCKSMITHD}"` : '',
    !off ? `flatcar.ignition.rebootStrategy is "${ign.rebootStrategy}"` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  return [
    {
      path: !masked ? 'flatcar.ignition.maskedUnits' : 'flatcar.ignition.rebootStrategy',
      message:
        `apps.kured is enabled but ${what}: Flatcar's reboot manager (locksmithd) would reboot nodes on its own, ` +
        'racing kured (which drains and reboots one node at a time). Both flatcar.ignition.maskedUnits and flatcar.ignition.rebootStrategy decide this',
      expected: `"${LOCKSMITHD}" in flatcar.ignition.maskedUnits and flatcar.ignition.rebootStrategy: off, or apps.kured: false`,
      example: 'rebootStrategy: off (and keep locksmithd.service in maskedUnits)',
    },
  ];
}

/** LINSTOR places `replicas` copies of each volume on distinct nodes. */
export function piraeusNodeIssues(apps: Pick<Config['apps'], 'piraeus'>, nodeCount: number): ConfigIssue[] {
  const p = apps.piraeus;
  if (!p.enabled || nodeCount >= p.replicas) return [];
  return [
    {
      path: 'apps.piraeus.replicas',
      message: `needs at least ${p.replicas} nodes for ${p.replicas} replicas; the cluster has ${nodeCount}`,
      given: p.replicas,
      expected: `at most ${nodeCount}, or more nodes (nodes.agents.count)`,
    },
  ];
}

export function nodeCount(c: Pick<Config, 'nodes'>): number {
  return c.nodes.servers.count + c.nodes.agents.count;
}

export function anyAppEnabled(apps: Config['apps']): boolean {
  return APP_KEYS.some((k) => apps[k].enabled);
}

/**
 * Operator mode needs the operator, and its Stack's service account needs cluster-wide rights (the apps
 * are Helm releases, CRDs and namespaces); a git source only means something in operator mode.
 */
export function operatorModeIssues(apps: Config['apps']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  // With no app selected (e.g. --skip-apps, or every app switched off) the mode is moot.
  if (!anyAppEnabled(apps) && !apps.source.git) return issues;
  if (apps.mode === 'operator' && !apps.pulumiOperator.enabled) {
    issues.push({
      path: 'apps.pulumiOperator',
      message: 'apps.mode is "operator", but the Pulumi Kubernetes Operator is not selected: nothing in the cluster would apply the apps',
      expected: 'apps.pulumiOperator: true, or apps.mode: local',
    });
  } else if (apps.mode === 'operator' && !apps.pulumiOperator.clusterAdmin) {
    issues.push({
      path: 'apps.pulumiOperator.clusterAdmin',
      message:
        'apps.mode is "operator": the Stack\'s service account installs Helm releases, CRDs and namespaces, which needs cluster-admin',
      given: false,
      expected: 'true (the default), or apps.mode: local',
    });
  }
  if (apps.mode === 'local' && apps.source.git) {
    issues.push({
      path: 'apps.source.git',
      message: 'a git source is run by the Pulumi operator, but apps.mode is "local"',
      expected: 'apps.mode: operator, or no apps.source.git',
    });
  }
  return issues;
}

/** Everything the apps steps refuse up front, before any VM exists. */
export function appsConfigIssues(c: Config): ConfigIssue[] {
  return [...kuredRebootIssues(c), ...piraeusNodeIssues(c.apps, nodeCount(c)), ...operatorModeIssues(c.apps)];
}

/**
 * The config with every app switched off: what "skip the apps now" in the wizard runs, when the Pulumi
 * CLI is missing. The apps can be applied later with `flatcar-k3s apps --config FILE`.
 */
export function withoutApps(c: Config): Config {
  const apps = { ...c.apps, ...Object.fromEntries(APP_KEYS.map((k) => [k, { enabled: false }])) } as unknown as Config['apps'];
  return { ...c, apps };
}
