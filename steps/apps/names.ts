import { APP_KEYS, type AppKey, type AppsConfig } from '../../src/config/schema.js';

export const APP_LABELS: Record<AppKey, string> = {
  pulumiOperator: 'Pulumi Kubernetes Operator',
  kured: 'kured',
  piraeus: 'Piraeus (LINSTOR)',
  certManager: 'cert-manager',
  systemUpgradeController: 'system-upgrade-controller',
};

/** The app infra-bootstrap holds, and the apps infra-apps holds. */
export const BOOTSTRAP_APPS: AppKey[] = ['pulumiOperator'];
export const INFRA_APPS: AppKey[] = ['certManager', 'kured', 'piraeus', 'systemUpgradeController'];

/** The selected apps, in config order, by their display names. */
export function enabledApps(apps: AppsConfig, only?: readonly AppKey[]): string[] {
  return APP_KEYS.filter((k) => apps[k].enabled && (!only || only.includes(k))).map((k) => APP_LABELS[k]);
}
