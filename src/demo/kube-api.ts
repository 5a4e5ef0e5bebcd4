/**
 * The demo cluster's Kubernetes API as flatcar-k3s uses it: the Node list (Ready, the version each
 * kubelet runs, cordon, annotations), cordon/uncordon, drain, delete, and k3s's etcd member removal
 * through the `etcd.k3s.cattle.io/remove` annotation (the member goes, then k3s marks the Node with
 * `etcd.k3s.cattle.io/removed-node-name`). Deleting a server's Node also removes its member, as k3s does.
 */
import { ETCD_REMOVE_ANNOTATION, ETCD_REMOVED_ANNOTATION, type DemoCluster, type DemoClusterNode } from './node.js';
import type { DemoWorld } from './world.js';

export function nodeList(cluster: DemoCluster) {
  const now = Date.now();
  return { apiVersion: 'v1', kind: 'List', items: [...cluster.nodes.values()].map((n) => nodeObject(cluster, n, now)) };
}

function nodeObject(cluster: DemoCluster, n: DemoClusterNode, now: number) {
  const ready = cluster.ready(n, now);
  const labels: Record<string, string> = { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' };
  if (n.role === 'server')
    Object.assign(labels, {
      'node-role.kubernetes.io/control-plane': 'true',
      'node-role.kubernetes.io/master': 'true',
      'node-role.kubernetes.io/etcd': 'true',
    });
  const osRelease = n.owner.readText('/etc/os-release') ?? '';
  const flatcar = /^VERSION=(\S+)$/m.exec(osRelease)?.[1] ?? 'unknown';
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels, annotations: { ...n.annotations } },
    spec: n.unschedulable ? { unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] } : {},
    status: {
      addresses: [
        { type: 'InternalIP', address: n.address },
        { type: 'Hostname', address: n.name },
      ],
      conditions: [
        ready
          ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
          : {
              type: 'Ready',
              status: 'False',
              reason: 'KubeletNotReady',
              message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady',
            },
      ],
      nodeInfo: { kubeletVersion: n.version, osImage: `Flatcar Container Linux by Kinvolk ${flatcar} (Oklo)`, architecture: 'amd64' },
    },
  };
}

export type KubeResult = { code: number; out: string[]; err: string[] };
const ok = (...out: string[]): KubeResult => ({ code: 0, out, err: [] });
const fail = (...err: string[]): KubeResult => ({ code: 1, out: [], err });
const notFound = (name: string) => fail(`Error from server (NotFound): nodes "${name}" not found`);

export function cordon(cluster: DemoCluster, name: string, on: boolean): KubeResult {
  const n = cluster.nodes.get(name);
  if (!n) return notFound(name);
  const was = !!n.unschedulable;
  n.unschedulable = on;
  const verb = on ? 'cordoned' : 'uncordoned';
  return ok(was === on ? `node/${name} already ${verb}` : `node/${name} ${verb}`);
}

/**
 * `kubectl drain`: cordon, then evict the node's pods. k3s runs DaemonSet pods (svclb) on every node,
 * and local-path volumes use emptyDir: without the usual flags, drain refuses as kubectl does.
 */
export async function drain(w: DemoWorld, cluster: DemoCluster, name: string, flags: string[]): Promise<KubeResult> {
  const n = cluster.nodes.get(name);
  if (!n) return notFound(name);
  n.unschedulable = true;
  if (!flags.includes('--ignore-daemonsets')) {
    return fail(
      `error: unable to drain node "${name}" due to error: cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/svclb-traefik-${name.length}x7k2`,
    );
  }
  if (n.role === 'server' && !flags.includes('--delete-emptydir-data')) {
    return fail(
      `error: unable to drain node "${name}" due to error: cannot delete Pods with local storage (use --delete-emptydir-data to override): kube-system/metrics-server-5985cbc9d7-q2x7n`,
    );
  }
  await w.sleep(w.dur(2));
  const out = [`node/${name} cordoned`];
  if (n.role === 'server')
    out.push('evicting pod kube-system/metrics-server-5985cbc9d7-q2x7n', 'pod/metrics-server-5985cbc9d7-q2x7n evicted');
  out.push(`node/${name} drained`);
  return ok(...out);
}

export function deleteNode(cluster: DemoCluster, name: string): KubeResult {
  if (!cluster.nodes.has(name)) return notFound(name);
  cluster.nodes.delete(name);
  cluster.members.delete(name);
  return ok(`node "${name}" deleted`);
}

/** `kubectl annotate node NAME k=v …`; the etcd removal annotation takes the member out shortly after. */
export function annotate(w: DemoWorld, cluster: DemoCluster, name: string, pairs: string[]): KubeResult {
  const n = cluster.nodes.get(name);
  if (!n) return notFound(name);
  n.annotations = { ...n.annotations };
  for (const p of pairs) {
    if (/^[^=]+-$/.test(p)) {
      delete n.annotations[p.slice(0, -1)];
      continue;
    }
    const i = p.indexOf('=');
    if (i <= 0) return fail(`error: invalid annotation format: ${p}`);
    n.annotations[p.slice(0, i)] = p.slice(i + 1);
  }
  if (n.role === 'server' && n.annotations[ETCD_REMOVE_ANNOTATION] === 'true' && cluster.members.has(name)) {
    w.later(w.dur(2), () => {
      const still = cluster.nodes.get(name);
      cluster.members.delete(name);
      if (still) still.annotations = { ...still.annotations, [ETCD_REMOVED_ANNOTATION]: name };
    });
  }
  return ok(`node/${name} annotated`);
}
