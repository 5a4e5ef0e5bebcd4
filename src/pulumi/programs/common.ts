/**
 * What the two inline Pulumi programs (infra-bootstrap, infra-apps) share: their arguments and the one
 * explicit Kubernetes provider every resource goes through (so nothing ever falls back to ~/.kube/config).
 */
import type * as Pulumi from '@pulumi/pulumi';
import type * as K8s from '@pulumi/kubernetes';
import { lazyRequire } from '../../lazy-require.js';
import type { AppsConfig } from '../../config/schema.js';
import type { ResourceSpec } from './spec.js';

/** The Pulumi SDKs load when the program runs, not at import: plan/--help build the apps steps. */
const kubernetes = lazyRequire<typeof K8s>('@pulumi/kubernetes');
const pulumiSdk = lazyRequire<typeof Pulumi>('@pulumi/pulumi');

export interface ProgramArgs {
  apps: AppsConfig;
  cluster: {
    name: string;
    /** Contents of the kubeconfig the k3s step wrote (kept as a Pulumi secret). */
    kubeconfig: string;
  };
  /** Servers + agents: every node runs a LINSTOR satellite. */
  nodeCount: number;
  /** Operator mode: the passphrase of the in-cluster stack (stored in a Secret for the operator). */
  operator?: { passphrase: string };
  /** The cluster's pinned k3s release ("v1.33.4+k3s1"); the upgrade Plans target it unless a channel is set. */
  k3sVersion?: string;
}

export type Program = (args: ProgramArgs) => void;

export function clusterProvider(args: ProgramArgs): K8s.Provider {
  const k8s = kubernetes();
  const pulumi = pulumiSdk();
  return new k8s.Provider('k3s', {
    kubeconfig: pulumi.secret(args.cluster.kubeconfig),
    // Helm releases and CRs are applied server-side, so re-running is a clean no-op and field owners are tracked.
    enableServerSideApply: true,
  });
}

/**
 * A namespace we create. Its logical name is "<name>-namespace" (Pulumi YAML keys resources by name, and
 * a release often shares the namespace's name); the alias keeps stacks created under the bare name.
 */
export function namespaceSpec(name: string, labels: Record<string, string> = {}): ResourceSpec {
  return {
    name: `${name}-namespace`,
    type: 'kubernetes:core/v1:Namespace',
    properties: { metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'flatcar-k3s', ...labels } } },
    aliases: [name],
  };
}
