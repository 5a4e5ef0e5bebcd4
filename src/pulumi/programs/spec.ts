/**
 * The apps as data: each program first describes its resources as ResourceSpecs (type, unique name,
 * properties, dependencies), then either registers them through the Pulumi SDK (local mode) or writes
 * them into a Pulumi YAML program for the operator (operator mode). One description, so both modes
 * install the same resources with the same values.
 */
import type * as K8s from '@pulumi/kubernetes';
import type * as Pulumi from '@pulumi/pulumi';
import { lazyRequire } from '../../lazy-require.js';

const kubernetes = lazyRequire<typeof K8s>('@pulumi/kubernetes');
const pulumiSdk = lazyRequire<typeof Pulumi>('@pulumi/pulumi');

export interface ResourceSpec {
  /** Logical name, unique within the program (Pulumi YAML keys resources by it). */
  name: string;
  /**
   * The type token Pulumi registers: `kubernetes:core/v1:Namespace`, `kubernetes:helm.sh/v3:Release`…;
   * custom resources as `kubernetes:<apiVersion>:<kind>` (what apiextensions.CustomResource registers).
   */
  type: string;
  /** Set for custom resources (created with apiextensions.CustomResource). */
  custom?: boolean;
  properties: Record<string, unknown>;
  /** Names of specs this one waits for. */
  dependsOn?: string[];
  /** Top-level properties holding secrets (wrapped as Pulumi secrets, so state and logs never show them). */
  secretProperties?: string[];
  /** Names this resource had before (local mode only: keeps existing stacks from replacing it). */
  aliases?: string[];
}

/** The type token for a custom resource, as apiextensions.CustomResource registers it. */
export function customType(apiVersion: string, kind: string): string {
  return `kubernetes:${apiVersion}:${kind}`;
}

type Ctor = new (name: string, args: any, opts?: Pulumi.CustomResourceOptions) => Pulumi.Resource;

function constructorFor(type: string, custom: boolean | undefined): Ctor {
  const k8s = kubernetes();
  if (custom) return k8s.apiextensions.CustomResource as unknown as Ctor;
  const table: Record<string, unknown> = {
    'kubernetes:core/v1:Namespace': k8s.core.v1.Namespace,
    'kubernetes:core/v1:Secret': k8s.core.v1.Secret,
    'kubernetes:core/v1:ServiceAccount': k8s.core.v1.ServiceAccount,
    'kubernetes:core/v1:PersistentVolumeClaim': k8s.core.v1.PersistentVolumeClaim,
    'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding': k8s.rbac.v1.ClusterRoleBinding,
    'kubernetes:helm.sh/v3:Release': k8s.helm.v3.Release,
    'kubernetes:yaml/v2:ConfigFile': k8s.yaml.v2.ConfigFile,
    'kubernetes:apps/v1:DeploymentPatch': k8s.apps.v1.DeploymentPatch,
    'kubernetes:storage.k8s.io/v1:StorageClass': k8s.storage.v1.StorageClass,
  };
  const ctor = table[type];
  if (!ctor) throw new Error(`no Pulumi constructor for ${type}`);
  return ctor as Ctor;
}

/** Register the specs through the SDK, in order, each through `provider`, dependencies resolved by name. */
export function registerSpecs(specs: ResourceSpec[], provider: K8s.Provider): Map<string, Pulumi.Resource> {
  const made = new Map<string, Pulumi.Resource>();
  for (const s of specs) {
    const dependsOn = (s.dependsOn ?? []).map((n) => {
      const r = made.get(n);
      if (!r) throw new Error(`${s.name} depends on ${n}, which is not declared before it`);
      return r;
    });
    const Ctor = constructorFor(s.type, s.custom);
    const opts: Pulumi.CustomResourceOptions = { provider };
    if (dependsOn.length) opts.dependsOn = dependsOn;
    if (s.aliases?.length) opts.aliases = s.aliases.map((name) => ({ name }));
    let props = s.properties;
    if (s.secretProperties?.length) {
      props = { ...props };
      for (const k of s.secretProperties) if (k in props) props[k] = pulumiSdk().secret(props[k]);
    }
    made.set(s.name, new Ctor(s.name, props, opts));
  }
  return made;
}
