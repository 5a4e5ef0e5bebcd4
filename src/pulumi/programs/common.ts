/**
 * What the two inline Pulumi programs (infra-bootstrap, infra-apps) share: their arguments and the one
 * explicit Kubernetes provider every resource goes through (so nothing ever falls back to ~/.kube/config).
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import type { AppsConfig } from '../../config/schema.js';

export interface ProgramArgs {
  apps: AppsConfig;
  cluster: {
    name: string;
    /** Contents of the kubeconfig the k3s step wrote (kept as a Pulumi secret). */
    kubeconfig: string;
  };
  /** Servers + agents: every node runs a LINSTOR satellite. */
  nodeCount: number;
  /** The cluster's pinned k3s release ("v1.33.4+k3s1"); the upgrade Plans target it unless a channel is set. */
  k3sVersion?: string;
}

export type Program = (args: ProgramArgs) => void;

export function clusterProvider(args: ProgramArgs): k8s.Provider {
  return new k8s.Provider('k3s', {
    kubeconfig: pulumi.secret(args.cluster.kubeconfig),
    // Helm releases and CRs are applied server-side, so re-running is a clean no-op and field owners are tracked.
    enableServerSideApply: true,
  });
}

export function namespace(name: string, provider: k8s.Provider, labels: Record<string, string> = {}): k8s.core.v1.Namespace {
  return new k8s.core.v1.Namespace(name, { metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'flatcar-k3s', ...labels } } }, { provider });
}
