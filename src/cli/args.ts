/**
 * Argument parsing shared by every command: node:util parseArgs in strict mode, the global options
 * (--state-dir, --log-file, --help) accepted by every command, and UsageError (exit 2 with the usage).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { defaultStateDir } from '../store/layout.js';
import type { CliIo } from './io.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Bad command line: exit 2, print the message and the command's usage. */
export class UsageError extends UserError {
  readonly usage: string;
  constructor(message: string, usage: string) {
    super(message, { fix: 'See the usage above, or run with --help.' });
    this.usage = usage;
  }
}

export const GLOBAL_OPTIONS = {
  'state-dir': { type: 'string' },
  'log-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

export const GLOBAL_USAGE = `Global options:
  --state-dir DIR   where cluster state, secrets and logs live
                    (default: $FLATCAR_K3S_STATE_DIR or the user data dir, e.g. ~/.local/share/flatcar-k3s)
  --log-file FILE   append the run log here (default: <state-dir>/clusters/<name>/run.log)
  -h, --help        show help
  -V, --version     print the version`;

export interface GlobalOptions {
  stateDir: string;
  /** Explicit --log-file, absolute. */
  logFile?: string;
}

/** Parse a command's argv (strict). Unknown flags and stray positionals are usage errors. */
export function parseCommandArgs<O extends OptionSpec>(argv: string[], options: O, usage: string, opts: { positionals?: number } = {}) {
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...options },
      strict: true,
      allowPositionals: (opts.positionals ?? 0) > 0,
    });
    if (parsed.positionals.length > (opts.positionals ?? 0))
      throw new UsageError(`Unexpected argument "${parsed.positionals[opts.positionals ?? 0]}"`, usage);
    return parsed;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) throw new UsageError(e.message, usage);
    throw err;
  }
}

export async function resolveGlobals(
  values: { 'state-dir'?: string | boolean; 'log-file'?: string | boolean },
  io: CliIo,
): Promise<GlobalOptions> {
  const sd = values['state-dir'];
  const lf = values['log-file'];
  const stateDir = typeof sd === 'string' ? abs(sd, io.cwd) : await defaultStateDir(io.env);
  return { stateDir, logFile: typeof lf === 'string' ? abs(lf, io.cwd) : undefined };
}

/** --parallel N of `up` and `plan`: at most N steps at once (default 8). */
export function parseParallel(value: string | undefined, usageText: string): number {
  if (value === undefined) return 8;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 256)
    throw new UsageError(`--parallel must be a whole number from 1 to 256 (given "${value}")`, usageText);
  return n;
}

export const abs = (p: string, cwd: string): string => (isAbsolute(p) ? p : resolve(cwd, p));
