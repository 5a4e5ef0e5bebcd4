/**
 * infra-bootstrap: the Pulumi Kubernetes Operator (v2), so the cluster can keep reconciling its own
 * infrastructure (Stack resources) after flatcar-k3s is gone, plus the service account its Stack
 * workspaces run as.
 */
import { clusterProvider, namespaceSpec, type ProgramArgs } from './common.js';
import { operatorSpecs } from './operator.js';
import { registerSpecs, type ResourceSpec } from './spec.js';

export const PULUMI_OPERATOR = {
  chart: 'oci://ghcr.io/pulumi/helm-charts/pulumi-kubernetes-operator',
  namespace: 'pulumi-kubernetes-operator',
  release: 'pulumi-kubernetes-operator',
} as const;

export function infraBootstrap(args: ProgramArgs): void {
  const specs = infraBootstrapSpecs(args);
  if (!specs.length) return;
  registerSpecs(specs, clusterProvider(args));
}

/** The values the operator chart gets (every key is one its values.yaml declares: see vendor/charts). */
export function operatorValues(): Record<string, unknown> {
  return {};
}

export function infraBootstrapSpecs(args: ProgramArgs): ResourceSpec[] {
  const op = args.apps.pulumiOperator;
  if (!op.enabled) return [];
  const ns = namespaceSpec(PULUMI_OPERATOR.namespace);
  // The chart ships the CRDs (stacks/programs.pulumi.com, workspaces/updates.auto.pulumi.com) in crds/,
  // which Helm installs before the templates (skipCrds stays false).
  const release: ResourceSpec = {
    name: PULUMI_OPERATOR.release,
    type: 'kubernetes:helm.sh/v3:Release',
    properties: {
      name: PULUMI_OPERATOR.release,
      chart: PULUMI_OPERATOR.chart,
      version: op.version,
      namespace: PULUMI_OPERATOR.namespace,
      skipCrds: false,
      values: operatorValues(),
    },
    dependsOn: [ns.name],
  };
  // Each Stack's workspace pod runs as spec.serviceAccountName; the operator authenticates to it through
  // TokenReviews/SubjectAccessReviews, which system:auth-delegator allows.
  const sa: ResourceSpec = {
    name: op.serviceAccount,
    type: 'kubernetes:core/v1:ServiceAccount',
    properties: { metadata: { name: op.serviceAccount, namespace: PULUMI_OPERATOR.namespace } },
    dependsOn: [ns.name],
  };
  const subjects = [{ kind: 'ServiceAccount', name: op.serviceAccount, namespace: PULUMI_OPERATOR.namespace }];
  const binding = (role: string): ResourceSpec => ({
    name: `${op.serviceAccount}:${role}`,
    type: 'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding',
    properties: {
      metadata: { name: `${PULUMI_OPERATOR.namespace}:${op.serviceAccount}:${role}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects,
    },
    dependsOn: [sa.name],
  });
  const specs = [ns, release, sa, binding('system:auth-delegator')];
  // Stacks that reconcile cluster infrastructure (Helm releases, CRDs, namespaces) need cluster-wide rights.
  if (op.clusterAdmin) specs.push(binding('cluster-admin'));
  if (args.apps.mode === 'operator')
    specs.push(...operatorSpecs(args, { namespace: PULUMI_OPERATOR.namespace, release: release.name, serviceAccount: sa.name }));
  return specs;
}
