/**
 * `status [--cluster NAME] [--json]`: the saved state: each step, its status, when, and the error of a
 * failed one, and the node table (VM, address, k3s installed/running, Flatcar) as last observed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { EXIT, UserError } from '../../errors.js';
import { GLOBAL_USAGE, abs, parseCommandArgs, resolveGlobals } from '../args.js';
import { clusterDirFor, clusterFiles, clusterNames } from '../../store/layout.js';
import { writeLine, type CliIo } from '../io.js';
import { readState, type ClusterState } from '../../runner/state.js';
import { pidAlive } from '../../runner/lock.js';
import { nodeTableLines, statusDocument, statusNodes } from '../status-view.js';

export const name = 'status';
export const summary = 'show the saved state of a cluster (or list the clusters)';
export const usage = `Usage: flatcar-k3s status [--cluster NAME | --config FILE] [--json]

Shows the state saved by "up": each step, its status, when it changed, and the error of a failed
step, then each node: role, VMID, PVE node, address, the k3s version installed and running and the
Flatcar version, as last observed. Without --cluster: the only cluster in the state dir, or a list
of them. Reads only.

Options:
  --cluster NAME    the cluster (cluster.name in its config)
  --config FILE     the cluster this config file builds (its cluster.name; no credentials needed)
  --json            one JSON document: cluster, lastRun, steps (id, status, time, error), nodes

${GLOBAL_USAGE}`;

const when = (ms: number | undefined) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '-');

export function listClusters(stateDir: string): string[] {
  return clusterNames(stateDir)
    .filter((name) => existsSync(clusterFiles(clusterDirFor(stateDir, name)).state))
    .sort();
}

/** The last run was a `destroy` that finished: the cluster no longer exists on Proxmox. */
export function wasDestroyed(s: ClusterState): boolean {
  return s.lastRun?.status === 'succeeded' && /^flatcar-k3s destroy\b/.test(s.lastRun.command ?? '');
}

function counts(s: ClusterState): string {
  const c: Record<string, number> = {};
  for (const r of Object.values(s.steps)) c[r.status] = (c[r.status] ?? 0) + 1;
  return Object.entries(c)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}

function holder(clusterDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(clusterFiles(clusterDir).lock, 'utf8'), 10);
    return pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, { cluster: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } }, usage);
  const globals = await resolveGlobals(values, io);
  const clusters = listClusters(globals.stateDir);
  let name = values.cluster;
  if (values.config !== undefined) {
    const { clusterNameOf } = await import('../config-source.js');
    const fromConfig = await clusterNameOf(abs(values.config, io.cwd));
    if (name !== undefined && name !== fromConfig)
      throw new UserError(`--cluster ${name} and --config (cluster "${fromConfig}") name different clusters`, { fix: 'Pass one of them.' });
    name = fromConfig;
  }
  if (!name) {
    if (clusters.length === 0) {
      if (values.json)
        throw new UserError(`No clusters in ${globals.stateDir} yet`, {
          field: '--cluster',
          fix: 'Start one with "flatcar-k3s up --config FILE".',
        });
      writeLine(io.stdout, `No clusters in ${globals.stateDir} yet. Start one with "flatcar-k3s up --config FILE".`);
      return EXIT.ok;
    }
    if (clusters.length > 1) {
      if (values.json)
        throw new UserError(`${clusters.length} clusters in ${globals.stateDir}: ${clusters.join(', ')}`, {
          field: '--cluster',
          fix: 'Name one: flatcar-k3s status --json --cluster NAME.',
        });
      writeLine(io.stdout, `Clusters in ${globals.stateDir}:`);
      for (const c of clusters) {
        const s = readState(clusterDirFor(globals.stateDir, c))!;
        writeLine(
          io.stdout,
          `  ${c.padEnd(20)} ${wasDestroyed(s) ? 'destroyed' : `last run ${s.lastRun?.status ?? 'none'}`} ${when(s.lastRun?.finishedAt ?? s.lastRun?.startedAt)}; ${counts(s)}`,
        );
      }
      writeLine(io.stdout, 'Details: flatcar-k3s status --cluster NAME');
      return EXIT.ok;
    }
    name = clusters[0]!;
  }
  const clusterDir = clusterDirFor(globals.stateDir, name);
  const state = readState(clusterDir);
  if (!state) {
    throw new UserError(`No saved state for cluster "${name}" in ${globals.stateDir}`, {
      field: '--cluster',
      fix: clusters.length
        ? `Known clusters: ${clusters.join(', ')}.`
        : 'Run "flatcar-k3s up --config FILE" first, or pass the --state-dir it used.',
    });
  }
  const run = state.lastRun;
  const live = run?.status === 'running' ? holder(clusterDir) : undefined;
  // Operator mode: is the in-cluster Stack in sync? One short read through the recorded kubeconfig.
  const operatorStep = state.steps['apps:operator'];
  const appsStack =
    operatorStep && !wasDestroyed(state)
      ? await (await import('../../pulumi/kube-read.js')).operatorStackStatus(
          state.steps['cluster:kubeconfig']?.outputs?.kubeconfigPath as string | undefined,
          operatorStep.outputs as { state?: unknown; lastUpdate?: unknown } | undefined,
        )
      : undefined;
  if (values.json) {
    const runState = run?.status === 'running' && !live ? 'cut-off' : wasDestroyed(state) ? 'destroyed' : run?.status;
    writeLine(io.stdout, JSON.stringify({ ...statusDocument(state, runState), ...(appsStack ? { appsStack } : {}) }, null, 2));
    return EXIT.ok;
  }
  writeLine(io.stdout, `Cluster ${state.cluster} (${clusterDir})`);
  if (run) {
    const status =
      run.status === 'running' && !live
        ? 'cut off (the process is gone; run "up" to resume)'
        : run.status === 'running'
          ? `running (pid ${live})`
          : run.status;
    writeLine(
      io.stdout,
      `Last run: ${status}, started ${when(run.startedAt)}${run.finishedAt ? `, ended ${when(run.finishedAt)}` : ''}${run.message ? `: ${run.message}` : ''}`,
    );
    if (wasDestroyed(state))
      writeLine(io.stdout, `Destroyed ${when(run.finishedAt)}: its VMs are gone ("up" with the same config builds it again).`);
  }
  const ids = [...(state.order ?? []), ...Object.keys(state.steps).filter((id) => !(state.order ?? []).includes(id))];
  const width = Math.max(0, ...ids.map((i) => i.length));
  for (const id of ids) {
    const r = state.steps[id];
    if (!r) {
      writeLine(io.stdout, `  ${'pending'.padEnd(8)} ${id.padEnd(width)}  ${'-'.padEnd(20)}  ${state.titles?.[id] ?? ''}`);
      continue;
    }
    const extra = r.status === 'done' && r.via === 'check' ? ' (found done)' : r.reason ? ` (${r.reason})` : '';
    writeLine(io.stdout, `  ${r.status.padEnd(8)} ${id.padEnd(width)}  ${when(r.at)}  ${r.title ?? ''}${extra}`);
    if (r.status === 'failed' && r.error) {
      writeLine(io.stdout, `      error: ${r.error.message}`);
      if (r.error.fix) writeLine(io.stdout, `      fix: ${r.error.fix}`);
    }
  }
  for (const l of nodeTableLines(statusNodes(state))) writeLine(io.stdout, l);
  if (appsStack)
    writeLine(
      io.stdout,
      `Apps (Pulumi operator, Stack pulumi-kubernetes-operator/infra-apps): ${appsStack.message}${appsStack.live ? '' : ' (not live)'}`,
    );
  if (Object.keys(state.pins).length) {
    writeLine(io.stdout, 'Pinned fingerprints:');
    for (const [k, v] of Object.entries(state.pins)) writeLine(io.stdout, `  ${k}: ${v}`);
  }
  return EXIT.ok;
}
