/** Step ids shared between step modules (dependencies cross module boundaries through these). */
export const STEP = {
  /** Connect, pin TLS, check version/nodes/storages/bridge. Outputs ProxmoxFacts. */
  proxmoxConnect: 'proxmox:connect',
  /** Last template step. Outputs TemplateOutputs. */
  templateReady: 'template:ready',
  /** Per node: `node:<name>:<phase>`. */
  node: (name: string, phase: string) => `node:${name}:${phase}`,
  /** Every node Ready in Kubernetes. */
  clusterReady: 'cluster:ready',
  /** Kubeconfig written (and merged). Outputs KubeconfigOutputs. */
  kubeconfig: 'cluster:kubeconfig',
  /** Pulumi CLI present? No needs; every root step waits for it (steps/index.ts). */
  appsPreflight: 'apps:preflight',
  appsBootstrap: 'apps:bootstrap',
  appsInfra: 'apps:infra',
} as const;

export interface ProxmoxFacts {
  pveVersion: string;
  /** PVE nodes VMs may be placed on (config.proxmox.nodes or every online node), first = template host. */
  pveNodes: string[];
  /** Filesystem path of the snippets storage on the PVE host(s), e.g. /var/lib/vz. */
  snippetsPath: string;
  tlsFingerprint: string;
}

export interface TemplateOutputs {
  templateVmid: number;
  templateNode: string;
  templateName: string;
  flatcarVersion: string;
  ignitionHash: string;
}

export interface KubeconfigOutputs {
  kubeconfigPath: string;
  server: string;
  mergedInto?: string;
}
