/**
 * apps:preflight — is the Pulumi CLI installed? It has no needs and every root step of the plan waits
 * for it (steps/index.ts), so a missing CLI stops the run before any VM exists. Under --demo without
 * the CLI the apps are skipped instead, so the demo completes.
 */
import type { Config } from '../../src/config/schema.js';
import { detectPulumiCli, findOnPath, PULUMI_INSTALL, pulumiCliMissingError, type PulumiCliStatus } from '../../src/pulumi/cli.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext, StepOutputs } from '../types.js';
import { enabledApps } from './names.js';

export type DetectCli = () => Promise<PulumiCliStatus>;

export const DEMO_SKIP_REASON = 'the Pulumi CLI is not installed (demo: the cluster apps are skipped; install it to try them)';

export class AppsPreflightStep implements Step {
  readonly id = STEP.appsPreflight;
  readonly title = 'Pulumi CLI for the cluster apps';
  readonly group = 'apps';
  needs: string[] = [];
  readonly inputs: unknown;
  constructor(
    private readonly config: Config,
    private readonly detect: DetectCli = () => detectPulumiCli(),
  ) {
    this.inputs = { apps: enabledApps(config.apps) };
  }

  describe(ctx: StepContext): string {
    const line = `Check that the Pulumi CLI is installed (the cluster apps ${enabledApps(this.config.apps).join(', ')} are applied with it)`;
    // describe() must not spawn anything; a PATH lookup is enough to warn in the plan already.
    if (findOnPath('pulumi')) return line;
    return ctx.options.demo
      ? `${line}: not found on PATH, so the demo skips the apps`
      : `${line}: NOT FOUND on PATH, so the run will stop here before any VM is created (install: ${PULUMI_INSTALL.script})`;
  }

  async check(ctx: StepContext): Promise<CheckResult> {
    const cli = await this.detect();
    if (cli.found) return { done: true, outputs: { pulumiVersion: cli.version, pulumiPath: cli.path }, reason: `pulumi ${cli.version} at ${cli.path}` };
    if (ctx.options.demo) return { skip: true, reason: DEMO_SKIP_REASON };
    return { done: false, reason: cli.reason };
  }

  async run(_ctx: StepContext): Promise<StepOutputs> {
    const cli = await this.detect();
    if (!cli.found) throw pulumiCliMissingError(cli.reason);
    return { pulumiVersion: cli.version, pulumiPath: cli.path };
  }
}

export function appsPreflightStep(config: Config, _options: RunOptions, detect?: DetectCli): Step {
  return new AppsPreflightStep(config, detect);
}
