/**
 * Entry point of the terminal UI (`flatcar-k3s` with no command, and `--demo`). Refuses to run without
 * a terminal (or under CI) and points to `up --config`; otherwise renders the wizard full-screen and
 * resolves with the exit code. Every stream comes from the caller: nothing reaches for `process.std*`.
 * React and Ink are imported only after NODE_ENV defaults to "production": React's development build
 * about doubles what a busy Run screen costs in CPU (scripts/bench/ui.ts).
 */
import { themeFor } from '../ui/theme-colors.js';
import { detectPulumi, envPrefill, findClusters, findUnfinished, realServices, startUiDemo } from './services.js';
import { appendLogLine } from '../log/file.js';
import { EXIT } from '../errors.js';
import { globalLogFile } from '../store/layout.js';
import type { BuildSteps } from '../runner/steps.js';
import type { Plain } from '../ui/state.js';

export interface InteractiveOptions {
  /** The CLI drew the first screen already (src/app/first-frame.ts): Ink draws over it. */
  firstFrameDrawn?: boolean;
  stateDir: string;
  logFile?: string;
  demo?: boolean;
  configPath?: string;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
  /** The steps a run goes through (default: steps/index.ts); tests hand in theirs. */
  buildSteps?: BuildSteps;
}

function isCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

export async function runInteractive(opts: InteractiveOptions): Promise<number> {
  const env = opts.env ?? process.env;
  if (!opts.stdout.isTTY || !opts.stdin.isTTY || isCi(env)) {
    opts.stderr.write(
      'flatcar-k3s: the guided set-up needs a terminal (stdin and stdout a TTY, CI not set).\n' +
        'Run it non-interactively instead:\n' +
        '  flatcar-k3s up --config FILE --yes      (or: flatcar-k3s up --demo --yes)\n',
    );
    return EXIT.usage;
  }
  const globalLog = opts.logFile ?? globalLogFile(opts.stateDir);
  let demoLog: (line: string) => void = (line) => appendLogLine(globalLog, `demo: ${line}`);
  let demo: { overrides: Plain; close(): Promise<void> } | undefined;
  if (opts.demo) {
    opts.stdout.write('Starting the demo: a simulated Proxmox VE (nothing real is touched)…\n');
    demo = await startUiDemo(opts.stateDir, env, (line) => demoLog(line));
  }
  try {
    const fromEnv = envPrefill(env);
    // No subprocess before the first frame: `pulumi version` runs once the screen is up (the Apps
    // screen, several screens on, reads the answer).
    const [unfinished, clusters] = await Promise.all([findUnfinished(opts.stateDir), findClusters(opts.stateDir)]);
    const pulumiAvailable = false;
    const services = realServices({
      stateDir: opts.stateDir,
      logFile: opts.logFile,
      env,
      demo: opts.demo,
      prefill: demo ? {} : fromEnv.prefill,
      overrides: demo?.overrides,
      prefillSources: demo ? {} : fromEnv.sources,
      pulumiAvailable,
      buildSteps: opts.buildSteps,
      unfinished,
      clusters,
      onRunLog: (write) => {
        demoLog = write ? (line) => write(`demo: ${line}`) : (line) => appendLogLine(globalLog, `demo: ${line}`);
      },
    });
    process.env.NODE_ENV ??= 'production';
    const [{ render }, { createElement }, { App }] = await Promise.all([import('ink'), import('react'), import('./App.js')]);
    let resolveCode!: (code: number) => void;
    let farewell: string | undefined;
    const code = new Promise<number>((r) => (resolveCode = r));
    // SIGTERM, or SIGHUP when the terminal goes away: stop the run safely (state saved), then exit.
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    const app = createElement(App, {
      stop: stop.signal,
      services,
      theme: themeFor(env),
      configPath: opts.configPath,
      onExit: (c: number, message?: string) => {
        farewell = message;
        resolveCode(c);
      },
    });
    // A resize makes the terminal re-wrap the last frame, which Ink then erases by its old height and
    // leaves pieces behind. Registered before Ink's own handler: wipe the (alternate) screen first, so
    // Ink redraws the frame on a clean screen (finished steps above it are dropped from view).
    const wipe = () => opts.stdout.write('\x1b[H\x1b[2J');
    opts.stdout.on('resize', wipe);
    // Over the first frame (same screen, drawn before ink loaded): a clean screen for Ink's own.
    if (opts.firstFrameDrawn) opts.stdout.write('\x1b[H\x1b[2J');
    const instance = render(app, {
      stdin: opts.stdin,
      stdout: opts.stdout,
      stderr: opts.stderr,
      exitOnCtrlC: false,
      patchConsole: true,
      alternateScreen: true,
      maxFps: 15,
    });
    void detectPulumi(env).then((found) => {
      services.pulumiAvailable = found;
    });
    const exitCode = await Promise.race([code, instance.waitUntilExit().then(() => EXIT.ok)]);
    instance.unmount();
    await instance.waitUntilExit().catch(() => undefined);
    opts.stdout.off('resize', wipe);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    // The alternate screen is gone now: leave the essentials in the normal terminal.
    if (farewell) (exitCode === EXIT.ok ? opts.stdout : opts.stderr).write(farewell + '\n');
    return exitCode;
  } finally {
    await demo?.close();
  }
}
