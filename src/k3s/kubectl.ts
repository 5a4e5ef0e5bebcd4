/**
 * The Kubernetes API as flatcar-k3s uses it, through `sudo /opt/bin/k3s kubectl` on a server over SSH
 * (no client library, no kubeconfig on this machine needed): the Node list (Ready, the version each
 * kubelet runs, the Flatcar release, cordon), cordon/uncordon, drain, delete, and k3s's etcd member
 * removal annotation. Every name goes through the shared quoting helper.
 */
import { RemoteError } from '../errors.js';
import { sh } from '../shell/quote.js';
import type { SshSession } from '../ssh/types.js';

/** k3s takes a server out of etcd (without deleting its Node) when this annotation is "true". */
export const ETCD_REMOVE_ANNOTATION = 'etcd.k3s.cattle.io/remove';
/** k3s sets this once the member is gone. */
export const ETCD_REMOVED_ANNOTATION = 'etcd.k3s.cattle.io/removed-node-name';

export interface KubeNode {
  name: string;
  ready: boolean;
  /** status.nodeInfo.kubeletVersion: the k3s version the node runs, e.g. "v1.33.4+k3s1". */
  kubeletVersion?: string;
  /** From status.nodeInfo.osImage ("Flatcar Container Linux by Kinvolk 4459.2.1 (Oklo)"). */
  flatcarVersion?: string;
  unschedulable: boolean;
  controlPlane: boolean;
  annotations: Record<string, string>;
}

interface NodeItem {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: { conditions?: Array<{ type: string; status: string }>; nodeInfo?: { kubeletVersion?: string; osImage?: string } };
}

const KUBECTL = 'sudo /opt/bin/k3s kubectl';

/** The Node list as `server` sees it; undefined while its API does not answer. */
export async function getNodes(s: SshSession, signal?: AbortSignal): Promise<KubeNode[] | undefined> {
  const r = await s.exec(`${KUBECTL} get nodes -o json`, { signal, timeoutMs: 60_000 });
  if (r.code !== 0) return undefined;
  let list: { items?: NodeItem[] };
  try {
    list = JSON.parse(r.stdout) as { items?: NodeItem[] };
  } catch {
    return undefined;
  }
  return (list.items ?? []).map((i) => ({
    name: i.metadata.name,
    ready: !!i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    kubeletVersion: i.status?.nodeInfo?.kubeletVersion,
    flatcarVersion: /Flatcar Container Linux[^\d]*(\d+\.\d+\.\d+)/.exec(i.status?.nodeInfo?.osImage ?? '')?.[1],
    unschedulable: !!i.spec?.unschedulable,
    controlPlane: i.metadata.labels?.['node-role.kubernetes.io/control-plane'] === 'true',
    annotations: i.metadata.annotations ?? {},
  }));
}

async function kubectl(s: SshSession, command: string, what: string, signal?: AbortSignal, timeoutMs = 60_000): Promise<string> {
  const r = await s.exec(`${KUBECTL} ${command}`, { signal, timeoutMs });
  if (r.code !== 0) {
    throw new RemoteError(`${what} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ') || r.stdout.trim()}`, {
      fix: 'Look at the cluster with kubectl (the kubeconfig flatcar-k3s wrote), fix what it reports, then run "up" again: it resumes here.',
    });
  }
  return r.stdout;
}

export const cordon = (s: SshSession, node: string, signal?: AbortSignal) =>
  kubectl(s, sh`cordon ${node}`, `kubectl cordon ${node}`, signal);
export const uncordon = (s: SshSession, node: string, signal?: AbortSignal) =>
  kubectl(s, sh`uncordon ${node}`, `kubectl uncordon ${node}`, signal);

/** Evict the node's pods (DaemonSet pods stay; emptyDir data goes), giving up after `timeoutSeconds`. */
export function drain(s: SshSession, node: string, timeoutSeconds: number, signal?: AbortSignal): Promise<string> {
  const cmd = sh`drain ${node} --ignore-daemonsets --delete-emptydir-data ${`--timeout=${timeoutSeconds}s`}`;
  return kubectl(s, cmd, `kubectl drain ${node} (timeout ${timeoutSeconds}s)`, signal, (timeoutSeconds + 60) * 1000);
}

export const deleteNode = (s: SshSession, node: string, signal?: AbortSignal) =>
  kubectl(s, sh`delete node ${node}`, `kubectl delete node ${node}`, signal);

/** Ask k3s to remove the server's etcd member (the Node stays until deleted). */
export const removeEtcdMember = (s: SshSession, node: string, signal?: AbortSignal) =>
  kubectl(s, sh`annotate node ${node} ${`${ETCD_REMOVE_ANNOTATION}=true`} --overwrite`, `removing ${node} from etcd`, signal);

/** Compare k3s versions "v1.33.4+k3s1": <0 when a is older. */
export function compareK3sVersions(a: string, b: string): number {
  const parts = (v: string) => (/^v?(\d+)\.(\d+)\.(\d+)(?:\+k3s(\d+))?/.exec(v) ?? []).slice(1).map((x) => Number(x ?? 0));
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 4; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** Each node's Ready condition, by name; undefined while the API does not answer. */
export async function readNodes(s: SshSession, signal?: AbortSignal): Promise<Map<string, boolean> | undefined> {
  return readinessOf(await getNodes(s, signal));
}

/** Node name → Ready, from a Node list (undefined while the API does not answer). */
export function readinessOf(nodes: KubeNode[] | undefined): Map<string, boolean> | undefined {
  return nodes && new Map(nodes.map((n) => [n.name, n.ready]));
}
