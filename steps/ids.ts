/** Step ids shared between step modules (dependencies cross module boundaries through these). */
export const STEP = {
  /** Connect, pin TLS, check version/nodes/storages/bridge. Outputs ProxmoxFacts. */
  proxmoxConnect: 'proxmox:connect',
  /** Last template step. Outputs TemplateOutputs. */
  templateReady: 'template:ready',
  /** Per node: `node:<name>:<phase>`. */
  node: (name: string, phase: string) => `node:${name}:${phase}`,
  /** Where each VM goes (PVE host), decided once. Outputs PlacementOutputs. */
  placement: 'nodes:placement',
  /** The k3s release pinned for the cluster. Outputs K3sReleaseRecord. */
  k3sRelease: 'k3s:release',
  /** Every node Ready in Kubernetes. */
  clusterReady: 'cluster:ready',
  /** Kubeconfig written (and merged). Outputs KubeconfigOutputs. */
  kubeconfig: 'cluster:kubeconfig',
  /** Pulumi CLI present? No needs; every root step waits for it (steps/index.ts). */
  appsPreflight: 'apps:preflight',
  appsBootstrap: 'apps:bootstrap',
  appsInfra: 'apps:infra',
  /** Operator mode: wait until the operator has applied the in-cluster Stack. */
  appsOperator: 'apps:operator',
} as const;

export interface ProxmoxFacts {
  pveVersion: string;
  /** PVE nodes VMs may be placed on (config.proxmox.nodes or every online node), first = template host. */
  pveNodes: string[];
  /** Filesystem path of the snippets storage on the PVE host(s), e.g. /var/lib/vz. */
  snippetsPath: string;
  tlsFingerprint: string;
  /** DNS servers of the template host (nodes with static addresses and no nodes.network.dns use them). */
  hostDns?: string[];
}

export interface TemplateOutputs {
  templateVmid: number;
  templateNode: string;
  templateName: string;
  flatcarVersion: string;
  ignitionHash: string;
}

/** What the k3s release step records (the subset other phases read). */
export interface K3sReleaseRecord {
  /** As configured: "stable", "latest" or a release. */
  requested: string;
  /** The release actually installed, e.g. "v1.33.4+k3s1". */
  version: string;
}

export interface KubeconfigOutputs {
  kubeconfigPath: string;
  server: string;
  mergedInto?: string;
}

/** What nodes:placement decided (template steps read it to build per-host templates). */
export interface PlacementOutputs {
  [k: string]: unknown;
  /** node name → PVE node */
  placement: Record<string, string>;
  templateNode: string;
  /** VMs on several PVE hosts. */
  spread: boolean;
  reason: string;
  /** Hosts with a template of their own (the template host first); one entry when disks are shared. */
  templateHosts: string[];
  disksShared: boolean;
  snippetsShared: boolean;
}
