import type { AppsConfig } from '../../src/config/schema.js';

export const APP_LABELS: Record<keyof AppsConfig, string> = {
  pulumiOperator: 'Pulumi Kubernetes Operator',
  kured: 'kured',
  piraeus: 'Piraeus (LINSTOR)',
  certManager: 'cert-manager',
  systemUpgradeController: 'system-upgrade-controller',
};

/** The selected apps, in config order, by their display names. */
export function enabledApps(apps: AppsConfig, only?: Array<keyof AppsConfig>): string[] {
  return (Object.keys(APP_LABELS) as Array<keyof AppsConfig>).filter((k) => apps[k].enabled && (!only || only.includes(k))).map((k) => APP_LABELS[k]);
}
