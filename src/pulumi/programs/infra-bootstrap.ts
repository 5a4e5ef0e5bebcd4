/**
 * infra-bootstrap: the Pulumi Kubernetes Operator (v2), so the cluster can keep reconciling its own
 * infrastructure (Stack resources) after flatcar-k3s is gone, plus the service account its Stack
 * workspaces run as.
 */
import type * as K8s from '@pulumi/kubernetes';
import { lazyRequire } from '../../lazy-require.js';
import { clusterProvider, namespace, type ProgramArgs } from './common.js';

/** @pulumi/kubernetes loads when the program runs, not at import: plan/--help build the apps steps. */
const kubernetes = lazyRequire<typeof K8s>('@pulumi/kubernetes');

export const PULUMI_OPERATOR = {
  chart: 'oci://ghcr.io/pulumi/helm-charts/pulumi-kubernetes-operator',
  namespace: 'pulumi-kubernetes-operator',
  release: 'pulumi-kubernetes-operator',
} as const;

export function infraBootstrap(args: ProgramArgs): void {
  const k8s = kubernetes();
  const op = args.apps.pulumiOperator;
  if (!op.enabled) return;
  const provider = clusterProvider(args);
  const ns = namespace(PULUMI_OPERATOR.namespace, provider);

  // The chart ships the CRDs (stacks/programs.pulumi.com, workspaces/updates.auto.pulumi.com) in crds/,
  // which Helm installs before the templates (skipCrds stays false).
  new k8s.helm.v3.Release(
    PULUMI_OPERATOR.release,
    {
      name: PULUMI_OPERATOR.release,
      chart: PULUMI_OPERATOR.chart,
      version: op.version,
      namespace: ns.metadata.name,
      skipCrds: false,
      values: {},
    },
    { provider },
  );

  // Each Stack's workspace pod runs as spec.serviceAccountName; the operator authenticates to it through
  // TokenReviews/SubjectAccessReviews, which system:auth-delegator allows.
  const sa = new k8s.core.v1.ServiceAccount(
    op.serviceAccount,
    { metadata: { name: op.serviceAccount, namespace: ns.metadata.name } },
    { provider },
  );
  const subjects = [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: ns.metadata.name }];
  new k8s.rbac.v1.ClusterRoleBinding(
    `${op.serviceAccount}:system:auth-delegator`,
    {
      metadata: { name: `${PULUMI_OPERATOR.namespace}:${op.serviceAccount}:system:auth-delegator` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects,
    },
    { provider },
  );
  if (op.clusterAdmin) {
    // Stacks that reconcile cluster infrastructure (Helm releases, CRDs, namespaces) need cluster-wide rights.
    new k8s.rbac.v1.ClusterRoleBinding(
      `${op.serviceAccount}:cluster-admin`,
      {
        metadata: { name: `${PULUMI_OPERATOR.namespace}:${op.serviceAccount}:cluster-admin` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects,
      },
      { provider },
    );
  }
}
