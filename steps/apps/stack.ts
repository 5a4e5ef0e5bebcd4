/**
 * apps:bootstrap and apps:infra — one Pulumi stack each (projects infra-bootstrap / infra-apps, stack =
 * cluster name), applied through the Automation API against the kubeconfig the k3s step wrote.
 * check = `pulumi preview` (done when nothing would change); run = `pulumi up` (applies only the
 * diff, so a failed update resumes by running again).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AppKey, Config } from '../../src/config/schema.js';
import { RemoteError, UserError } from '../../src/errors.js';
import { nodeCount } from '../../src/config/apps.js';
import { detectPulumiCli, pulumiCliMissingError, type PulumiCliStatus } from '../../src/pulumi/cli.js';
import {
  previewAppsStack,
  stackStateExists,
  upAppsStack,
  type AppsProject,
  type AppsStackOptions,
  type AppsUpResult,
  type AppsPreviewResult,
} from '../../src/pulumi/automation.js';
import { engineEventSink } from '../../src/pulumi/events.js';
import type { Program, ProgramArgs } from '../../src/pulumi/programs/common.js';
import { STEP, type K3sReleaseRecord, type KubeconfigOutputs } from '../ids.js';
import type { CheckResult, Step, StepContext, StepOutputs } from '../types.js';
import { DEMO_SKIP_REASON } from './preflight.js';
import { BOOTSTRAP_APPS, enabledApps, INFRA_APPS } from './names.js';
import { OPERATOR_STACK } from '../../src/pulumi/programs/operator.js';

export const DEMO_NO_API_REASON =
  'demo: the simulated cluster has no Kubernetes API to apply the apps to (they are applied on a real cluster)';

/** The name of the Pulumi passphrase in the cluster's secrets file. */
export const PASSPHRASE_SECRET = 'pulumiPassphrase';
/** Operator mode: the passphrase of the in-cluster stack (also handed to the operator as a Secret). */
export const OPERATOR_PASSPHRASE_SECRET = 'pulumiOperatorPassphrase';

/** What the step needs from Pulumi; the default is the Automation API, tests pass fakes. */
export interface PulumiBackend {
  detect(): Promise<PulumiCliStatus>;
  /** Was the stack ever updated (a checkpoint exists in the file backend)? */
  applied(o: Pick<AppsStackOptions, 'clusterDir' | 'project' | 'stackName'>): boolean;
  preview(o: AppsStackOptions): Promise<AppsPreviewResult>;
  up(o: AppsStackOptions): Promise<AppsUpResult>;
}

export const automationBackend: PulumiBackend = {
  detect: () => detectPulumiCli(),
  applied: (o) => stackStateExists(o.clusterDir, o.project, o.stackName),
  preview: (o) => previewAppsStack(o),
  up: (o) => upAppsStack(o),
};

export interface StackStepSpec {
  id: string;
  title: string;
  project: AppsProject;
  /** The apps this stack holds (for the plan line and the inputs that re-open the step). */
  apps: AppKey[];
  program: Program;
  /** Throws a UserError for arguments the program would refuse (checked before Pulumi starts). */
  checkArgs?: (args: ProgramArgs) => void;
  needs: string[];
}

const PINNED_K3S = /^v\d+\.\d+\.\d+\+k3s\d+$/;

/** The cluster's k3s release: the config when pinned, else the release the k3s release step resolved and recorded. */
export function resolvedK3sVersion(ctx: Pick<StepContext, 'config' | 'outputs'>): string | undefined {
  const v = ctx.config.cluster.k3sVersion;
  if (PINNED_K3S.test(v)) return v;
  const rec = ctx.outputs<K3sReleaseRecord & Record<string, unknown>>(STEP.k3sRelease);
  return rec && rec.requested === v && PINNED_K3S.test(rec.version) ? rec.version : undefined;
}

export class AppsStackStep implements Step {
  readonly id: string;
  readonly title: string;
  readonly group = 'apps';
  needs: string[];
  readonly inputs: unknown;
  constructor(
    private readonly config: Config,
    private readonly spec: StackStepSpec,
    private readonly pulumi: PulumiBackend = automationBackend,
  ) {
    this.id = spec.id;
    this.title = spec.title;
    this.needs = [...spec.needs];
    const apps = Object.fromEntries(spec.apps.map((k) => [k, config.apps[k]]));
    // What the program reads: a change re-opens the step (and its check previews the diff).
    const a = config.apps;
    if (spec.project === 'infra-apps')
      this.inputs = { project: spec.project, apps, nodes: nodeCount(config), k3sVersion: config.cluster.k3sVersion };
    else if (a.mode === 'operator')
      this.inputs = {
        project: spec.project,
        apps,
        nodes: nodeCount(config),
        k3sVersion: config.cluster.k3sVersion,
        mode: a.mode,
        source: a.source,
        backend: a.backend,
      };
    else this.inputs = { project: spec.project, apps };
  }

  describe(_ctx: StepContext): string {
    const line = `Apply ${enabledApps(this.config.apps, this.spec.project === 'infra-bootstrap' ? BOOTSTRAP_APPS : this.spec.apps).join(', ')} with Pulumi (project ${this.spec.project}, stack ${this.config.cluster.name})`;
    if (this.spec.project !== 'infra-bootstrap' || this.config.apps.mode !== 'operator') return line;
    const a = this.config.apps;
    const program = a.source.git
      ? `the git program ${a.source.git.url}`
      : `a Program ${OPERATOR_STACK.name} (Pulumi YAML of ${enabledApps(a, INFRA_APPS).join(', ') || 'no apps'})`;
    const backend = a.backend.url ? `backend ${a.backend.url}` : `state on a ${a.backend.size} PVC ${OPERATOR_STACK.statePvc}`;
    return `${line}, and hand it ${program}, a Stack ${OPERATOR_STACK.name} (${backend}), its passphrase and in-cluster kubeconfig as Secrets`;
  }

  async check(ctx: StepContext): Promise<CheckResult> {
    const cli = await this.pulumi.detect();
    if (!cli.found) return ctx.options.demo ? { skip: true, reason: DEMO_SKIP_REASON } : { done: false, reason: cli.reason };
    // The demo's simulated nodes answer over SSH but serve no Kubernetes API for Pulumi to talk to.
    if (ctx.options.demo) return { skip: true, reason: DEMO_NO_API_REASON };
    const kubeconfig = this.kubeconfigPath(ctx, false);
    if (!kubeconfig) return { done: false, reason: 'no kubeconfig recorded yet' };
    if (!this.pulumi.applied({ clusterDir: ctx.clusterDir, project: this.spec.project, stackName: this.config.cluster.name }))
      return { done: false, reason: 'not applied yet' };
    const sink = engineEventSink({ log: (line) => ctx.log(line, 'debug') });
    let preview: AppsPreviewResult;
    try {
      preview = await this.pulumi.preview(this.stackOptions(ctx, kubeconfig, cli, sink));
    } catch (err) {
      // The cluster or a chart registry unreachable: let run() try, and report its error.
      if (err instanceof RemoteError) return { done: false, reason: `Pulumi preview failed: ${err.message}` };
      throw err;
    }
    if (preview.changed === 0)
      return { done: true, outputs: this.outputs(preview.changes), reason: 'the cluster already matches (Pulumi preview: no changes)' };
    return { done: false, reason: `Pulumi preview: ${preview.changed} resource change(s) to apply` };
  }

  async run(ctx: StepContext): Promise<StepOutputs> {
    const cli = await this.pulumi.detect();
    if (!cli.found) throw pulumiCliMissingError(cli.reason);
    const kubeconfig = this.kubeconfigPath(ctx, true)!;
    ctx.log(`Pulumi ${cli.version}: updating stack ${this.config.cluster.name} of ${this.spec.project}`);
    const sink = engineEventSink({ log: (line, level) => ctx.log(line, level), progress: (m, f) => ctx.progress(m, f) });
    const result = await this.pulumi.up(this.stackOptions(ctx, kubeconfig, cli, sink));
    return this.outputs(result.changes);
  }

  private outputs(changes: Record<string, number | undefined>): StepOutputs {
    return { project: this.spec.project, stack: this.config.cluster.name, changes };
  }

  private kubeconfigPath(ctx: StepContext, required: boolean): string | undefined {
    const path = ctx.outputs<KubeconfigOutputs & Record<string, unknown>>(STEP.kubeconfig)?.kubeconfigPath;
    if (!path && required)
      throw new UserError(
        `The cluster's kubeconfig is not recorded in the state of ${this.config.cluster.name}, so the apps have nothing to connect to`,
        {
          fix: 'Run `flatcar-k3s up --config FILE` first (it creates the cluster and writes the kubeconfig); then `flatcar-k3s apps --config FILE` can (re)apply the apps.',
        },
      );
    return path;
  }

  private stackOptions(
    ctx: StepContext,
    kubeconfigPath: string,
    cli: PulumiCliStatus,
    onEvent: AppsStackOptions['onEvent'],
  ): AppsStackOptions {
    let kubeconfig: string;
    try {
      kubeconfig = readFileSync(kubeconfigPath, 'utf8');
    } catch (err) {
      throw new UserError(`Cannot read the cluster's kubeconfig ${kubeconfigPath}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
        fix: 'Run `flatcar-k3s up --config FILE` again: its kubeconfig step writes the file anew.',
      });
    }
    const args: ProgramArgs = {
      apps: this.config.apps,
      cluster: { name: this.config.cluster.name, kubeconfig },
      nodeCount: nodeCount(this.config),
      k3sVersion: resolvedK3sVersion(ctx),
    };
    if (this.spec.project === 'infra-bootstrap' && this.config.apps.mode === 'operator') {
      args.operator = {
        passphrase: ctx.services.secrets.getOrCreate(OPERATOR_PASSPHRASE_SECRET, () => randomBytes(32).toString('base64url')),
      };
    }
    this.spec.checkArgs?.(args);
    const program = this.spec.program;
    return {
      project: this.spec.project,
      stackName: this.config.cluster.name,
      clusterDir: ctx.clusterDir,
      // 32 random bytes from the CSPRNG, created once per cluster and kept in the 0600 secrets file.
      passphrase: ctx.services.secrets.getOrCreate(PASSPHRASE_SECRET, () => randomBytes(32).toString('base64url')),
      program: () => program(args),
      pulumiCommand: cli.found ? cli.command : undefined,
      onEvent,
      signal: ctx.signal,
    };
  }
}
