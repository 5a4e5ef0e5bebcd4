/**
 * node:<name>:k3s-roll: the rolling k3s upgrade of one node, when the config asks for a newer k3s than
 * the node runs: cordon, drain (DaemonSets stay, emptyDir data goes, with a timeout), put the verified
 * binary in place, restart k3s, wait until the node is Ready and reports the new version
 * (status.nodeInfo.kubeletVersion), uncordon. Servers roll one at a time (each waits for every other
 * server to be Ready first: etcd keeps its quorum), then agents in batches of cluster.upgrade.agentBatch.
 * A node running a newer k3s is reported and left alone; with the system-upgrade-controller following a
 * channel, the controller owns upgrades and this step does nothing. A failure stops the roll at this
 * node; `up` resumes it (the node is marked while it rolls, so a resumed run finishes it).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { RemoteError } from '../../src/errors.js';
import { unitName } from '../../src/k3s/install-script.js';
import { installK3sBinary } from '../../src/k3s/install.js';
import { cordon, drain, getNodes, uncordon, type KubeNode } from '../../src/k3s/kubectl.js';
import { sh } from '../../src/shell/quote.js';
import type { SshSession } from '../../src/ssh/types.js';
import type { CheckResult, RunOptions, Step, StepContext, StepServices } from '../types.js';
import { LANES, NODES_STEP, connectNode, type K3sReleaseOutputs } from './common.js';
import { readinessWatcher, type ReadinessWatcher } from './readiness.js';
import { pollUntil, recorded } from '../shared.js';
import { apiServerFor, isNewer, newerFix, rollOrder, upgradeOwner } from './upgrade.js';
import { STEP } from '../ids.js';

/** Marks a node whose roll started (cordoned by us): a resumed run finishes it and uncordons. */
export const ROLLING_ANNOTATION = 'flatcar-k3s.io/rolling-to';

export const rollStepId = (name: string) => STEP.node(name, 'k3s-roll');

/** How long a check waits for a node at the wanted version to become Ready before the roll restarts it. */
const NOT_READY_GRACE_MS = 2 * 60_000;

/**
 * A node at the wanted version but not Ready: most often one that has just joined. Wait for it (a wait on
 * the world: no --parallel place) rather than roll it; undefined when it is still not Ready after the grace.
 */
async function readyOrNot(ctx: StepContext, watcher: ReadinessWatcher, name: string): Promise<KubeNode | undefined> {
  const wait = () =>
    watcher
      .until((r) => r.get(name) === true, { signal: ctx.signal, timeoutMs: NOT_READY_GRACE_MS, what: `${name} to be Ready` })
      .then(() => watcher.nodes())
      .catch((err: unknown) => {
        if (ctx.signal.aborted) throw err;
        return undefined;
      });
  return (await (ctx.idle ? ctx.idle(wait) : wait()))?.find((n) => n.name === name);
}

/** An agent's roll: cluster.upgrade.agentBatch agents at a time (the lane); the first failure stops the others. */
function inAgentLane(ctx: StepContext, name: string, roll: () => Promise<RollOutputs>): Promise<RollOutputs> {
  const run = rollOf(ctx);
  return ctx.slot!(LANES.agentRoll, async () => {
    if (run.stoppedAt)
      throw new RemoteError(`${name} was not rolled: the roll stopped at ${run.stoppedAt}`, {
        fix: `Fix ${run.stoppedAt} (its error says how), then run "up" again: the roll resumes there.`,
      });
    try {
      return await roll();
    } catch (err) {
      if (!ctx.signal.aborted) run.stoppedAt ??= name;
      throw err;
    }
  });
}

/** The run's agent roll (the run's services identify the run): where it stopped, if it did. */
const rolls = new WeakMap<StepServices, { stoppedAt?: string }>();
function rollOf(ctx: StepContext): { stoppedAt?: string } {
  let r = rolls.get(ctx.services);
  if (!r) rolls.set(ctx.services, (r = {}));
  return r;
}

export interface RollOutputs {
  [k: string]: unknown;
  /** The binary now in /opt/bin/k3s. */
  version: string;
  /** kubeletVersion when last observed. */
  running: string;
  flatcar?: string;
  at: number;
  leftAlone?: string;
}

export function k3sRollStep(config: Config, node: PlannedNode, _options: RunOptions): Step {
  const id = rollStepId(node.name);
  const unit = unitName(node.role);
  const owner = upgradeOwner(config);
  const api = apiServerFor(config, node.name);
  const after = rollOrder(config).get(node.name) ?? [];
  const drainTimeout = config.cluster.upgrade.drainTimeoutSeconds;
  const outputs = (ctx: StepContext, me: KubeNode, version: string, leftAlone?: string): RollOutputs => ({
    version,
    running: me.kubeletVersion ?? 'unknown',
    ...(me.flatcarVersion ? { flatcar: me.flatcarVersion } : {}),
    at: ctx.services.now(),
    ...(leftAlone ? { leftAlone } : {}),
  });
  const order =
    node.role === 'server'
      ? 'servers one at a time'
      : `agents ${config.cluster.upgrade.agentBatch === 1 ? 'one at a time' : `in batches of ${config.cluster.upgrade.agentBatch}`}`;
  return {
    id,
    title: 'Roll k3s to the wanted version',
    group: node.name,
    needs: [...new Set([NODES_STEP.k3s(node.name), NODES_STEP.k3s(api.name)])].concat(NODES_STEP.k3sRelease, after.map(rollStepId)),
    inputs: { version: config.cluster.k3sVersion, owner: owner.by },
    describe: (ctx) => {
      if (owner.by === 'controller') return `Leave k3s on ${node.name} to the system-upgrade-controller (it follows ${owner.channel})`;
      const want = ctx.outputs<K3sReleaseOutputs>(NODES_STEP.k3sRelease)?.version ?? config.cluster.k3sVersion;
      const seen = (ctx.outputs<{ observed?: Record<string, { k3s?: string }> }>(STEP.clusterReady)?.observed ?? {})[node.name]?.k3s;
      if (!seen || seen === want) return `Keep k3s ${want} running on ${node.name} (a newer version in the config rolls here: ${order})`;
      if (isNewer(seen, want)) return `Leave ${node.name} at k3s ${seen}: newer than ${want}, never downgraded`;
      return `Roll ${node.name} from k3s ${seen} to ${want} (${order}): cordon, drain, put the verified binary in place, restart ${unit}, wait Ready at ${want}, uncordon`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const rel = recorded<K3sReleaseOutputs>(ctx, NODES_STEP.k3sRelease, 'k3s release');
      // the run's one watcher on the API server: every node's check shares its polls
      const watcher = readinessWatcher(ctx, api.name);
      let me = (await watcher.nodes())?.find((n) => n.name === node.name);
      if (!me?.kubeletVersion) return { done: false, reason: `${node.name} is not in the cluster's Node list yet` };
      if (owner.by === 'controller')
        return {
          done: true,
          outputs: outputs(ctx, me, me.kubeletVersion),
          reason: `the system-upgrade-controller owns k3s upgrades (${owner.channel})`,
        };
      if (isNewer(me.kubeletVersion, rel.version)) {
        const fix = newerFix(node.name, me.kubeletVersion, rel.version);
        ctx.log(fix, 'warn');
        return { done: true, outputs: outputs(ctx, me, me.kubeletVersion, fix), reason: `runs newer k3s ${me.kubeletVersion}: left alone` };
      }
      if (me.kubeletVersion !== rel.version)
        return { done: false, reason: `runs k3s ${me.kubeletVersion}, the config asks for ${rel.version}` };
      if (me.annotations[ROLLING_ANNOTATION]) return { done: false, reason: 'its roll was cut short: finishing it (uncordon)' };
      if (!me.ready) {
        me = await readyOrNot(ctx, watcher, node.name);
        if (!me?.ready || me.kubeletVersion !== rel.version)
          return { done: false, reason: `${node.name} is not Ready after ${NOT_READY_GRACE_MS / 60_000} min: restarting its k3s` };
      }
      return { done: true, outputs: outputs(ctx, me, rel.version), reason: `runs k3s ${rel.version}` };
    },
    run: (ctx: StepContext): Promise<RollOutputs> =>
      node.role === 'agent' && ctx.slot ? inAgentLane(ctx, node.name, () => rollNode(ctx)) : rollNode(ctx),
  };

  async function rollNode(ctx: StepContext): Promise<RollOutputs> {
    const rel = recorded<K3sReleaseOutputs>(ctx, NODES_STEP.k3sRelease, 'k3s release');
    return withApi(ctx, async (apiS) => {
      const before = await pollUntil(ctx, `the k3s API on ${api.name}`, () => findNode(apiS, ctx.signal).catch(() => undefined), {
        timeoutMs: 10 * 60_000,
        fix: `Check \`journalctl -u k3s\` on ${api.name} and that ${node.name} is in the cluster, then run "up" again.`,
      });
      if (before?.kubeletVersion && isNewer(before.kubeletVersion, rel.version))
        return outputs(ctx, before, before.kubeletVersion, newerFix(node.name, before.kubeletVersion, rel.version));
      if (node.role === 'server') await othersReady(ctx, apiS);
      ctx.progress(`cordoning and draining ${node.name}`);
      await apiS.run(sh`sudo /opt/bin/k3s kubectl annotate node ${node.name} ${`${ROLLING_ANNOTATION}=${rel.version}`} --overwrite`, {
        signal: ctx.signal,
      });
      await cordon(apiS, node.name, ctx.signal);
      await drain(apiS, node.name, drainTimeout, ctx.signal);
      const s = await connectNode(ctx, node.name);
      try {
        ctx.progress(`putting k3s ${rel.version} in place on ${node.name}`);
        await installK3sBinary({
          session: s,
          label: node.name,
          version: rel.version,
          sha256: rel.sha256,
          url: rel.downloadUrl,
          ...(config.cluster.airgap ? { binary: readFileSync(rel.binaryPath!) } : {}),
          signal: ctx.signal,
          onLine: (line, stream) => (/^RESULT /.test(line) ? undefined : ctx.log(line, stream === 'stderr' ? 'warn' : 'info')),
        });
        ctx.progress(`restarting ${unit} on ${node.name}`);
        await s.run(sh`sudo systemctl restart ${unit}`, { signal: ctx.signal });
      } finally {
        await s.close().catch(() => undefined);
      }
      const me = await pollUntil(
        ctx,
        `${node.name} to be Ready at k3s ${rel.version}`,
        async () => {
          const n = await findNode(apiS, ctx.signal).catch(() => undefined);
          return n?.ready && n.kubeletVersion === rel.version ? n : undefined;
        },
        {
          timeoutMs: 10 * 60_000,
          fix: `Look at \`journalctl -u ${unit}\` on ${node.name} (ssh core@<address>); fix it, then run "up" again: the roll resumes at ${node.name}.`,
        },
      );
      await uncordon(apiS, node.name, ctx.signal);
      await apiS.run(sh`sudo /opt/bin/k3s kubectl annotate node ${node.name} ${`${ROLLING_ANNOTATION}-`}`, { signal: ctx.signal });
      ctx.log(`${node.name} runs k3s ${rel.version} (was ${before?.kubeletVersion ?? 'unknown'}) and is uncordoned`);
      return outputs(ctx, me, rel.version);
    });
  }

  async function withApi<T>(ctx: StepContext, fn: (s: SshSession) => Promise<T>): Promise<T> {
    const s = await connectNode(ctx, api.name);
    try {
      return await fn(s);
    } finally {
      await s.close().catch(() => undefined);
    }
  }

  async function findNode(s: SshSession, signal: AbortSignal): Promise<KubeNode | undefined> {
    const list = await getNodes(s, signal);
    if (!list)
      throw new RemoteError(`The k3s API on ${api.name} does not answer`, {
        fix: `Check \`journalctl -u k3s\` on ${api.name}, then run "up" again.`,
      });
    return list.find((n) => n.name === node.name);
  }

  /** Before a server restarts, every other server is Ready: never two servers down at once. */
  async function othersReady(ctx: StepContext, apiS: SshSession): Promise<void> {
    await pollUntil(
      ctx,
      'every other server to be Ready',
      async () => {
        const list = await getNodes(apiS, ctx.signal).catch(() => undefined);
        const servers = (list ?? []).filter((n) => n.controlPlane && n.name !== node.name);
        return list && servers.every((n) => n.ready) ? true : undefined;
      },
      { timeoutMs: 10 * 60_000, fix: 'A server is not Ready: fix it first (journalctl -u k3s on it), then run "up" again.' },
    );
  }
}
