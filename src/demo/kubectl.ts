/**
 * The demo's `k3s` command: `k3s --version` of the binary in /opt/bin, and `k3s kubectl` against the
 * node's cluster (the Kubernetes API as the installer uses it: the Node list).
 */
import { binaryVersion, type DemoCluster, type DemoNode, type ExecIo } from './node.js';

export function runK3s(node: DemoNode, args: string[], root: boolean, io: ExecIo): number {
  if (!node.fs.has('/opt/bin/k3s')) {
    io.err('bash: /opt/bin/k3s: No such file or directory');
    return 127;
  }
  const version = binaryVersion(node.fs.get('/opt/bin/k3s')!.data) ?? 'unknown';
  if (args[0] === '--version' || args[0] === 'version' || args[0] === '-v') {
    io.out(`k3s version ${version} (demo)`);
    io.out('go version go1.24.4');
    return 0;
  }
  if (args[0] === 'kubectl') {
    const rest = args.slice(1).join(' ');
    if (rest !== 'get nodes -o json') {
      io.err(`error: the demo node only answers "kubectl get nodes -o json" (given: ${rest})`);
      return 1;
    }
    if (!node.fs.has('/etc/rancher/k3s/k3s.yaml')) {
      io.err('error: error loading config file "/etc/rancher/k3s/k3s.yaml": open /etc/rancher/k3s/k3s.yaml: no such file or directory');
      return 1;
    }
    if (!root) {
      io.err('error: error loading config file "/etc/rancher/k3s/k3s.yaml": open /etc/rancher/k3s/k3s.yaml: permission denied');
      return 1;
    }
    const cluster = node.cluster;
    const unit = node.units.get('k3s');
    if (!cluster || unit?.state !== 'active' || Date.now() < cluster.apiReadyAt) {
      io.err('The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?');
      return 1;
    }
    io.out(JSON.stringify(nodeList(cluster), null, 2));
    return 0;
  }
  io.err(`k3s: the demo node does not simulate "k3s ${args.join(' ')}"`);
  return 1;
}

function nodeList(cluster: DemoCluster) {
  const now = Date.now();
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [...cluster.nodes.values()].map((n) => {
      const unit = n.owner.units.get(n.role === 'server' ? 'k3s' : 'k3s-agent');
      const ready = now >= n.readyAt && unit?.state === 'active' && n.owner.cluster === cluster;
      const labels: Record<string, string> = { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' };
      if (n.role === 'server') Object.assign(labels, { 'node-role.kubernetes.io/control-plane': 'true', 'node-role.kubernetes.io/master': 'true', 'node-role.kubernetes.io/etcd': 'true' });
      return {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: n.name, labels },
        status: {
          addresses: [
            { type: 'InternalIP', address: n.address },
            { type: 'Hostname', address: n.name },
          ],
          conditions: [
            ready
              ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
              : { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady' },
          ],
          nodeInfo: { kubeletVersion: cluster.version, osImage: 'Flatcar Container Linux by Kinvolk 4459.2.1 (Oklo)', architecture: 'amd64' },
        },
      };
    }),
  };
}
