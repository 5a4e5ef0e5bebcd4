/**
 * The cluster apps, last in the plan: a preflight (Pulumi CLI and Kubernetes plugin present), then
 * infra-bootstrap (the Pulumi Kubernetes Operator) and infra-apps (kured, piraeus, cert-manager,
 * system-upgrade-controller), each only when one of its apps is selected.
 *
 * apps.mode local: infra-apps is applied from this machine. apps.mode operator: infra-bootstrap also
 * hands the operator a Program (or the user's git repository) and a Stack, and apps:operator waits
 * until the operator has applied it. Config combinations the apps cannot work with are refused here,
 * at plan time, before anything runs.
 */
import type { AppKey, Config } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { anyAppEnabled, appsConfigIssues } from '../../src/config/apps.js';
import { checkInfraAppsArgs, infraApps } from '../../src/pulumi/programs/infra-apps.js';
import { infraBootstrap } from '../../src/pulumi/programs/infra-bootstrap.js';
import { operatorHasWork } from '../../src/pulumi/programs/operator.js';
import { STEP } from '../ids.js';
import type { RunOptions, Step } from '../types.js';
import { BOOTSTRAP_APPS, INFRA_APPS } from './names.js';
import { AppsOperatorStep, type StackAccess } from './operator.js';
import { AppsPreflightStep, type DetectCli, type DetectPlugin } from './preflight.js';
import { AppsStackStep, type PulumiBackend } from './stack.js';

export { BOOTSTRAP_APPS, INFRA_APPS };

export interface AppStepsDeps {
  pulumi?: PulumiBackend;
  detect?: DetectCli;
  /** Kubernetes plugin lookup (tests pass fakes). */
  plugin?: DetectPlugin;
  /** How apps:operator reads the Stack (tests pass fakes). */
  stack?: StackAccess;
}

export function appSteps(config: Config, _options: RunOptions, deps: AppStepsDeps = {}): Step[] {
  if (!anyAppEnabled(config.apps)) return [];
  const issues = appsConfigIssues(config);
  if (issues.length) throw new ConfigError(issues);
  const detect = deps.detect ?? deps.pulumi?.detect.bind(deps.pulumi);
  const steps: Step[] = [new AppsPreflightStep(config, detect, deps.plugin)];
  const wants = (keys: AppKey[]) => keys.some((k) => config.apps[k].enabled);
  const operator = config.apps.mode === 'operator';
  if (wants(BOOTSTRAP_APPS)) {
    steps.push(
      new AppsStackStep(
        config,
        {
          id: STEP.appsBootstrap,
          title: operator ? 'Pulumi Kubernetes Operator and its Stack' : 'Pulumi Kubernetes Operator',
          project: 'infra-bootstrap',
          // Operator mode: the Program it writes holds the infra apps, so their settings re-open it.
          apps: operator ? [...BOOTSTRAP_APPS, ...INFRA_APPS] : BOOTSTRAP_APPS,
          program: infraBootstrap,
          ...(operator ? { checkArgs: checkInfraAppsArgs } : {}),
          needs: [STEP.kubeconfig, STEP.appsPreflight],
        },
        deps.pulumi,
      ),
    );
  }
  if (operator) {
    if (operatorHasWork(config)) steps.push(new AppsOperatorStep(config, deps.stack));
  } else if (wants(INFRA_APPS)) {
    const needs: string[] = [STEP.kubeconfig, STEP.appsPreflight];
    // One Pulumi update at a time keeps the apps pane readable and the operator first.
    if (wants(BOOTSTRAP_APPS)) needs.push(STEP.appsBootstrap);
    steps.push(
      new AppsStackStep(
        config,
        {
          id: STEP.appsInfra,
          title: 'Cluster apps',
          project: 'infra-apps',
          apps: INFRA_APPS,
          program: infraApps,
          checkArgs: checkInfraAppsArgs,
          needs,
        },
        deps.pulumi,
      ),
    );
  }
  return steps;
}

/**
 * Only the app steps, for `flatcar-k3s apps`: the kubeconfig step is not in this plan, so its need is
 * dropped and the steps read the kubeconfig the last `up` recorded in the state. In operator mode the
 * Stack is re-applied (a reconciliation request), so `apps` repairs drift now rather than at the next resync.
 */
export function appsOnlySteps(config: Config, options: RunOptions, _saved?: unknown, deps: AppStepsDeps = {}): Step[] {
  const steps = appSteps(config, options, deps);
  const ids = new Set(steps.map((s) => s.id));
  for (const s of steps) {
    s.needs = s.needs.filter((n) => ids.has(n));
    if (s instanceof AppsOperatorStep) s.reapply = true;
  }
  return steps;
}
