/**
 * The demo's `k3s` command: `k3s --version` of the binary in /opt/bin, and `k3s kubectl` against the
 * node's cluster (kube-api.ts): get nodes, cordon, uncordon, drain, delete node, annotate node.
 */
import { annotate, cordon, deleteNode, drain, nodeList, type KubeResult } from './kube-api.js';
import { binaryVersion, type DemoNode, type ExecIo } from './node.js';
import type { DemoWorld } from './world.js';

const KUBECONFIG = '/etc/rancher/k3s/k3s.yaml';

export async function runK3s(w: DemoWorld, node: DemoNode, args: string[], root: boolean, io: ExecIo): Promise<number> {
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
  if (args[0] !== 'kubectl') {
    io.err(`k3s: the demo node does not simulate "k3s ${args.join(' ')}"`);
    return 1;
  }
  if (!node.fs.has(KUBECONFIG)) {
    io.err(`error: error loading config file "${KUBECONFIG}": open ${KUBECONFIG}: no such file or directory`);
    return 1;
  }
  if (!root) {
    io.err(`error: error loading config file "${KUBECONFIG}": open ${KUBECONFIG}: permission denied`);
    return 1;
  }
  const cluster = node.cluster;
  const unit = node.units.get('k3s');
  if (!cluster || unit?.state !== 'active' || Date.now() < cluster.apiReadyAt) {
    io.err('The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?');
    return 1;
  }
  const r = await kubectl(w, node, args.slice(1));
  for (const l of r.out) io.out(l);
  for (const l of r.err) io.err(l);
  return r.code;
}

async function kubectl(w: DemoWorld, node: DemoNode, args: string[]): Promise<KubeResult> {
  const cluster = node.cluster!;
  const words = args.filter((a) => !a.startsWith('-'));
  const flags = args.filter((a) => a.startsWith('-'));
  const [verb, kind, name] = words;
  const given = args.join(' ');
  if (given === 'get nodes -o json') return { code: 0, out: [JSON.stringify(nodeList(cluster), null, 2)], err: [] };
  if ((verb === 'cordon' || verb === 'uncordon') && kind && words.length === 2) return cordon(cluster, kind, verb === 'cordon');
  if (verb === 'drain' && kind && words.length === 2) return drain(w, cluster, kind, flags);
  if (verb === 'delete' && kind === 'node' && name && words.length === 3) return deleteNode(cluster, name);
  if (verb === 'annotate' && kind === 'node' && name) return annotate(w, cluster, name, words.slice(3));
  return {
    code: 1,
    out: [],
    err: [
      `error: the demo node answers only "kubectl get nodes -o json", cordon, uncordon, drain, "delete node" and "annotate node" (given: ${given})`,
    ],
  };
}
