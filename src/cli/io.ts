/**
 * The streams and environment a command works with. Commands never reach for `process` directly,
 * so tests and the real terminal drive the same code.
 */
import { UserError } from '../errors.js';
import type { BuildSteps } from '../runner/steps.js';
import type { Readable, Writable } from 'node:stream';

export type InStream = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
export type OutStream = Writable & { isTTY?: boolean; columns?: number };

export interface CliIo {
  stdin: InStream;
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
  /** Where relative paths are resolved from. */
  cwd: string;
  /** Install handlers for Ctrl-C / SIGTERM; returns the uninstaller. Tests may pass a fake. */
  onSignal?: (handler: (signal: 'SIGINT' | 'SIGTERM') => void) => () => void;
  /** The steps `up`, `plan` and the interactive UI run (default: steps/index.ts). Tests hand in theirs. */
  buildSteps?: BuildSteps;
}

export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    onSignal(handler) {
      const onInt = () => handler('SIGINT');
      const onTerm = () => handler('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      };
    },
  };
}

/** Plain text (no colours, no redraws) when stdout is not a terminal or CI is set. */
export function isPlain(io: CliIo): boolean {
  return !io.stdout.isTTY || isCi(io.env);
}

export function isCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

export function writeLine(stream: OutStream, line = ''): void {
  stream.write(line + '\n');
}

/** Commands that change things ask first; without a terminal to answer on they need --yes. */
export function requireAnswerable(yes: boolean, io: CliIo, what: string, fix: string): void {
  if (yes || io.stdin.isTTY) return;
  throw new UserError(`${what}, but stdin is not a terminal to answer on`, { fix });
}
