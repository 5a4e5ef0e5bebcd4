/**
 * /etc/rancher/k3s/config.yaml for one node, generated from the cluster config. Keys are k3s flag names.
 * The file holds the cluster token, so it is uploaded with mode 0600 and never logged.
 * Everything that must match across servers (cluster-cidr, service-cidr, disable, secrets-encryption)
 * comes from the one cluster config, so every server gets the same values.
 */
import { stringify } from 'yaml';
import type { Config } from '../config/schema.js';
import type { PlannedNode } from '../config/layout.js';

export const K3S_CONFIG_PATH = '/etc/rancher/k3s/config.yaml';
export const K3S_MANIFESTS_DIR = '/var/lib/rancher/k3s/server/manifests';
export const K3S_API_PORT = 6443;

/** HA (embedded etcd) whenever there is more than one server or a VIP to grow into. */
export function isHa(config: Config): boolean {
  return config.nodes.servers.count > 1 || config.nodes.vip !== undefined;
}

/** The address joins and the kubeconfig use: the VIP when there is one, else the first server. */
export function controlPlaneHost(config: Config, firstServerAddress: string): string {
  return config.nodes.vip ?? firstServerAddress;
}

export function serverUrl(host: string): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${K3S_API_PORT}`;
}

export interface NodeK3sConfigInput {
  config: Config;
  node: PlannedNode;
  /** The node's own IPv4 address (static plan or guest agent), without prefix. */
  address: string;
  /** The cluster token (secret). */
  token: string;
  /** Address of the first server (used when there is no VIP). */
  firstServerAddress: string;
}

/** The config.yaml object for a node (before serialisation). */
export function nodeK3sConfig(input: NodeK3sConfigInput): Record<string, unknown> {
  const { config, node, address, token } = input;
  const first = node.role === 'server' && node.index === 1;
  const joinUrl = serverUrl(controlPlaneHost(config, input.firstServerAddress));
  const out: Record<string, unknown> = {};
  out['node-name'] = node.name;
  out['node-ip'] = address;
  out.token = token;
  if (node.role === 'server') {
    if (first) {
      if (isHa(config)) out['cluster-init'] = true;
    } else {
      out.server = joinUrl;
    }
    const sans = [...new Set([config.nodes.vip, address, node.name].filter((x): x is string => !!x))];
    out['tls-san'] = sans;
    out['cluster-cidr'] = config.cluster.clusterCidr;
    out['service-cidr'] = config.cluster.serviceCidr;
    if (config.cluster.secretsEncryption) out['secrets-encryption'] = true;
    if (config.cluster.disable.length) out.disable = [...config.cluster.disable].sort();
    out['write-kubeconfig-mode'] = '0600';
  } else {
    out.server = joinUrl;
  }
  const labels = Object.entries(node.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`);
  labels.push(`flatcar-k3s/cluster=${config.cluster.name}`);
  out['node-label'] = labels;
  if (node.taints.length) out['node-taint'] = [...node.taints];
  return out;
}

/** Serialised config.yaml, deterministic (same input → same bytes, so re-runs change nothing). */
export function nodeK3sConfigYaml(input: NodeK3sConfigInput): string {
  return '# Written by flatcar-k3s. Mode 0600: holds the cluster token.\n' + stringify(nodeK3sConfig(input), { lineWidth: 0 });
}
