/**
 * node:<name>:k3s: install k3s on the node with our own installer (src/k3s/node/install-k3s.sh, see
 * README "Nodes and k3s" for why not get.k3s.io): upload the script, the node's config.yaml (0600,
 * holds the token) and, on servers with a VIP, the kube-vip manifest; air-gapped, the verified binary.
 * The token travels only inside that 0600 file: never on a command line, in a log or in the state.
 * Join trust: once the first server is up, the sha256 of its cluster CA is pinned in the state
 * (`k3s.ca`), and every other node gets k3s's secure token `K10<hash>::server:<secret>`, so it refuses
 * to join (before sending the secret) any server whose CA differs.
 *
 * Order: the first server (cluster-init when HA) first; other servers join one at a time (a slot of the
 * lane 'k3s-server-join' from starting k3s to Ready: etcd admits one learner at a time; their checks and
 * uploads run meanwhile) and their step ends only once the node is Ready; agents join in parallel once the first server's API is up (its step ends then; cluster:ready
 * waits for every node, the first server too, to be Ready).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { RemoteError, UserError } from '../../src/errors.js';
import { installedK3s, isNewer } from './upgrade.js';
import { nodeK3sConfigYaml, K3S_CONFIG_PATH, K3S_MANIFESTS_DIR } from '../../src/k3s/config.js';
import { kubeVipManifest, KUBE_VIP_MANIFEST_NAME } from '../../src/k3s/kube-vip.js';
import { unitName } from '../../src/k3s/install-script.js';
import { runStagedK3sInstall, stageK3sInstall } from '../../src/k3s/install.js';
import { getNodes, readNodes } from '../../src/k3s/kubectl.js';
import { sha256Hex } from '../../src/k3s/release.js';
import { sh } from '../../src/shell/quote.js';
import { K3S_SERVER_CA_PATH, PIN_K3S_CA, isCaHash, secureToken } from '../../src/k3s/token.js';
import type { SshSession } from '../../src/ssh/types.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { readinessWatcher, type ReadinessWatcher } from './readiness.js';
import {
  LANES,
  NODES_STEP,
  connectNode,
  firstServer,
  withNode,
  type K3sReleaseOutputs,
  type NodeK3sOutputs,
  type NodeSshOutputs,
} from './common.js';
import { pollUntil, recorded } from '../shared.js';

export const K3S_TOKEN_SECRET = 'k3sToken';

/** k3s's words when the server's CA does not match the hash in a secure token. */
const CA_MISMATCH = /token CA hash does not match/;

/** Messages after which k3s will never succeed by retrying: stop and say so. */
const FATAL_FOR_GOOD =
  /token CA hash does not match|failed to validate token|invalid token|bootstrap data already found and encrypted with different token|token is required/;

export interface NodeFiles {
  config: string;
  manifests: Array<{ name: string; text: string }>;
}

/**
 * The token a node is given: the bare secret for the first server (it creates the cluster CA), k3s's
 * secure form with the pinned CA hash for every other node.
 */
export function joinToken(ctx: StepContext, config: Config, node: PlannedNode, secret: string): string {
  if (node.name === firstServer(config).name) return secret;
  const caHash = ctx.services.pins.get(PIN_K3S_CA);
  if (!caHash || !isCaHash(caHash)) {
    throw new RemoteError(`The cluster CA of ${firstServer(config).name} is not pinned yet, so ${node.name} cannot join it safely`, {
      fix: `Run "up" again: the first server's step reads its CA (${K3S_SERVER_CA_PATH}) and pins it before any node joins.`,
    });
  }
  return secureToken(caHash, secret);
}

/**
 * Pin the first server's cluster CA hash, or check it against the pin: a different CA means another
 * cluster answers there (re-created server, or an impostor), and no node may be sent the token.
 */
async function pinClusterCa(ctx: StepContext, s: SshSession, node: PlannedNode): Promise<string> {
  const r = await s.exec(sh`sudo sha256sum ${K3S_SERVER_CA_PATH}`, { signal: ctx.signal });
  const hash = r.code === 0 ? (r.stdout.split(/\s+/)[0] ?? '') : '';
  if (!isCaHash(hash)) {
    throw new RemoteError(
      `Cannot read the cluster CA of ${node.name} (${K3S_SERVER_CA_PATH}): ${(r.stderr || r.stdout).trim().slice(0, 200) || `exit ${r.code}`}`,
      {
        fix: `Check k3s on ${node.name} (sudo journalctl -u k3s) and run again.`,
      },
    );
  }
  const pinned = ctx.services.pins.get(PIN_K3S_CA);
  if (!pinned) {
    ctx.services.pins.set(PIN_K3S_CA, hash);
    ctx.log(`Pinned the cluster CA of ${node.name} (sha256 ${hash}): nodes join with k3s's secure token`);
  } else if (pinned !== hash) {
    throw new RemoteError(
      `The cluster CA on ${node.name} changed: pinned sha256 ${pinned}, now ${hash}. No node is given the token for it.`,
      {
        fix:
          `If ${node.name} was re-created on purpose (a new cluster), run \`flatcar-k3s forget-host-key ${PIN_K3S_CA}\` and then "up"; ` +
          'otherwise find out what answers at its address before going on.',
      },
    );
  }
  return hash;
}

/** What the node should have: its config.yaml and (servers with a VIP) the kube-vip manifest. */
export function nodeFiles(ctx: StepContext, config: Config, node: PlannedNode, secret: string): NodeFiles {
  const own = recorded<NodeSshOutputs>(ctx, NODES_STEP.ssh(node.name), 'address');
  const first = firstServer(config);
  const token = joinToken(ctx, config, node, secret);
  const firstAddress =
    first.name === node.name ? own.address : recorded<NodeSshOutputs>(ctx, NODES_STEP.ssh(first.name), 'address').address;
  const text = nodeK3sConfigYaml({ config, node, address: own.address, token, firstServerAddress: firstAddress });
  const manifests =
    node.role === 'server' && config.nodes.vip
      ? [{ name: KUBE_VIP_MANIFEST_NAME, text: kubeVipManifest({ vip: config.nodes.vip, interface: config.nodes.vipInterface }) }]
      : [];
  return { config: text, manifests };
}

export function k3sStep(config: Config, node: PlannedNode, _options: RunOptions): Step {
  const id = NODES_STEP.k3s(node.name);
  const first = firstServer(config);
  const isFirst = node.name === first.name;
  const unit = unitName(node.role);
  const c = config.cluster;
  return {
    id,
    title: node.role === 'server' ? (isFirst ? 'Install k3s (first server)' : 'Join k3s as a server') : 'Join k3s as an agent',
    group: node.name,
    needs: [
      NODES_STEP.ssh(node.name),
      NODES_STEP.k3sRelease,
      NODES_STEP.k3sBinary(node.name),
      ...(isFirst ? [] : [NODES_STEP.k3s(first.name), NODES_STEP.ssh(first.name)]),
    ],
    inputs: {
      role: node.role,
      version: c.k3sVersion,
      clusterCidr: c.clusterCidr,
      serviceCidr: c.serviceCidr,
      secretsEncryption: c.secretsEncryption,
      disable: c.disable,
      airgap: c.airgap,
      vip: config.nodes.vip,
      vipInterface: config.nodes.vipInterface,
      labels: node.labels,
      taints: node.taints,
      ha: config.nodes.servers.count > 1,
    },
    describe: (ctx) => {
      const v = ctx.outputs<K3sReleaseOutputs>(NODES_STEP.k3sRelease)?.version ?? c.k3sVersion;
      const target = config.nodes.vip ?? first.name;
      if (isFirst)
        return `Install k3s ${v} on ${node.name}${config.nodes.servers.count > 1 || config.nodes.vip ? ' with embedded etcd (cluster-init)' : ''}${config.nodes.vip ? ` and kube-vip for ${config.nodes.vip}` : ''}`;
      return `Install k3s ${v} on ${node.name} and join ${target} as ${node.role === 'server' ? 'a server (one join at a time)' : 'an agent'}`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const token = ctx.services.secrets.get(K3S_TOKEN_SECRET);
      if (!token) return { done: false, reason: 'no cluster token yet' };
      const rel = recorded<K3sReleaseOutputs>(ctx, NODES_STEP.k3sRelease, 'k3s release');
      if (!isFirst && !ctx.services.pins.get(PIN_K3S_CA)) return { done: false, reason: 'the cluster CA is not pinned yet' };
      const files = nodeFiles(ctx, config, node, token);
      return withNode(ctx, node.name, async (s) => {
        // Independent reads: one channel each, all at once.
        const sum = (r: { code: number; stdout: string }) => (r.code === 0 ? r.stdout.split(/\s+/)[0] : undefined);
        const [state, bin, cfg, ...mans] = await Promise.all([
          s.exec(sh`systemctl is-active ${unit}`, { signal: ctx.signal }),
          s.exec('sha256sum /opt/bin/k3s', { signal: ctx.signal }),
          s.exec(sh`sudo sha256sum ${K3S_CONFIG_PATH}`, { signal: ctx.signal }),
          ...files.manifests.map((m) => s.exec(sh`sudo sha256sum ${`${K3S_MANIFESTS_DIR}/${m.name}`}`, { signal: ctx.signal })),
        ]);
        const st = state!.stdout.trim();
        if (st !== 'active') return { done: false, reason: `${unit} is ${st || 'not installed'}` };
        // Another k3s binary under a running unit is the rolling upgrade's (k3s-roll) to replace.
        if (!sum(bin!)) return { done: false, reason: '/opt/bin/k3s is missing' };
        if (sum(cfg!) !== sha256Hex(files.config)) return { done: false, reason: `${K3S_CONFIG_PATH} differs from the config` };
        const stale = files.manifests.find((m, i) => sum(mans[i]!) !== sha256Hex(m.text));
        if (stale) return { done: false, reason: `${stale.name} differs` };
        if (node.role === 'server') {
          const nodes = await readNodes(s, ctx.signal);
          // The first server is done once its API lists it (joins are accepted then; cluster:ready waits for
          // Ready); a joining server once it is Ready (etcd admits the next learner only then).
          if (isFirst ? !nodes?.has(node.name) : !nodes?.get(node.name))
            return { done: false, reason: `${node.name} is not ${isFirst ? 'serving the API' : 'Ready in the cluster'} yet` };
          if (isFirst) await pinClusterCa(ctx, s, node);
        } else if (!(await readinessWatcher(ctx, first.name).read())?.has(node.name)) {
          return { done: false, reason: `${first.name} does not list ${node.name} in the cluster` };
        }
        return { done: true, outputs: outputs(ctx, rel, files), reason: `k3s ${rel.version} is active with the wanted config` };
      });
    },
    async run(ctx: StepContext): Promise<NodeK3sOutputs> {
      const token = ctx.services.secrets.getOrCreate(K3S_TOKEN_SECRET, () => randomBytes(32).toString('hex'));
      const rel = recorded<K3sReleaseOutputs>(ctx, NODES_STEP.k3sRelease, 'k3s release');
      const files = nodeFiles(ctx, config, node, token);
      await withNode(ctx, node.name, async (s) => {
        const have = await installedK3s(s, ctx.signal);
        if (isNewer(have, rel.version)) {
          throw new UserError(`${node.name} has k3s ${have}, newer than ${rel.version}; flatcar-k3s never downgrades`, {
            field: 'cluster.k3sVersion',
            fix: `Set cluster.k3sVersion: ${have}.`,
          });
        }
        ctx.progress(`installing k3s ${rel.version}`);
        const install = {
          session: s,
          label: node.name,
          role: node.role,
          version: rel.version,
          sha256: rel.sha256,
          url: rel.downloadUrl,
          ...(c.airgap ? { binary: readFileSync(rel.binaryPath!) } : {}),
          config: files.config,
          manifests: files.manifests,
          signal: ctx.signal,
          onLine: (line: string, stream: 'stdout' | 'stderr') =>
            /^RESULT /.test(line) ? undefined : ctx.log(line, stream === 'stderr' ? 'warn' : 'info'),
        };
        // Staged while another server may still be joining; the join lane (etcd admits one learner at a
        // time) is held only from starting k3s to this server being Ready.
        const staged = await stageK3sInstall(install);
        const start = async () => {
          ctx.progress(`starting k3s ${rel.version}${node.role === 'server' && !isFirst ? ' (the only server joining now)' : ''}`);
          const result = await runStagedK3sInstall(install, staged);
          if (result === 'unchanged') ctx.log(`k3s ${rel.version} was already installed on ${node.name}; waiting for it`);
          await startedK3s(result);
        };
        await (node.role === 'server' && !isFirst && ctx.slot ? ctx.slot(LANES.serverJoin, start) : start());
        if (isFirst) await pinClusterCa(ctx, s, node);
        if (isFirst && config.nodes.vip) await waitForVip(ctx, s, config.nodes.vip);

        /** After the install script: wait for k3s as its role needs (the cluster lists an agent; a server is Ready). */
        async function startedK3s(result: 'installed' | 'unchanged'): Promise<void> {
          if (node.role === 'agent') {
            // An agent's unit (Type=exec) is "active" before it has talked to a server: done means the
            // cluster lists the node, as the first server sees it.
            const watcher = readinessWatcher(ctx, first.name);
            if (result === 'unchanged' && !(await watcher.read())?.has(node.name)) {
              // Installed and running, yet unknown to the cluster (its Node object was deleted): the
              // kubelet registers again when the agent restarts.
              ctx.log(`${node.name} runs ${unit} but ${first.name} does not list it: restarting ${unit}`, 'warn');
              await s.run(sh`sudo systemctl restart ${unit}`, { signal: ctx.signal });
            }
            await waitForK3s(ctx, s, node, unit, { watcher, server: first.name });
          } else await waitForK3s(ctx, s, node, unit, undefined, isFirst);
        }
      });
      const joined = config.nodes.vip ?? first.name;
      ctx.log(
        `k3s ${rel.version} ${node.role === 'server' ? (isFirst ? 'server is up' : `server joined ${joined}`) : `agent joined ${joined}`} on ${node.name}`,
      );
      return outputs(ctx, rel, files);
    },
  };

  function outputs(ctx: StepContext, rel: K3sReleaseOutputs, files: NodeFiles): NodeK3sOutputs {
    const address = recorded<NodeSshOutputs>(ctx, NODES_STEP.ssh(node.name), 'address').address;
    return { role: node.role, version: rel.version, unit, configSha256: sha256Hex(files.config), address };
  }
}

/**
 * Servers: until the node is Ready in its own API. Agents: until the unit runs, then until the first
 * server lists the node (the run's one readiness watcher). Stops on fatal token errors in the unit's journal.
 */
async function waitForK3s(
  ctx: StepContext,
  s: SshSession,
  node: PlannedNode,
  unit: string,
  agent?: { watcher: ReadinessWatcher; server: string },
  /** The first server: until its API answers and lists it (not Ready: the joins need only the API). */
  apiOnly = false,
): Promise<void> {
  let probes = 0;
  const journal = async () => (await s.exec(sh`sudo journalctl -u ${unit} -n 20 --no-pager`, { signal: ctx.signal })).stdout;
  const fatalCheck = async () => {
    const j = await journal();
    const fatal = j
      .split('\n')
      .reverse()
      .find((l) => FATAL_FOR_GOOD.test(l));
    if (fatal && CA_MISMATCH.test(fatal)) {
      throw new RemoteError(
        `k3s on ${node.name} refused to join: the server it reached does not hold the cluster CA pinned for this cluster`,
        {
          detail: j.trim().split('\n').slice(-8).join('\n'),
          fix:
            "Another machine answers at the first server's (or the VIP's) address, or the first server was re-created: check what runs there. " +
            `The pinned CA hash is "${PIN_K3S_CA}" in \`flatcar-k3s status\`; only \`flatcar-k3s forget-host-key ${PIN_K3S_CA}\` clears it.`,
        },
      );
    }
    if (fatal) {
      throw new RemoteError(`k3s on ${node.name} refuses the cluster token: ${/msg="([^"]*)"/.exec(fatal)?.[1] ?? fatal}`, {
        detail: j.trim().split('\n').slice(-8).join('\n'),
        fix: "The cluster was created with another token than the one in this cluster's secrets file (restored or replaced state?). Put the original secrets file back (its k3sToken is /var/lib/rancher/k3s/server/token on the first server), then run again.",
      });
    }
  };
  const fix = `Look at \`sudo journalctl -u ${unit}\` on ${node.name}; run again once the cause is fixed (the install resumes).`;
  await pollUntil(
    ctx,
    node.role === 'server'
      ? apiOnly
        ? `the Kubernetes API on ${node.name}`
        : `${node.name} to be Ready in Kubernetes`
      : `${unit} to run on ${node.name}`,
    async () => {
      probes++;
      const state = (await s.exec(sh`systemctl is-active ${unit}`, { signal: ctx.signal })).stdout.trim();
      if (state === 'active') {
        if (agent) return true;
        const nodes = await readNodes(s, ctx.signal);
        if (apiOnly ? nodes?.has(node.name) : nodes?.get(node.name)) return true;
      }
      // A unit that restarts says why in its journal.
      if (probes % 4 === 0 && state !== 'active') await fatalCheck();
      return undefined;
    },
    { timeoutMs: node.role === 'server' ? 15 * 60_000 : 10 * 60_000, fix, onTimeout: journal },
  );
  if (!agent) return;
  // An agent that runs but cannot join (a wrong token) says so in its journal: look now and then.
  const since = ctx.services.now();
  let looked = since;
  await agent.watcher.until((nodes) => nodes.has(node.name), {
    signal: ctx.signal,
    timeoutMs: 10 * 60_000,
    what: `${agent.server} to list ${node.name} in the cluster`,
    fix,
    onTimeout: journal,
    onTick: async () => {
      const now = ctx.services.now();
      if (now - looked < Math.max(250, (now - since) * 0.1)) return;
      looked = now;
      await fatalCheck();
    },
  });
}

/**
 * The first server is up; the VIP answers once kube-vip (deployed from the manifests directory) has
 * pulled its image and won the leader election. Joins go to the VIP, so wait for it here, once.
 */
async function waitForVip(ctx: StepContext, s: SshSession, vip: string): Promise<void> {
  const url = `https://${vip}:6443/ping`;
  await pollUntil(
    ctx,
    `the control-plane VIP ${vip} (kube-vip) to answer`,
    async () => ((await s.exec(sh`curl -sk --max-time 3 ${url}`, { signal: ctx.signal })).code === 0 ? true : undefined),
    {
      timeoutMs: 10 * 60_000,
      fix: `Check kube-vip on the first server (sudo /opt/bin/k3s kubectl -n kube-system get pods -l app.kubernetes.io/name=kube-vip-ds) and that ${vip} is free on the node network and nodes.vipInterface names the node's interface.`,
      onTimeout: async () => (await s.exec('sudo /opt/bin/k3s kubectl -n kube-system get pods -o wide', { signal: ctx.signal })).stdout,
    },
  );
  ctx.log(`The control-plane VIP ${vip} answers`);
}
