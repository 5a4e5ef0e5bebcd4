/**
 * Operator mode: what infra-bootstrap adds so the Pulumi Kubernetes Operator runs infra-apps inside the
 * cluster and keeps it applied — the program (a Program resource holding Pulumi YAML generated from the
 * same ResourceSpecs local mode registers, or the user's git repository), a Stack pointing at it, a state
 * backend in the cluster (a PersistentVolumeClaim by default), and the passphrase and kubeconfig as Secrets.
 */
import { stringify } from 'yaml';
import { kubernetesPluginVersion } from '../plugin.js';
import type { ProgramArgs } from './common.js';
import { infraAppsSpecs, INFRA_APPS_KEYS } from './infra-apps.js';
import type { ResourceSpec } from './spec.js';

export const OPERATOR_STACK = {
  /** The Program, the Stack and the project are all called this (the Program's name is its project name). */
  name: 'infra-apps',
  passphraseSecret: 'infra-apps-passphrase',
  kubeconfigSecret: 'infra-apps-kubeconfig',
  statePvc: 'infra-apps-state',
  /** Where the state PVC is mounted in the workspace pod; the default backend is file://<this>. */
  stateMount: '/state',
  /** The operator's workspace container (its StatefulSet names it so). */
  workspaceContainer: 'pulumi',
  /** Drift repair: the operator refreshes and re-applies this often even when nothing changed. */
  resyncSeconds: 600,
} as const;

/** The Program's configuration key the in-cluster kubeconfig arrives in (from the kubeconfig Secret). */
export const KUBECONFIG_CONFIG_KEY = 'kubeconfig';

/** The type Pulumi YAML declares custom resources with (the provider's CustomResource overlay). */
export const YAML_CUSTOM_RESOURCE = 'kubernetes:apiextensions.k8s.io:CustomResource';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The kubeconfig the in-cluster program connects with: the API server's in-cluster address and the
 * workspace pod's own service-account token and CA (files mounted by Kubernetes), so no admin
 * credential of this machine ever goes into the cluster.
 */
export function inClusterKubeconfig(serviceAccount: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'in-cluster', cluster: { server: 'https://kubernetes.default.svc', 'certificate-authority': `${SA_DIR}/ca.crt` } }],
    users: [{ name: serviceAccount, user: { tokenFile: `${SA_DIR}/token` } }],
    contexts: [{ name: 'in-cluster', context: { cluster: 'in-cluster', user: serviceAccount } }],
    'current-context': 'in-cluster',
  });
}

/** Pulumi YAML reads `${…}` in strings as an interpolation; `$${` is its escape for a literal `${`. */
function escapeInterpolation(v: unknown): unknown {
  if (typeof v === 'string') return v.split('${').join('$${');
  if (Array.isArray(v)) return v.map(escapeInterpolation);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeInterpolation(x)]));
  return v;
}

export interface ProgramBody {
  configuration: Record<string, { type: 'String' }>;
  resources: Record<string, { type: string; properties?: Record<string, unknown>; options?: Record<string, unknown> }>;
}

/** The explicit provider of the generated program (the same settings as local mode's `k3s` provider). */
export const PROVIDER_NAME = 'k3s';

/** A Pulumi YAML program (the body of a Program resource) declaring `specs`, each through one explicit provider. */
export function programBody(specs: ResourceSpec[], pluginVersion = kubernetesPluginVersion()): ProgramBody {
  const resources: ProgramBody['resources'] = {
    [PROVIDER_NAME]: {
      type: 'pulumi:providers:kubernetes',
      properties: { kubeconfig: `\${${KUBECONFIG_CONFIG_KEY}}`, enableServerSideApply: true },
      // The plugin version the local SDK uses, so both modes apply with the same provider.
      options: { version: pluginVersion },
    },
  };
  for (const s of specs) {
    if (s.name in resources) throw new Error(`duplicate resource name ${s.name} in the generated program`);
    const options: Record<string, unknown> = { provider: `\${${PROVIDER_NAME}}` };
    if (s.dependsOn?.length) options.dependsOn = s.dependsOn.map((n) => `\${${n}}`);
    resources[s.name] = {
      type: s.custom ? YAML_CUSTOM_RESOURCE : s.type,
      properties: escapeInterpolation(s.properties) as Record<string, unknown>,
      options,
    };
  }
  return { configuration: { [KUBECONFIG_CONFIG_KEY]: { type: 'String' } }, resources };
}

/** The Program resource as a manifest (what `kubectl get program infra-apps -o yaml` shows, minus status). */
export function programManifest(args: ProgramArgs, namespace: string): Record<string, unknown> {
  return {
    apiVersion: 'pulumi.com/v1',
    kind: 'Program',
    metadata: { name: OPERATOR_STACK.name, namespace },
    program: programBody(infraAppsSpecs(args)),
  };
}

export function renderProgramYaml(args: ProgramArgs, namespace: string): string {
  return stringify(programManifest(args, namespace), { lineWidth: 0 });
}

/** Does operator mode have anything to run? (Selected infra apps, or the user's own git program.) */
export function operatorHasWork(args: Pick<ProgramArgs, 'apps'>): boolean {
  return Boolean(args.apps.source.git) || INFRA_APPS_KEYS.some((k) => args.apps[k].enabled);
}

/** The Stack's spec (validated against the operator's vendored CRD schema in the tests). */
export function stackSpec(args: ProgramArgs): Record<string, unknown> {
  const { apps } = args;
  const git = apps.source.git;
  const source = git
    ? { projectRepo: git.url, branch: git.branch.startsWith('refs/') ? git.branch : `refs/heads/${git.branch}`, repoDir: git.dir }
    : { programRef: { name: OPERATOR_STACK.name } };
  const secretRef = (name: string, key: string) => ({ type: 'Secret', secret: { name, key } });
  const spec: Record<string, unknown> = {
    stack: args.cluster.name,
    serviceAccountName: apps.pulumiOperator.serviceAccount,
    ...source,
    backend: apps.backend.url ?? `file://${OPERATOR_STACK.stateMount}`,
    secretsProvider: 'passphrase',
    envRefs: { PULUMI_CONFIG_PASSPHRASE: secretRef(OPERATOR_STACK.passphraseSecret, 'passphrase') },
    secretsRef: { [KUBECONFIG_CONFIG_KEY]: secretRef(OPERATOR_STACK.kubeconfigSecret, 'kubeconfig') },
    // Refresh first, so an app deleted by hand is seen as missing and created again.
    refresh: true,
    resyncFrequencySeconds: OPERATOR_STACK.resyncSeconds,
    continueResyncOnCommitMatch: true,
    // Deleting the Stack object must never tear the cluster's apps down.
    destroyOnFinalize: false,
  };
  if (!apps.backend.url) {
    spec.workspaceTemplate = {
      spec: {
        podTemplate: {
          spec: {
            volumes: [{ name: 'state', persistentVolumeClaim: { claimName: OPERATOR_STACK.statePvc } }],
            containers: [
              { name: OPERATOR_STACK.workspaceContainer, volumeMounts: [{ name: 'state', mountPath: OPERATOR_STACK.stateMount }] },
            ],
          },
        },
      },
    };
  }
  return spec;
}

/** What operator mode adds to infra-bootstrap, after the operator's release (whose CRDs it needs). */
export function operatorSpecs(args: ProgramArgs, after: { namespace: string; release: string; serviceAccount: string }): ResourceSpec[] {
  if (!operatorHasWork(args)) return [];
  const passphrase = args.operator?.passphrase;
  if (!passphrase) throw new Error('operator mode needs the in-cluster stack passphrase');
  const ns = after.namespace;
  const specs: ResourceSpec[] = [
    {
      name: OPERATOR_STACK.passphraseSecret,
      type: 'kubernetes:core/v1:Secret',
      properties: { metadata: { name: OPERATOR_STACK.passphraseSecret, namespace: ns }, type: 'Opaque', stringData: { passphrase } },
      secretProperties: ['stringData'],
    },
    {
      name: OPERATOR_STACK.kubeconfigSecret,
      type: 'kubernetes:core/v1:Secret',
      properties: {
        metadata: { name: OPERATOR_STACK.kubeconfigSecret, namespace: ns },
        type: 'Opaque',
        stringData: { kubeconfig: inClusterKubeconfig(args.apps.pulumiOperator.serviceAccount) },
      },
      secretProperties: ['stringData'],
    },
  ];
  if (!args.apps.backend.url) {
    specs.push({
      name: OPERATOR_STACK.statePvc,
      type: 'kubernetes:core/v1:PersistentVolumeClaim',
      properties: {
        // local-path binds on first use (WaitForFirstConsumer): the workspace pod is that consumer.
        metadata: { name: OPERATOR_STACK.statePvc, namespace: ns, annotations: { 'pulumi.com/skipAwait': 'true' } },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: args.apps.backend.size } },
          ...(args.apps.backend.storageClass ? { storageClassName: args.apps.backend.storageClass } : {}),
        },
      },
    });
  }
  const stackDeps = [after.release, after.serviceAccount, ...specs.map((s) => s.name)];
  if (!args.apps.source.git) {
    const program = programManifest(args, ns);
    specs.push({
      name: `${OPERATOR_STACK.name}-program`,
      type: 'kubernetes:pulumi.com/v1:Program',
      custom: true,
      properties: program,
      dependsOn: [after.release],
    });
    stackDeps.push(`${OPERATOR_STACK.name}-program`);
  }
  specs.push({
    name: `${OPERATOR_STACK.name}-stack`,
    type: 'kubernetes:pulumi.com/v1:Stack',
    custom: true,
    properties: {
      apiVersion: 'pulumi.com/v1',
      kind: 'Stack',
      metadata: { name: OPERATOR_STACK.name, namespace: ns },
      spec: stackSpec(args),
    },
    dependsOn: stackDeps,
  });
  return specs;
}
