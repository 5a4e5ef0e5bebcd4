/**
 * The Pulumi CLI: Automation API drives the `pulumi` binary, which flatcar-k3s never installs itself.
 * Detect it before anything is created (preflight), and turn "spawn pulumi ENOENT" into the same
 * message with the install instructions.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { PulumiCommand } from '@pulumi/pulumi/automation/index.js';
import { UserError } from '../errors.js';

export const PULUMI_INSTALL = {
  script: 'curl -fsSL https://get.pulumi.com | sh',
  brew: 'brew install pulumi/tap/pulumi',
  choco: 'choco install pulumi',
  later: 'flatcar-k3s apps --config FILE',
} as const;

export interface PulumiCliFound {
  found: true;
  command: PulumiCommand;
  version: string;
  path: string;
}
export interface PulumiCliMissing {
  found: false;
  /** Why: not on PATH, or present but `pulumi version` failed. */
  reason: string;
}
export type PulumiCliStatus = PulumiCliFound | PulumiCliMissing;

/** `which`: the first executable file named `name` on PATH (with PATHEXT on Windows). No process is spawned. */
export function findOnPath(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const dirs = (env.PATH ?? env.Path ?? '').split(platform === 'win32' ? ';' : delimiter).filter(Boolean);
  const exts = platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter(Boolean) : [''];
  for (const dir of dirs) {
    for (const ext of exts) {
      const file = join(dir, name + ext);
      try {
        if (!statSync(file).isFile()) continue;
        if (platform !== 'win32') accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** Is the CLI usable? PATH lookup first (cheap, no spawn), then `pulumi version` through the SDK. */
export async function detectPulumiCli(env: NodeJS.ProcessEnv = process.env): Promise<PulumiCliStatus> {
  const path = findOnPath('pulumi', env);
  if (!path) return { found: false, reason: 'the `pulumi` command is not on PATH' };
  // The SDK loads here, not at import: plan/--help build the apps steps that import this module.
  const { PulumiCommand } = await import('@pulumi/pulumi/automation/index.js');
  try {
    const command = await PulumiCommand.get({ skipVersionCheck: true });
    return { found: true, command, version: command.version?.toString() ?? 'unknown', path };
  } catch (err) {
    if (isPulumiMissing(err)) return { found: false, reason: 'the `pulumi` command is not on PATH' };
    const first = String((err as Error)?.message ?? err)
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l && !/^code:/.test(l));
    return { found: false, reason: `${path} did not run (\`pulumi version\` failed${first ? `: ${first}` : ''})` };
  }
}

/** Automation API's error when the binary is absent: a CommandError whose text says `spawn pulumi ENOENT`. */
export function isPulumiMissing(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /spawn pulumi ENOENT|ENOENT: pulumi version/.test(msg);
}

/** The preflight refusal: what is missing, how to install it, and how to apply the apps later. */
export function pulumiCliMissingError(reason = 'the `pulumi` command is not on PATH'): UserError {
  return new UserError(`The Pulumi CLI is required to install the cluster apps, but ${reason}.`, {
    field: 'apps',
    fix:
      `Install it (${PULUMI_INSTALL.script}, or ${PULUMI_INSTALL.brew}, or ${PULUMI_INSTALL.choco}), open a new shell so it is on PATH, and run again. ` +
      `Or build the cluster without them now (\`flatcar-k3s up --skip-apps …\`, or disable them in the config) and apply them later with \`${PULUMI_INSTALL.later}\`.`,
    detail: 'flatcar-k3s never downloads the Pulumi CLI by itself. This check runs before any VM is created.',
  });
}
