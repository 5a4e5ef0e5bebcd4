/** `validate --config FILE`: check the config only; print the resolved summary or every problem (exit 2). */
import { EXIT } from '../../errors.js';
import { GLOBAL_USAGE, parseCommandArgs } from '../args.js';
import { writeLine, type CliIo } from '../io.js';

export const name = 'validate';
export const summary = 'check a config file and print what it resolves to';
export const usage = `Usage: flatcar-k3s validate --config FILE [--preset NAME]

Validates the config (file, preset and environment) and prints the resolved summary: cluster,
Proxmox endpoint (secrets never shown), nodes with VMIDs, MACs and addresses. Changes nothing.
Exit code 2 and a list of every problem when the config is invalid.

Options:
  --config FILE     the cluster config (YAML)
  --preset NAME     start from a preset (homelab, ha); the file's keys override it

${GLOBAL_USAGE}`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, { config: { type: 'string' }, preset: { type: 'string' } }, usage);
  const [{ loadCliConfig }, { configSummary }] = await Promise.all([import('../config-source.js'), import('../summary.js')]);
  const { config, source } = loadCliConfig({ config: values.config, preset: values.preset }, io.env, io.cwd);
  writeLine(io.stdout, `${source}: valid`);
  for (const l of configSummary(config)) writeLine(io.stdout, l);
  return EXIT.ok;
}
