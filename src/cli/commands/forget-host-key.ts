/**
 * `forget-host-key NAME [--cluster C]`: drop a pinned SSH host key (or TLS fingerprint) from a
 * cluster's state, for when the user re-created a VM or the PVE host on purpose. The next `up`
 * pins the key it then finds. Takes the cluster lock so a running `up` cannot race it.
 */
import { EXIT, UserError } from '../../errors.js';
import { GLOBAL_USAGE, UsageError, parseCommandArgs, resolveGlobals } from '../args.js';
import { clusterDirFor } from '../../store/layout.js';
import { writeLine, type CliIo } from '../io.js';

export const name = 'forget-host-key';
export const summary = 'forget a pinned SSH host key (a node you re-created, or the PVE host)';
export const usage = `Usage: flatcar-k3s forget-host-key NAME [--cluster NAME]

NAME is a node (e.g. homelab-server-1) or a pin key as "status" lists it (e.g. pve-ssh:pve1,
proxmox.tls, or k3s.ca: the cluster CA hash nodes join with). The pin is removed from the cluster's
state; the next "up" records the key it finds then. Do this only when you know why the key changed
(you re-created the VM or re-installed the host).

Options:
  --cluster NAME    the cluster (needed when the state dir holds several)

${GLOBAL_USAGE}`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { cluster: { type: 'string' } }, usage, { positionals: 1 });
  if (positionals.length !== 1) throw new UsageError('forget-host-key takes one NAME: a node name or a pin key', usage);
  const target = positionals[0]!;
  const globals = await resolveGlobals(values, io);
  const [{ listClusters }, { readState, StateStore }, { acquireLock }] = await Promise.all([
    import('./status.js'),
    import('../../runner/state.js'),
    import('../../runner/lock.js'),
  ]);
  const clusters = listClusters(globals.stateDir);
  const cluster = values.cluster ?? (clusters.length === 1 ? clusters[0] : undefined);
  if (!cluster || !clusters.includes(cluster)) {
    throw new UserError(
      cluster
        ? `No saved state for cluster "${cluster}" in ${globals.stateDir}`
        : `Which cluster? ${clusters.length ? `The state dir holds ${clusters.join(', ')}` : `No clusters in ${globals.stateDir}`}`,
      {
        field: '--cluster',
        fix: clusters.length ? `Pass --cluster with one of: ${clusters.join(', ')}.` : 'Pass the --state-dir the run used.',
      },
    );
  }
  const clusterDir = clusterDirFor(globals.stateDir, cluster);
  const lock = acquireLock(clusterDir, { warn: (l) => writeLine(io.stderr, l) });
  try {
    const store = new StateStore(clusterDir, readState(clusterDir)!);
    const key = target.includes(':') || target === 'proxmox.tls' || target === 'k3s.ca' ? target : `node-ssh:${target}`;
    const sshStepId = key.startsWith('node-ssh:') ? `node:${key.slice('node-ssh:'.length)}:ssh` : undefined;
    const state = store.get();
    const pinned = state.pins[key];
    const stepHasKey = sshStepId !== undefined && typeof state.steps[sshStepId]?.outputs?.hostKey === 'string';
    if (pinned === undefined && !stepHasKey) {
      const known = Object.keys(state.pins);
      throw new UserError(`Cluster ${cluster} has no pinned key "${key}"`, {
        field: 'NAME',
        fix: known.length ? `Pinned keys: ${known.join(', ')}.` : 'Nothing is pinned yet.',
      });
    }
    store.update((s) => {
      delete s.pins[key];
      const rec = sshStepId ? s.steps[sshStepId] : undefined;
      if (rec) {
        // The SSH step recorded the key too: re-open it so the next `up` meets the node afresh.
        if (rec.outputs) delete rec.outputs.hostKey;
        rec.status = 'pending';
        rec.via = undefined;
        rec.reason = 'host key forgotten by the user';
      }
    });
    writeLine(io.stdout, `Forgot ${key}${pinned ? ` (was ${pinned})` : ''} for cluster ${cluster}. The next "up" pins the key it finds.`);
    return EXIT.ok;
  } finally {
    lock.release();
  }
}
