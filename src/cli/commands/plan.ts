/** `plan --config FILE`: the ordered steps with their plan lines and saved status; touches nothing. */
import { EXIT } from '../../errors.js';
import { GLOBAL_USAGE, parseCommandArgs, parseParallel, resolveGlobals } from '../args.js';
import { writeLine, type CliIo } from '../io.js';

export const name = 'plan';
export const summary = 'print the steps "up" would take, and which are already done';
export const usage = `Usage: flatcar-k3s plan --config FILE [--preset NAME] [--parallel N] [--recreate-template]

Prints the ordered steps (a step runs once the steps it needs are done), each with its plan line and
its status from earlier runs, and the settings changed since the last run. Connects to nothing and
writes nothing. "up" checks every step against the real world before doing anything.

Options:
  --config FILE          the cluster config (YAML)
  --preset NAME          start from a preset (homelab, ha)
  --parallel N           as for "up" (steps may plan differently)
  --recreate-template    as for "up"

${GLOBAL_USAGE}`;

const MARK: Record<string, string> = {
  new: 'todo',
  pending: 'todo',
  running: 'cut off',
  done: 'done',
  skipped: 'skipped',
  failed: 'FAILED',
};

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    { config: { type: 'string' }, preset: { type: 'string' }, parallel: { type: 'string' }, 'recreate-template': { type: 'boolean' } },
    usage,
  );
  const globals = await resolveGlobals(values, io);
  const [{ loadCliConfig }, { planRun }, { formatChanges }] = await Promise.all([
    import('../config-source.js'),
    import('../../runner/session.js'),
    import('../../runner/changes.js'),
  ]);
  const { config } = loadCliConfig({ config: values.config, preset: values.preset }, io.env, io.cwd);
  const view = await planRun({
    config,
    stateDir: globals.stateDir,
    env: io.env,
    buildSteps: io.buildSteps,
    options: { parallel: parseParallel(values.parallel, usage), recreateTemplate: values['recreate-template'] ?? false },
  });
  writeLine(
    io.stdout,
    `Cluster ${config.cluster.name}: ${view.lines.length} step${view.lines.length === 1 ? '' : 's'} (state: ${view.clusterDir})`,
  );
  const width = Math.max(0, ...view.lines.map((l) => l.id.length));
  view.lines.forEach((l, i) => {
    const mark = l.reopened ? 're-check' : (MARK[l.status] ?? l.status);
    writeLine(io.stdout, `${String(i + 1).padStart(3)}. [${mark.padEnd(8)}] ${l.id.padEnd(width)}  ${l.describe}`);
  });
  for (const line of formatChanges(view.changes)) writeLine(io.stdout, line);
  if (config.flatcar.ignition.consoleAutologin) {
    const { CONSOLE_AUTOLOGIN_WARNING } = await import('../../../steps/template/snippet.js');
    writeLine(io.stdout, `${CONSOLE_AUTOLOGIN_WARNING}. Set it to false (the default) once you are done debugging.`);
  }
  const done = view.lines.filter((l) => (l.status === 'done' || l.status === 'skipped') && !l.reopened).length;
  if (view.state)
    writeLine(io.stdout, `${done} of ${view.lines.length} done at the last run; "up" checks each again before doing anything.`);
  return EXIT.ok;
}
