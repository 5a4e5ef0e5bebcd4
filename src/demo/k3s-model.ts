/**
 * The demo's k3s: a unit (re)start reads config.yaml and plays the server or agent lifecycle on the
 * world's timers, with realistic timing (reference/pve-timings.md, scaled by `speed`): a first server
 * is Ready after ~45 s, each server join takes ~40 s and etcd admits one learner at a time ("too many
 * learner members" for a concurrent join), an agent is Ready ~20 s after it starts. A join needs the
 * token from the first server's config.yaml: a wrong one fails like k3s does.
 */
import { randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { K3S_SERVER_CA_PATH } from '../k3s/token.js';
import { demoCaPem, joinRefusal } from './join-trust.js';
import { DemoCluster, binaryVersion, type DemoNode, type Unit } from './node.js';
import type { DemoWorld } from './world.js';

const KUBE_VIP_MANIFEST = '/var/lib/rancher/k3s/server/manifests/flatcar-k3s-kube-vip.yaml';

/** One start of a k3s unit: what it read at start and how it reports. */
interface UnitRun {
  w: DemoWorld;
  node: DemoNode;
  u: Unit;
  role: 'server' | 'agent';
  nodeName: string;
  token: string;
  version: string;
  serverUrl?: string;
  /** This run is still the unit's current one (not restarted, stopped or closed). */
  alive(): boolean;
  journal(level: 'info' | 'fatal' | 'error', msg: string): void;
  /** Restart=always, RestartSec=5s: the unit keeps trying, systemd shows it "activating". */
  restartLoop(msg: string): void;
}

/** (Re)start a k3s unit: reads config.yaml and plays the server/agent lifecycle on timers. */
export function startUnit(w: DemoWorld, node: DemoNode, unit: string): void {
  const u = node.unit(unit);
  const gen = ++u.generation;
  let cfg: Record<string, unknown> = {};
  try {
    cfg = (parseYaml(node.readText('/etc/rancher/k3s/config.yaml') ?? '') as Record<string, unknown>) ?? {};
  } catch {
    /* k3s fails below */
  }
  const run: UnitRun = {
    w,
    node,
    u,
    role: unit === 'k3s' ? 'server' : 'agent',
    nodeName: typeof cfg['node-name'] === 'string' ? (cfg['node-name'] as string) : node.name,
    token: typeof cfg.token === 'string' ? cfg.token : '',
    version: binaryVersion(node.fs.get('/opt/bin/k3s')?.data) ?? 'v0.0.0+k3s0',
    serverUrl: typeof cfg.server === 'string' ? cfg.server : undefined,
    alive: () => !w.closed && u.generation === gen && node.sshd !== undefined,
    journal: (level, msg) => {
      u.journal.push(
        `${new Date().toISOString()} ${node.name} k3s[${1000 + gen}]: time="${new Date().toISOString()}" level=${level} msg="${msg}"`,
      );
      if (u.journal.length > 200) u.journal.splice(0, u.journal.length - 200);
    },
    restartLoop: (msg) => {
      run.journal('fatal', msg);
      u.state = 'activating';
      w.later(w.dur(5), () => {
        if (run.alive()) attempt(run);
      });
    },
  };
  attempt(run);
}

function attempt(run: UnitRun): void {
  if (!run.alive()) return;
  run.journal('info', `Starting k3s ${run.role} ${run.version}`);
  if (!run.token) return run.restartLoop('starting kubernetes: preparing server: token is required');
  if (run.role === 'server' && !run.serverUrl) return startFirstServer(run);
  const { w, serverUrl } = run;
  const host = serverUrl ? /^https:\/\/\[?([^\]/]+?)\]?:6443\/?$/.exec(serverUrl)?.[1] : undefined;
  const cluster = host ? w.clusterAt(host) : undefined;
  if (!cluster || Date.now() < cluster.apiReadyAt) {
    return run.restartLoop(`failed to get CA certs: Get "${serverUrl}/cacerts": dial tcp ${host}:6443: connect: connection refused`);
  }
  const refused = joinRefusal(cluster, run.token);
  if (refused) return refuseToken(run, refused);
  if (run.role === 'server') return joinServer(run, cluster);
  // Agent: Type=exec, active at once; Ready once the kubelet registered and flannel is up.
  run.node.cluster = cluster;
  register(run, cluster, w.dur(cluster.nodes.get(run.nodeName)?.owner === run.node ? 10 : 20));
  run.u.state = 'active';
  run.journal('info', `Connecting to proxy url="wss://${host}:6443/v1-k3s/connect"`);
}

/** First server: a new cluster (or the one it already leads). */
function startFirstServer(run: UnitRun): void {
  const { w, node, u, nodeName } = run;
  let cluster = node.cluster && node.cluster.nodes.get(nodeName)?.owner === node ? node.cluster : undefined;
  // a restart of a member is quicker than the cluster's first start
  const startMs = cluster?.members.has(nodeName) ? w.dur(15) : w.dur(45);
  if (!cluster) {
    cluster = new DemoCluster(run.token, run.version, Date.now() + startMs * 0.7);
    w.clusters.push(cluster);
  } else if (cluster.token !== run.token) {
    return run.restartLoop('starting kubernetes: preparing server: bootstrap data already found and encrypted with different token');
  }
  cluster.addresses.add(node.address);
  if (node.fs.has(KUBE_VIP_MANIFEST)) {
    const vip = /name: address\n\s+value: (\S+)/.exec(node.readText(KUBE_VIP_MANIFEST)!)?.[1];
    if (vip) cluster.addresses.add(vip);
  }
  node.cluster = cluster;
  register(run, cluster, startMs);
  u.state = 'activating';
  run.journal('info', 'Managed etcd cluster initializing');
  const led = cluster;
  w.later(startMs * 0.7, () => {
    if (!run.alive()) return;
    writeKubeconfig(node, led);
    led.members.add(nodeName);
    u.state = 'active';
    run.journal('info', 'k3s is up and running');
  });
}

/**
 * The node's kubelet (re)registers: Ready after `readyMs`, reporting the version this run started
 * with. A restart keeps its Node object (cordon, annotations); a deleted Node comes back fresh.
 */
function register(run: UnitRun, cluster: DemoCluster, readyMs: number): void {
  const old = cluster.nodes.get(run.nodeName);
  const kept = old?.owner === run.node ? { unschedulable: old.unschedulable, annotations: old.annotations } : {};
  cluster.nodes.set(run.nodeName, {
    name: run.nodeName,
    role: run.role,
    address: run.node.address,
    startedAt: Date.now(),
    readyAt: Date.now() + readyMs,
    owner: run.node,
    version: run.version,
    ...kept,
  });
}

function refuseToken(run: UnitRun, refused: string): void {
  if (run.role !== 'agent') return run.restartLoop(refused);
  // Type=exec: systemd shows the agent "active" while it starts; it exits on the bad token a moment
  // later, then restarts after RestartSec. An installer must not take "active" for "joined".
  const { w, u } = run;
  u.state = 'active';
  w.later(Math.max(w.dur(1), 100), () => {
    if (!run.alive()) return;
    run.journal('fatal', refused);
    u.state = 'activating';
    w.later(Math.max(w.dur(5), 500), () => {
      if (run.alive()) attempt(run);
    });
  });
}

function joinServer(run: UnitRun, cluster: DemoCluster): void {
  const { w, node, u, nodeName } = run;
  if (Date.now() < cluster.learnerBusyUntil && !(cluster.nodes.get(nodeName)?.owner === node)) {
    return run.restartLoop(
      'starting kubernetes: preparing server: start managed database: joining etcd cluster: etcdserver: too many learner members in cluster',
    );
  }
  const member = cluster.members.has(nodeName) && cluster.nodes.get(nodeName)?.owner === node;
  const joinMs = member ? w.dur(15) : w.dur(40);
  if (!cluster.nodes.has(nodeName)) cluster.learnerBusyUntil = Date.now() + joinMs;
  node.cluster = cluster;
  register(run, cluster, joinMs);
  cluster.addresses.add(node.address);
  u.state = 'activating';
  run.journal('info', member ? 'Starting etcd member (already in the cluster)' : 'Adding member to etcd cluster as learner');
  w.later(joinMs, () => {
    if (!run.alive()) return;
    writeKubeconfig(node, cluster);
    cluster.members.add(nodeName);
    u.state = 'active';
    run.journal('info', member ? 'k3s is up and running' : 'etcd learner promoted to voting member; k3s is up and running');
  });
}

export function writeKubeconfig(node: DemoNode, cluster: DemoCluster): void {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  node.writeFile(K3S_SERVER_CA_PATH, demoCaPem(cluster.caData), 0o644, 'root');
  const text = [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    certificate-authority-data: ${b64(demoCaPem(cluster.caData))}`,
    '    server: https://127.0.0.1:6443',
    '  name: default',
    'contexts:',
    '- context:',
    '    cluster: default',
    '    user: default',
    '  name: default',
    'current-context: default',
    'kind: Config',
    'preferences: {}',
    'users:',
    '- name: default',
    '  user:',
    `    client-certificate-data: ${b64(`-----BEGIN CERTIFICATE-----\n${randomBytes(24).toString('base64')}\n-----END CERTIFICATE-----\n`)}`,
    `    client-key-data: ${b64(`-----BEGIN EC PRIVATE KEY-----\n${randomBytes(24).toString('base64')}\n-----END EC PRIVATE KEY-----\n`)}`,
    '',
  ].join('\n');
  if (!node.fs.has('/etc/rancher/k3s/k3s.yaml')) node.writeFile('/etc/rancher/k3s/k3s.yaml', text, 0o600, 'root');
}
