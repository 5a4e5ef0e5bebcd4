/**
 * The command line: global options, command dispatch through the lazy registry, and the one
 * top-level error handler that turns errors into messages and exit codes.
 * Start-up stays fast: nothing heavy is imported here; commands load what they need inside `run`.
 */
import { parseArgs } from 'node:util';
import { AbortedError, ConfigError, EXIT, RemoteError, UserError, isAbort } from '../errors.js';
import { importLazy } from '../runner/lazy.js';
import { GLOBAL_OPTIONS, GLOBAL_USAGE, UsageError, resolveGlobals, abs } from './args.js';
import { commands } from './commands/index.js';
import { isCi, writeLine, type CliIo } from './io.js';
import { packageVersion } from './version.js';
import { clustersDir } from '../store/layout.js';

const INTERACTIVE_OPTIONS = {
  ...GLOBAL_OPTIONS,
  version: { type: 'boolean', short: 'V' },
  demo: { type: 'boolean' },
  config: { type: 'string' },
} as const;

export async function globalUsage(): Promise<string> {
  const lines: string[] = [];
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  for (const [name, load] of Object.entries(commands)) {
    const mod = await load();
    lines.push(`  ${name.padEnd(width)}  ${mod.summary}`);
  }
  return `flatcar-k3s ${packageVersion()}: k3s on Flatcar Container Linux VMs on Proxmox VE

Usage:
  flatcar-k3s                       interactive set-up (in a terminal)
  flatcar-k3s [--demo] [--config FILE]
  flatcar-k3s <command> [options]   run "flatcar-k3s <command> --help" for a command's options

Commands:
${lines.join('\n')}

${GLOBAL_USAGE}

Exit codes: 0 success, 1 a step failed (run the printed "up" command to resume),
            2 bad usage or invalid config (nothing changed), 130 interrupted.`;
}

/** Split argv into the global options given before the command, the command, and the rest. */
function splitCommand(argv: string[]): { before: string[]; command?: string; rest: string[] } {
  const before: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--state-dir' || a === '--log-file' || a === '--config') {
      before.push(a);
      if (i + 1 < argv.length) before.push(argv[++i]!);
      continue;
    }
    if (a.startsWith('-')) {
      before.push(a);
      continue;
    }
    return { before, command: a, rest: argv.slice(i + 1) };
  }
  return { before, rest: [] };
}

/** Run the CLI; always resolves to an exit code (errors are printed here). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    return reportError(err, io);
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const { before, command, rest } = splitCommand(argv);
  if (command === undefined) return interactive(argv, io);
  if (command === 'help') {
    if (rest[0] && commands[rest[0]]) {
      writeLine(io.stdout, (await commands[rest[0]]!()).usage);
      return EXIT.ok;
    }
    writeLine(io.stdout, await globalUsage());
    return EXIT.ok;
  }
  const load = commands[command];
  if (!load) throw new UsageError(`Unknown command "${command}" (commands: ${Object.keys(commands).join(', ')})`, await globalUsage());
  if (before.includes('--version') || before.includes('-V')) {
    writeLine(io.stdout, packageVersion());
    return EXIT.ok;
  }
  const mod = await load();
  // Global options may come before the command; anything else before it is a usage error.
  const globals = parseArgs({ args: before, options: GLOBAL_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const t of globals.tokens ?? []) {
    if (t.kind === 'option' && !(t.name in GLOBAL_OPTIONS))
      throw new UsageError(`Unknown option "${t.rawName}" before the command`, await globalUsage());
  }
  const forwarded = [...before.filter((a) => a !== '-h' && a !== '--help'), ...rest];
  if (before.includes('--help') || before.includes('-h') || rest.includes('--help') || rest.includes('-h')) {
    writeLine(io.stdout, mod.usage);
    return EXIT.ok;
  }
  return mod.run(forwarded, io);
}

async function interactive(argv: string[], io: CliIo): Promise<number> {
  let values;
  try {
    values = parseArgs({ args: argv, options: INTERACTIVE_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message, await globalUsage());
  }
  if (values.help) {
    writeLine(io.stdout, await globalUsage());
    return EXIT.ok;
  }
  if (values.version) {
    writeLine(io.stdout, packageVersion());
    return EXIT.ok;
  }
  if (!io.stdout.isTTY || !io.stdin.isTTY || isCi(io.env)) {
    writeLine(
      io.stderr,
      'flatcar-k3s: the interactive set-up needs a terminal (stdin and stdout a TTY, CI not set).\n' +
        'For scripts and CI run it non-interactively:\n' +
        '  flatcar-k3s up --config FILE [--yes]      (or: flatcar-k3s up --demo --yes)\n' +
        'See "flatcar-k3s --help".',
    );
    return EXIT.usage;
  }
  const globals = await resolveGlobals(values, io);
  // The first screen before the UI's modules load (ink and React are most of the start-up); the demo
  // and a config file given on the command line start elsewhere, and draw once the UI is loaded.
  const early = !values.demo && typeof values.config !== 'string' ? await import('../app/first-frame.js') : undefined;
  early?.drawFirstFrame({
    stdout: io.stdout as NodeJS.WriteStream,
    stdin: io.stdin as NodeJS.ReadStream,
    env: io.env,
    clustersDir: clustersDir(globals.stateDir),
  });
  try {
    const mod = await importLazy<{
      runInteractive(opts: {
        firstFrameDrawn?: boolean;
        stateDir: string;
        logFile?: string;
        demo?: boolean;
        configPath?: string;
        stdin: unknown;
        stdout: unknown;
        stderr: unknown;
        buildSteps?: CliIo['buildSteps'];
      }): Promise<number>;
    }>(() => import('../app/main.js'), 'the interactive UI');
    return await mod.runInteractive({
      firstFrameDrawn: !!early,
      stateDir: globals.stateDir,
      logFile: globals.logFile,
      demo: values.demo,
      configPath: typeof values.config === 'string' ? abs(values.config, io.cwd) : undefined,
      stdin: io.stdin,
      stdout: io.stdout,
      stderr: io.stderr,
      buildSteps: io.buildSteps,
    });
  } catch (err) {
    if (early) early.undoFirstFrame(io.stdout as NodeJS.WriteStream); // the UI did not take over: leave the screen as it was
    throw err;
  }
}

/** Print an error the way its type asks for and return the exit code. */
export function reportError(err: unknown, io: CliIo, logFile = (err as { logFile?: string } | undefined)?.logFile): number {
  if (err instanceof AbortedError || isAbort(err)) {
    writeLine(io.stderr, `flatcar-k3s: ${(err as Error).message || 'interrupted'}`);
    return EXIT.interrupted;
  }
  if (err instanceof UsageError) {
    writeLine(io.stderr, `flatcar-k3s: ${err.message}\n\n${err.usage}`);
    return EXIT.usage;
  }
  if (err instanceof ConfigError) {
    writeLine(io.stderr, `flatcar-k3s: ${err.message}\n${err.fix ?? ''}`);
    return EXIT.usage;
  }
  if (err instanceof UserError) {
    writeLine(io.stderr, `flatcar-k3s: ${err.message}${err.detail ? `\n${err.detail}` : ''}${err.fix ? `\nFix: ${err.fix}` : ''}`);
    return EXIT.usage;
  }
  if (err instanceof RemoteError) {
    // Proxmox, SSH or Pulumi said no: not our bug; the message carries the remote detail and the fix.
    writeLine(
      io.stderr,
      `flatcar-k3s: ${err.message}${err.detail ? `\n${err.detail}` : ''}${err.fix ? `\nFix: ${err.fix}` : ''}${logFile ? `\nLog: ${logFile}` : ''}`,
    );
    return EXIT.failed;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  writeLine(
    io.stderr,
    `flatcar-k3s hit a bug: ${e.message}\n${e.stack ?? ''}\n` + `Please report it${logFile ? ` with the log file ${logFile}` : ''}.`,
  );
  return EXIT.failed;
}
