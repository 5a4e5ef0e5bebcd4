/**
 * `--demo` for commands that run steps (up, destroy): start the persisted demo world in this process,
 * send its lines to the global log until the run log is open, and fit its config overrides to the
 * user's layout (src/demo/overrides.ts). Loads the simulator only when --demo is given.
 */
import { appendLogLine } from '../log/file.js';
import { fitDemoOverrides } from '../demo/overrides.js';
import type { GlobalOptions } from './args.js';
import { globalLogFile } from '../store/layout.js';
import { writeLine, type CliIo } from './io.js';

type Plain = Record<string, unknown>;

export interface CliDemo {
  /** Overrides for loadCliConfig (undefined without --demo). */
  overrides?: (doc: Plain) => Plain;
  /** Where the demo's own lines go once the run log is open. */
  setLog(fn: (line: string) => void): void;
  close(): Promise<void>;
}

export async function startCliDemo(enabled: boolean | undefined, globals: GlobalOptions, io: CliIo): Promise<CliDemo> {
  let log: (line: string) => void = (line) => appendLogLine(globals.logFile ?? globalLogFile(globals.stateDir), `demo: ${line}`);
  const setLog = (fn: (line: string) => void) => (log = fn);
  if (!enabled) return { setLog, close: async () => {} };
  const mod = await import('../demo/index.js');
  writeLine(io.stdout, 'Starting the demo: a simulated Proxmox VE (nothing real is touched)…');
  const demo = await mod.startDemo({ stateDir: globals.stateDir, speed: mod.demoSpeedFromEnv(io.env), log: (line) => log(line) });
  return { overrides: (doc) => fitDemoOverrides(demo.overrides, doc), setLog, close: () => demo.close() };
}
