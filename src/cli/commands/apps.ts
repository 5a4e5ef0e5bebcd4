/**
 * `apps --config FILE`: (re)apply just the cluster apps (Pulumi stacks infra-bootstrap / infra-apps)
 * to a cluster an earlier `up` created, with the kubeconfig recorded in its state. Pulumi applies only
 * what changed, so running it again is a no-op when nothing did.
 */
import { EXIT, UserError } from '../../errors.js';
import { GLOBAL_USAGE, parseCommandArgs, resolveGlobals, UsageError } from '../args.js';
import { isPlain, requireAnswerable, writeLine, type CliIo } from '../io.js';
import { shJoin } from '../../shell/quote.js';
import { clusterDirFor } from '../../store/layout.js';

export const name = 'apps';
export const summary = 'apply the cluster apps (Pulumi) to a cluster created by "up"';
export const usage = `Usage: flatcar-k3s apps --config FILE [--yes] [--preset NAME]

Applies the apps selected under "apps:" in the config (Pulumi Kubernetes Operator, kured, piraeus,
cert-manager, system-upgrade-controller) to the cluster an earlier "up" created, using the
kubeconfig recorded in its state. Only what changed is applied; run it again after a failure to
resume. Needs the Pulumi CLI (curl -fsSL https://get.pulumi.com | sh).

Options:
  --config FILE   the cluster config (YAML) used for "up"
  --preset NAME   start from a preset (homelab, ha); the file's keys override it
  --yes           do not ask before applying

${GLOBAL_USAGE}`;

const OPTIONS = {
  config: { type: 'string' },
  preset: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
} as const;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, OPTIONS, usage);
  if (!values.config && !values.preset) throw new UsageError('apps needs --config FILE', usage);
  const yes = values.yes ?? false;
  requireAnswerable(
    yes,
    io,
    'apps changes the cluster and asks before it does',
    'Run it in a terminal, or pass --yes to apply without asking.',
  );
  const globals = await resolveGlobals(values, io);
  const resume = `flatcar-k3s apps ${shJoin(argv)}`;
  const [
    { loadCliConfig },
    { ClusterRun },
    { readState },
    { appsOnlySteps },
    { anyAppEnabled },
    { STEP },
    { attachPrinter, printFailedRun },
    { askYesNo },
  ] = await Promise.all([
    import('../config-source.js'),
    import('../../runner/session.js'),
    import('../../runner/state.js'),
    import('../../../steps/apps/index.js'),
    import('../../config/apps.js'),
    import('../../../steps/ids.js'),
    import('../printer.js'),
    import('../prompt.js'),
  ]);
  const { config } = loadCliConfig({ config: values.config, preset: values.preset }, io.env, io.cwd);
  if (!anyAppEnabled(config.apps)) {
    writeLine(
      io.stdout,
      `No apps are selected in the config (apps.pulumiOperator, kured, piraeus, certManager, systemUpgradeController): nothing to do.`,
    );
    return EXIT.ok;
  }
  const clusterDir = clusterDirFor(globals.stateDir, config.cluster.name);
  const kubeconfig = readState(clusterDir)?.steps[STEP.kubeconfig]?.outputs?.kubeconfigPath;
  if (typeof kubeconfig !== 'string') {
    throw new UserError(`No cluster "${config.cluster.name}" with a kubeconfig in ${clusterDir}`, {
      field: 'cluster.name',
      fix: `Create the cluster first with \`flatcar-k3s up --config FILE\` (same config and --state-dir); "apps" applies the apps to a cluster "up" built.`,
    });
  }

  const run = await ClusterRun.open({
    config,
    stateDir: globals.stateDir,
    logFile: globals.logFile,
    options: { parallel: 2, yes },
    env: io.env,
    buildSteps: (c, o) => appsOnlySteps(c, o),
    warn: (line) => writeLine(io.stderr, `warning: ${line}`),
  });
  const controller = new AbortController();
  const uninstall = io.onSignal?.((sig) => {
    run.log.write(`received ${sig}`);
    writeLine(io.stderr, `\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping Pulumi (it saves what it applied)…`);
    controller.abort();
  });
  try {
    writeLine(io.stdout, `Cluster ${config.cluster.name}: kubeconfig ${kubeconfig}`);
    const lines = run.planLines();
    lines.forEach((l, i) => writeLine(io.stdout, `  ${String(i + 1).padStart(3)}. ${l.describe}`));
    const outside = run.changes.settings.filter((s) => !s.path.startsWith('apps.'));
    if (outside.length)
      writeLine(
        io.stderr,
        `warning: ${outside.length} setting(s) outside "apps" changed since the last "up" (${outside.map((s) => s.path).join(', ')}); "apps" does not apply them: run "up".`,
      );
    if (!yes) {
      const ok = await askYesNo(io.stdin, io.stdout, 'Apply the apps?', controller.signal);
      if (!ok || controller.signal.aborted) {
        writeLine(io.stdout, 'Nothing changed.');
        return controller.signal.aborted ? EXIT.interrupted : EXIT.ok;
      }
    }
    const detach = attachPrinter(run.events, io.stdout, { colour: !isPlain(io) });
    let result;
    try {
      result = await run.execute(controller.signal, resume);
    } finally {
      detach();
    }
    if (result.status === 'succeeded') {
      const skipped = result.skipped.length ? ` (${result.skipped.length} skipped)` : '';
      writeLine(io.stdout, `Apps applied to ${config.cluster.name}${skipped}. Log: ${run.logFile}`);
      return EXIT.ok;
    }
    if (result.status === 'interrupted') {
      writeLine(io.stderr, `Interrupted; resume with:\n  ${resume}\nLog: ${run.logFile}`);
      return EXIT.interrupted;
    }
    printFailedRun(io.stderr, result, resume, run.logFile);
    return EXIT.failed;
  } finally {
    uninstall?.();
    run.close();
  }
}
