/**
 * `destroy --config FILE`: remove what `up` created for this cluster, and nothing else: the node VMs
 * (only those tagged flatcar-k3s + the cluster and named as planned), their Ignition snippets, the
 * template and its snippet (unless --keep-template, and only when no linked clone still uses it), the
 * cluster's kubeconfig entries, then its state records and secrets. Runs as steps through the same
 * runner as `up` (lock, run log, Ctrl-C, resume by running it again).
 */
import { EXIT } from '../../errors.js';
import { GLOBAL_USAGE, parseCommandArgs, resolveGlobals, UsageError } from '../args.js';
import { isPlain, requireAnswerable, writeLine, type CliIo } from '../io.js';
import { stopOnSignals } from '../stop-signals.js';
import { shJoin } from '../../shell/quote.js';
import { clusterDirFor } from '../../store/layout.js';

export const name = 'destroy';
export const summary = 'delete the cluster "up" created (its VMs, snippets, template, kubeconfig entries, state)';
export const usage = `Usage: flatcar-k3s destroy --config FILE [--yes] [--keep-template] [--demo] [--preset NAME]

Deletes what "up" created for the cluster of this config, and nothing else:
  - the node VMs (stopped, then deleted with their disks), but only VMs tagged flatcar-k3s and
    the cluster name whose name and VMID match the plan or the state: anything else at those
    VMIDs is left alone with a warning;
  - the nodes' Ignition snippets on the Proxmox host (over SSH);
  - the template VM and its snippet, unless --keep-template or a linked clone still uses it;
  - the cluster's cluster/context/user entries in ~/.kube/config (backup first) and its
    kubeconfig file, then its step records, node host-key pins, the apps' Pulumi state and
    its secrets (k3s token).
Kept: the downloaded Flatcar image (other clusters may use it), the Proxmox TLS/SSH pins, the run log.
Every step first checks whether its part is already gone, so running it again resumes or does nothing.

Options:
  --config FILE     the cluster config (YAML) used for "up"
  --preset NAME     start from a preset (homelab, ha); the file's keys override it
  --yes             do not ask; without it the list of what will be deleted is shown and
                    confirmed on the terminal
  --keep-template   keep the template VM and its snippet (the next "up" reuses it)
  --demo            destroy the demo cluster of "up --demo" (in <state dir>/demo)

${GLOBAL_USAGE}`;

const OPTIONS = {
  config: { type: 'string' },
  preset: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  'keep-template': { type: 'boolean' },
  demo: { type: 'boolean' },
} as const;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, OPTIONS, usage);
  if (!values.config && !values.preset && !values.demo) throw new UsageError('destroy needs --config FILE (or --demo)', usage);
  const yes = values.yes ?? false;
  requireAnswerable(
    yes,
    io,
    'destroy deletes VMs on Proxmox and asks before it does',
    'Run it in a terminal, or pass --yes to delete without asking (the list of what goes is printed either way).',
  );
  const globals = await resolveGlobals(values, io);
  const resume = `flatcar-k3s destroy ${shJoin(argv)}`;
  const keepTemplate = values['keep-template'] ?? false;
  const [
    { loadCliConfig },
    { startCliDemo },
    { ClusterRun },
    { readState },
    { destroySteps, storeForget, recordedNodes },
    { attachPrinter, printFailedRun },
    { askYesNo },
    { STEP },
  ] = await Promise.all([
    import('../config-source.js'),
    import('../demo-run.js'),
    import('../../runner/session.js'),
    import('../../runner/state.js'),
    import('../../../steps/destroy/index.js'),
    import('../printer.js'),
    import('../prompt.js'),
    import('../../../steps/ids.js'),
  ]);
  const demo = await startCliDemo(values.demo, globals, io);
  try {
    const { config } = loadCliConfig(
      { config: values.config, preset: values.preset, overrides: demo.overrides, defaultPreset: values.demo ? 'homelab' : undefined },
      io.env,
      io.cwd,
    );
    const canAsk = Boolean(io.stdin.isTTY);
    let store: import('../../runner/state.js').StateStore | undefined;
    const state = storeForget(() => store!);
    // Nodes an earlier `up` created that the config no longer plans are this cluster's too.
    const recorded = recordedNodes(config, readState(clusterDirFor(globals.stateDir, config.cluster.name)));
    const run = await ClusterRun.open({
      config,
      stateDir: globals.stateDir,
      logFile: globals.logFile,
      options: { parallel: 8, yes, demo: values.demo ?? false },
      env: io.env,
      buildSteps: (c, o) => destroySteps(c, o, { keepTemplate, state, recorded }),
      warn: (line) => writeLine(io.stderr, `warning: ${line}`),
      confirm: canAsk ? (q) => askYesNo(io.stdin, io.stderr, q) : undefined,
    });
    store = run.store;
    demo.setLog((line) => run.log.write(`demo: ${line}`));
    const controller = new AbortController();
    const uninstall = stopOnSignals(io, run, controller, resume);
    try {
      run.log.write(`flatcar-k3s ${resume.replace(/^flatcar-k3s /, '')} (pid ${process.pid})`);
      writeLine(io.stdout, `Destroy cluster ${config.cluster.name}`);
      const lines = run.planLines();
      writeLine(io.stdout, `Plan (${lines.length} steps; each first checks whether its part is already gone):`);
      lines.forEach((l, i) => writeLine(io.stdout, `  ${String(i + 1).padStart(3)}. ${l.describe}`));
      const image = run.store.get().steps['template:image']?.outputs?.volid;
      const kept = [`the downloaded Flatcar image${typeof image === 'string' ? ` ${image}` : ''} (other clusters may use it)`];
      if (keepTemplate) {
        const t = run.store.get().steps[STEP.templateReady]?.outputs;
        kept.push(
          `the template${t ? ` ${String(t.templateName)} (VMID ${String(t.templateVmid)})` : ''} and its snippet (--keep-template)`,
        );
      }
      kept.push(`the Proxmox TLS/SSH pins and the run log ${run.logFile}`);
      writeLine(io.stdout, `Kept: ${kept.join('; ')}.`);
      if (!yes) {
        const ok = await askYesNo(io.stdin, io.stdout, `Delete cluster ${config.cluster.name} as listed?`, controller.signal);
        if (controller.signal.aborted) {
          writeLine(io.stderr, 'Interrupted before anything changed.');
          return EXIT.interrupted;
        }
        if (!ok) {
          writeLine(io.stdout, 'Nothing changed.');
          return EXIT.ok;
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
        const skipped = result.skipped.length ? ` (${result.skipped.length} step(s) left things alone: see the warnings above)` : '';
        writeLine(io.stdout, `Cluster ${config.cluster.name} is destroyed${skipped}. Log: ${run.logFile}`);
        return EXIT.ok;
      }
      if (result.status === 'interrupted') {
        writeLine(io.stderr, `Interrupted. Resume with:\n  ${resume}\nLog: ${run.logFile}`);
        return EXIT.interrupted;
      }
      printFailedRun(io.stderr, result, resume, run.logFile);
      return EXIT.failed;
    } catch (err) {
      run.log.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (err instanceof Error) Object.assign(err, { logFile: run.logFile });
      throw err;
    } finally {
      uninstall?.();
      run.close();
    }
  } finally {
    await demo.close();
  }
}
