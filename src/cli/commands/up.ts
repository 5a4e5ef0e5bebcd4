/**
 * `up --config FILE`: run or resume the whole installation non-interactively. Prints the plan, asks
 * (y/N) unless --yes, then one line per step transition and step log line. Every step is checked
 * against the real world first, so running `up` again is how a failed or interrupted run resumes.
 */
import { EXIT } from '../../errors.js';
import { GLOBAL_USAGE, parseCommandArgs, parseParallel, resolveGlobals, UsageError } from '../args.js';
import { globalLogFile } from '../../store/layout.js';
import { isPlain, requireAnswerable, writeLine, type CliIo } from '../io.js';
import { stopOnSignals } from '../stop-signals.js';
import { shJoin } from '../../shell/quote.js';

export const name = 'up';
export const summary = 'create or resume a cluster from a config file (non-interactive)';
export const usage = `Usage: flatcar-k3s up --config FILE [--yes] [--demo] [--parallel N]
                      [--recreate-template] [--no-merge-kubeconfig] [--skip-apps] [--preset NAME]

Creates the cluster the config describes, or resumes it: every step is first checked against the
real world (Proxmox, the VMs, k3s) and runs only when not done. Run the same command again after a
failure or Ctrl-C to continue where it stopped.

Options:
  --config FILE            the cluster config (YAML); optional with --demo (default preset homelab)
  --preset NAME            start from a preset (homelab, ha); the file's keys override it
  --yes                    do not ask before changing anything; trust the Proxmox TLS certificate
                           on first use when neither proxmox.fingerprint nor a saved pin is known
  --demo                   run against the built-in Proxmox simulator (nothing real is touched;
                           the kubeconfig is written to the state dir, not merged); its world is
                           kept in <state dir>/demo, so the same command resumes it
                           (FLATCAR_K3S_DEMO_SPEED=X sets its time scale, default 0.05)
  --parallel N             at most N steps at once (default 8); clones and server joins have
                           their own lower limits
  --recreate-template      build the Flatcar template again even if one exists
  --no-merge-kubeconfig    do not merge the cluster into ~/.kube/config
  --skip-apps              build the cluster without its apps now (e.g. no Pulumi CLI yet); apply
                           them later with "flatcar-k3s apps --config FILE"

${GLOBAL_USAGE}`;

const OPTIONS = {
  config: { type: 'string' },
  preset: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  demo: { type: 'boolean' },
  parallel: { type: 'string' },
  'recreate-template': { type: 'boolean' },
  'no-merge-kubeconfig': { type: 'boolean' },
  'skip-apps': { type: 'boolean' },
} as const;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, OPTIONS, usage);
  const parallel = parseParallel(values.parallel, usage);
  if (!values.config && !values.preset && !values.demo) throw new UsageError('up needs --config FILE (or --demo)', usage);
  const yes = values.yes ?? false;
  requireAnswerable(
    yes,
    io,
    'up changes things on Proxmox and asks before it does',
    'Run it in a terminal, or pass --yes to proceed without asking (review the steps first with "flatcar-k3s plan --config FILE").',
  );
  const globals = await resolveGlobals(values, io);
  const resume = `flatcar-k3s up ${shJoin(argv)}`;
  const plain = isPlain(io);
  const [{ loadCliConfig }, { appendLogLine }, { startCliDemo }] = await Promise.all([
    import('../config-source.js'),
    import('../../log/file.js'),
    import('../demo-run.js'),
  ]);
  // Lines from the demo simulator before the run log is open go to the global log.
  const demo = await startCliDemo(values.demo, globals, io);
  try {
    let config;
    try {
      ({ config } = loadCliConfig(
        { config: values.config, preset: values.preset, overrides: demo.overrides, defaultPreset: values.demo ? 'homelab' : undefined },
        io.env,
        io.cwd,
      ));
    } catch (err) {
      appendLogLine(globals.logFile ?? globalLogFile(globals.stateDir), `up: ${(err as Error).message}`);
      throw err;
    }
    if (values['skip-apps']) {
      // Build the cluster now, the apps later (`flatcar-k3s apps --config FILE`), e.g. without the Pulumi CLI.
      const { withoutApps } = await import('../../config/apps.js');
      config = withoutApps(config);
    }
    return await runCluster(io, {
      config,
      globals,
      yes,
      plain,
      resume,
      options: {
        parallel,
        yes,
        demo: values.demo ?? false,
        recreateTemplate: values['recreate-template'] ?? false,
        // The demo's cluster is simulated: never merge it into the user's real ~/.kube/config.
        mergeKubeconfig: !values['no-merge-kubeconfig'] && !values.demo,
      },
      setDemoLog: demo.setLog,
    });
  } finally {
    await demo.close();
  }
}

async function runCluster(
  io: CliIo,
  a: {
    config: import('../../config/schema.js').Config;
    globals: { stateDir: string; logFile?: string };
    yes: boolean;
    plain: boolean;
    resume: string;
    options: import('../../../steps/types.js').RunOptions;
    setDemoLog: (fn: (line: string) => void) => void;
  },
): Promise<number> {
  const [{ ClusterRun }, { formatChanges }, { configSummary }, { attachPrinter, printFailedRun }, { askYesNo }] = await Promise.all([
    import('../../runner/session.js'),
    import('../../runner/changes.js'),
    import('../summary.js'),
    import('../printer.js'),
    import('../prompt.js'),
  ]);
  const canAsk = Boolean(io.stdin.isTTY);
  const run = await ClusterRun.open({
    config: a.config,
    stateDir: a.globals.stateDir,
    logFile: a.globals.logFile,
    options: a.options,
    env: io.env,
    buildSteps: io.buildSteps,
    warn: (line) => writeLine(io.stderr, `warning: ${line}`),
    confirm: canAsk ? (q) => askYesNo(io.stdin, io.stderr, q) : undefined,
  });
  a.setDemoLog((line) => run.log.write(`demo: ${line}`));
  const controller = new AbortController();
  const uninstall = stopOnSignals(io, run, controller, a.resume);
  try {
    run.log.write(`flatcar-k3s ${a.resume.replace(/^flatcar-k3s /, '')} (pid ${process.pid})`);
    writeLine(io.stdout, `Cluster ${a.config.cluster.name}`);
    for (const l of configSummary(a.config)) writeLine(io.stdout, `  ${l}`);
    const lines = run.planLines();
    writeLine(io.stdout, `Plan (${lines.length} steps; each is checked first and runs only if not done):`);
    lines.forEach((l, i) =>
      writeLine(
        io.stdout,
        `  ${String(i + 1).padStart(3)}. ${l.describe}${l.status === 'done' && !l.reopened ? '  [done before]' : l.reopened ? '  [re-check: config changed]' : ''}`,
      ),
    );
    const changeLines = formatChanges(run.changes);
    for (const l of changeLines) writeLine(io.stdout, l);
    if (!a.yes) {
      const ok = await askYesNo(
        io.stdin,
        io.stdout,
        changeLines.length ? 'The config changed since the last run. Apply it?' : 'Proceed?',
        controller.signal,
      );
      if (controller.signal.aborted) {
        writeLine(io.stderr, 'Interrupted before anything changed.');
        return EXIT.interrupted;
      }
      if (!ok) {
        writeLine(io.stdout, 'Nothing changed.');
        return EXIT.ok;
      }
    } else if (changeLines.length) {
      writeLine(io.stdout, 'Proceeding with the changed config (--yes).');
    }
    const detach = attachPrinter(run.events, io.stdout, { colour: !a.plain });
    let result;
    try {
      result = await run.execute(controller.signal, a.resume);
    } finally {
      detach();
    }
    if (result.status === 'succeeded') {
      writeLine(io.stdout, `Cluster ${a.config.cluster.name} is ready. Log: ${run.logFile}`);
      return EXIT.ok;
    }
    if (result.status === 'interrupted') {
      writeLine(io.stderr, `Interrupted. The state is saved in ${run.clusterDir}; resume with:\n  ${a.resume}\nLog: ${run.logFile}`);
      return EXIT.interrupted;
    }
    printFailedRun(io.stderr, result, a.resume, run.logFile);
    return EXIT.failed;
  } catch (err) {
    // Unexpected errors: full detail in the log; the top-level handler prints the log's path.
    run.log.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (err instanceof Error) Object.assign(err, { logFile: run.logFile });
    throw err;
  } finally {
    uninstall?.();
    run.close();
  }
}
