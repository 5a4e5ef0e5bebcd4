/**
 * The cluster apps, last in the plan: a preflight (Pulumi CLI present), then infra-bootstrap (the
 * Pulumi Kubernetes Operator) and infra-apps (kured, piraeus, cert-manager, system-upgrade-controller),
 * each only when one of its apps is selected. Config combinations the apps cannot work with are
 * refused here, at plan time, before anything runs.
 */
import type { AppsConfig, Config } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { anyAppEnabled, appsConfigIssues } from '../../src/config/apps.js';
import { checkInfraAppsArgs, infraApps } from '../../src/pulumi/programs/infra-apps.js';
import { infraBootstrap } from '../../src/pulumi/programs/infra-bootstrap.js';
import { STEP } from '../ids.js';
import type { RunOptions, Step } from '../types.js';
import { AppsPreflightStep, type DetectCli, type DetectPlugin } from './preflight.js';
import { AppsStackStep, type PulumiBackend } from './stack.js';

export const BOOTSTRAP_APPS: Array<keyof AppsConfig> = ['pulumiOperator'];
export const INFRA_APPS: Array<keyof AppsConfig> = ['certManager', 'kured', 'piraeus', 'systemUpgradeController'];

export interface AppStepsDeps {
  pulumi?: PulumiBackend;
  detect?: DetectCli;
  /** Kubernetes plugin lookup (tests pass fakes). */
  plugin?: DetectPlugin;
}

export function appSteps(config: Config, _options: RunOptions, deps: AppStepsDeps = {}): Step[] {
  if (!anyAppEnabled(config.apps)) return [];
  const issues = appsConfigIssues(config);
  if (issues.length) throw new ConfigError(issues);
  const detect = deps.detect ?? deps.pulumi?.detect.bind(deps.pulumi);
  const steps: Step[] = [new AppsPreflightStep(config, detect, deps.plugin)];
  const wants = (keys: Array<keyof AppsConfig>) => keys.some((k) => config.apps[k].enabled);
  if (wants(BOOTSTRAP_APPS)) {
    steps.push(
      new AppsStackStep(
        config,
        { id: STEP.appsBootstrap, title: 'Pulumi Kubernetes Operator', project: 'infra-bootstrap', apps: BOOTSTRAP_APPS, program: infraBootstrap, needs: [STEP.kubeconfig, STEP.appsPreflight] },
        deps.pulumi,
      ),
    );
  }
  if (wants(INFRA_APPS)) {
    const needs: string[] = [STEP.kubeconfig, STEP.appsPreflight];
    // One Pulumi update at a time keeps the apps pane readable and the operator first.
    if (wants(BOOTSTRAP_APPS)) needs.push(STEP.appsBootstrap);
    steps.push(new AppsStackStep(config, { id: STEP.appsInfra, title: 'Cluster apps', project: 'infra-apps', apps: INFRA_APPS, program: infraApps, checkArgs: checkInfraAppsArgs, needs }, deps.pulumi));
  }
  return steps;
}

/**
 * Only the app steps, for `flatcar-k3s apps`: the kubeconfig step is not in this plan, so its need is
 * dropped and the steps read the kubeconfig the last `up` recorded in the state.
 */
export function appsOnlySteps(config: Config, options: RunOptions): Step[] {
  const steps = appSteps(config, options);
  const ids = new Set(steps.map((s) => s.id));
  for (const s of steps) s.needs = s.needs.filter((n) => ids.has(n));
  return steps;
}
