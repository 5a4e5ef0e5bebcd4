/**
 * The command registry: name → lazy loader. Each command file exports `name`, `summary`, `usage`
 * and `run(argv, io)` (resolving to the exit code). Keep command modules light at the top level
 * (import heavy things inside `run`): `--help` loads every module to list the summaries.
 * Adding a command = one file in this folder + one line here.
 */
import type { CliIo } from '../io.js';

export interface CommandModule {
  name: string;
  /** One line for `flatcar-k3s --help`. */
  summary: string;
  /** Full help text for `flatcar-k3s <name> --help` and usage errors. */
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

export const commands: Record<string, () => Promise<CommandModule>> = {
  up: () => import('./up.js'),
  plan: () => import('./plan.js'),
  status: () => import('./status.js'),
  validate: () => import('./validate.js'),
  render: () => import('./render.js'),
  versions: () => import('./versions.js'),
  apps: () => import('./apps.js'),
  'demo-server': () => import('./demo-server.js'),
  'forget-host-key': () => import('./forget-host-key.js'),
  destroy: () => import('./destroy.js'),
};
