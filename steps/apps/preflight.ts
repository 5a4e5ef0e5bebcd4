/**
 * apps:preflight — is the Pulumi CLI installed, and the Kubernetes plugin it needs? It has no needs and every root step of the plan waits
 * for it (steps/index.ts), so a missing CLI stops the run before any VM exists. Under --demo without
 * the CLI the apps are skipped instead, so the demo completes.
 */
import type { Config } from '../../src/config/schema.js';
import { detectPulumiCli, findOnPath, PULUMI_INSTALL, pulumiCliMissingError, type PulumiCliStatus } from '../../src/pulumi/cli.js';
import { kubernetesPluginStatus, pluginStatusLine, type PluginStatus } from '../../src/pulumi/plugin.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext, StepOutputs } from '../types.js';
import { enabledApps } from './names.js';

export type DetectCli = () => Promise<PulumiCliStatus>;
export type DetectPlugin = () => PluginStatus;

export const DEMO_SKIP_REASON = 'the Pulumi CLI is not installed (demo: the cluster apps are skipped; install it to try them)';

export class AppsPreflightStep implements Step {
  readonly id = STEP.appsPreflight;
  readonly title = 'Pulumi CLI and Kubernetes plugin for the cluster apps';
  readonly group = 'apps';
  needs: string[] = [];
  readonly inputs: unknown;
  constructor(
    private readonly config: Config,
    private readonly detect: DetectCli = () => detectPulumiCli(),
    private readonly plugin: DetectPlugin = () => kubernetesPluginStatus(),
  ) {
    this.inputs = { apps: enabledApps(config.apps) };
  }

  describe(ctx: StepContext): string {
    const line = `Check that the Pulumi CLI is installed (the cluster apps ${enabledApps(this.config.apps).join(', ')} are applied with it)`;
    // describe() must not spawn anything; a PATH lookup and a directory lookup are enough to warn in the plan.
    const plugin = pluginStatusLine(this.plugin());
    if (findOnPath('pulumi')) return `${line}. ${plugin}`;
    return ctx.options.demo
      ? `${line}: not found on PATH, so the demo skips the apps`
      : `${line}: NOT FOUND on PATH, so the run will stop here before any VM is created (install: ${PULUMI_INSTALL.script}). ${plugin}`;
  }

  async check(ctx: StepContext): Promise<CheckResult> {
    const cli = await this.detect();
    if (!cli.found) return ctx.options.demo ? { skip: true, reason: DEMO_SKIP_REASON } : { done: false, reason: cli.reason };
    const plugin = this.plugin();
    // A missing plugin is not fatal (Pulumi downloads it when online), so the step is done either way;
    // the warning says what to do offline before any VM exists.
    if (!plugin.installed) ctx.log(pluginStatusLine(plugin), 'warn');
    return { done: true, outputs: this.outputs(cli, plugin), reason: `pulumi ${cli.version} at ${cli.path}; ${pluginStatusLine(plugin)}` };
  }

  async run(ctx: StepContext): Promise<StepOutputs> {
    const cli = await this.detect();
    if (!cli.found) throw pulumiCliMissingError(cli.reason);
    const plugin = this.plugin();
    ctx.log(pluginStatusLine(plugin), plugin.installed ? 'info' : 'warn');
    return this.outputs(cli, plugin);
  }

  private outputs(cli: Extract<PulumiCliStatus, { found: true }>, plugin: PluginStatus): StepOutputs {
    return { pulumiVersion: cli.version, pulumiPath: cli.path, kubernetesPlugin: { version: plugin.version, installed: plugin.installed } };
  }
}

export function appsPreflightStep(config: Config, _options: RunOptions, detect?: DetectCli, plugin?: DetectPlugin): Step {
  return new AppsPreflightStep(config, detect, plugin);
}
