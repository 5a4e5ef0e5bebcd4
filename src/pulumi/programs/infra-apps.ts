/**
 * infra-apps: the cluster's base applications, each selectable in config.apps, each pinned, each tuned
 * for Flatcar. kube-vip is not here: the k3s step installs it as a static manifest.
 *
 * The apps are described as ResourceSpecs (helm.v3.Release, plain Kubernetes objects, custom resources),
 * registered through the SDK in local mode and written into the operator's Program in operator mode.
 */
import { UserError, formatIssue } from '../../errors.js';
import { piraeusNodeIssues } from '../../config/apps.js';
import { clusterProvider, namespaceSpec, type ProgramArgs } from './common.js';
import { customType, registerSpecs, type ResourceSpec } from './spec.js';

export const CERT_MANAGER = {
  chart: 'cert-manager',
  repo: 'https://charts.jetstack.io',
  namespace: 'cert-manager',
  release: 'cert-manager',
} as const;
export const KURED = { chart: 'kured', repo: 'https://kubereboot.github.io/charts', namespace: 'kured', release: 'kured' } as const;
export const PIRAEUS = {
  chart: 'oci://ghcr.io/piraeusdatastore/piraeus-operator/piraeus',
  namespace: 'piraeus-datastore',
  release: 'piraeus-operator',
  storagePool: 'pool1',
  storageClass: 'linstor-replicated',
  provisioner: 'linstor.csi.linbit.com',
} as const;
export const SYSTEM_UPGRADE = {
  namespace: 'system-upgrade',
  serviceAccount: 'system-upgrade',
  releases: 'https://github.com/rancher/system-upgrade-controller/releases/download',
  deployment: 'system-upgrade-controller',
  upgradeImage: 'rancher/k3s-upgrade',
  controlPlaneLabel: 'node-role.kubernetes.io/control-plane',
} as const;

/**
 * Flatcar's update_engine writes /run/reboot-required once an update is staged (Flatcar > 3067).
 * /var/run is a symlink to /run on Flatcar, so kured's default path sees it; we set it explicitly anyway
 * so a change of kured's default can never silently stop OS updates from being applied.
 */
export const KURED_SENTINEL = '/var/run/reboot-required';

const managed = { 'app.kubernetes.io/managed-by': 'flatcar-k3s' };

/**
 * Refuse what the programs cannot apply, before creating anything (so a bad selection never leaves half
 * the apps applied). The step calls it too, so the user sees the UserError itself, not Pulumi's wrapper.
 */
export function checkInfraAppsArgs(args: ProgramArgs): void {
  const issues = piraeusNodeIssues(args.apps, args.nodeCount);
  if (issues.length)
    throw new UserError(`piraeus: ${issues.map(formatIssue).join('; ')}`, {
      field: 'apps.piraeus.replicas',
      fix: 'Lower apps.piraeus.replicas or add nodes, then run again.',
    });
  if (args.apps.systemUpgradeController.enabled) planTarget(args);
}

/** The apps infra-apps holds (the operator is in infra-bootstrap). */
export const INFRA_APPS_KEYS = ['certManager', 'kured', 'piraeus', 'systemUpgradeController'] as const;

export function infraApps(args: ProgramArgs): void {
  const specs = infraAppsSpecs(args);
  if (!specs.length) return;
  registerSpecs(specs, clusterProvider(args));
}

/** The resources of the selected apps, in creation order (empty when none is selected). */
export function infraAppsSpecs(args: ProgramArgs): ResourceSpec[] {
  const { apps } = args;
  if (!INFRA_APPS_KEYS.some((k) => apps[k].enabled)) return [];
  checkInfraAppsArgs(args);
  const upgradeTarget = apps.systemUpgradeController.enabled ? planTarget(args) : undefined;
  return [
    ...(apps.certManager.enabled ? certManager(args) : []),
    ...(apps.kured.enabled ? kured(args) : []),
    ...(apps.piraeus.enabled ? piraeus(args) : []),
    ...(upgradeTarget ? systemUpgradeController(args, upgradeTarget) : []),
  ];
}

type PlanTarget = { channel: string } | { version: string };

/** The Plans follow a channel URL when configured, else stay on the cluster's pinned k3s release. */
function planTarget(args: ProgramArgs): PlanTarget {
  const s = args.apps.systemUpgradeController;
  if (s.channel) return { channel: s.channel };
  if (args.k3sVersion) return { version: args.k3sVersion };
  throw new UserError('system-upgrade-controller: no k3s version to target', {
    field: 'apps.systemUpgradeController.channel',
    fix: 'Pin cluster.k3sVersion (e.g. "v1.33.4+k3s1") or set apps.systemUpgradeController.channel (e.g. "https://update.k3s.io/v1-release/channels/stable").',
  });
}

/** The values the cert-manager chart gets (every key is one its values.yaml declares: see vendor/charts). */
export function certManagerValues(): Record<string, unknown> {
  // CRDs come with the chart; keep them when the release is removed so certificates survive.
  return { crds: { enabled: true, keep: true } };
}

function certManager(args: ProgramArgs): ResourceSpec[] {
  const ns = namespaceSpec(CERT_MANAGER.namespace);
  return [
    ns,
    {
      name: CERT_MANAGER.release,
      type: 'kubernetes:helm.sh/v3:Release',
      properties: {
        name: CERT_MANAGER.release,
        chart: CERT_MANAGER.chart,
        repositoryOpts: { repo: CERT_MANAGER.repo },
        version: args.apps.certManager.version,
        namespace: CERT_MANAGER.namespace,
        values: certManagerValues(),
      },
      dependsOn: [ns.name],
    },
  ];
}

/**
 * kured's chart passes a setting only when it is truthy (`{{- if .Values.configuration.x }}`), so a
 * numeric 0 would vanish. drainGracePeriod goes as a string ("0" is a non-empty string, hence passed),
 * which is also the type of the chart's own default ("").
 */
export function kuredValues(k: ProgramArgs['apps']['kured']): Record<string, unknown> {
  const configuration: Record<string, unknown> = {
    rebootSentinel: KURED_SENTINEL,
    // One node at a time: cordon, drain, reboot, wait Ready, uncordon, then the next.
    concurrency: 1,
    period: k.period,
    startTime: k.startTime,
    endTime: k.endTime,
    rebootDays: k.rebootDays,
    timeZone: k.timeZone,
    drainTimeout: k.drainTimeout,
    forceReboot: k.forceReboot,
    // Flatcar runs systemd; kured nsenters into the host's mount namespace for this.
    rebootCommand: '/bin/systemctl reboot',
  };
  if (k.drainGracePeriod !== undefined) configuration.drainGracePeriod = String(k.drainGracePeriod);
  return {
    configuration,
    updateStrategy: 'RollingUpdate',
    // Servers need OS updates too, even when tainted (CriticalAddonsOnly / control-plane).
    tolerations: [
      { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'CriticalAddonsOnly', operator: 'Exists' },
    ],
  };
}

function kured(args: ProgramArgs): ResourceSpec[] {
  const ns = namespaceSpec(KURED.namespace);
  return [
    ns,
    {
      name: KURED.release,
      type: 'kubernetes:helm.sh/v3:Release',
      properties: {
        name: KURED.release,
        chart: KURED.chart,
        repositoryOpts: { repo: KURED.repo },
        version: args.apps.kured.version,
        namespace: KURED.namespace,
        values: kuredValues(args.apps.kured),
      },
      dependsOn: [ns.name],
    },
  ];
}

export function piraeusValues(): Record<string, unknown> {
  return { installCRDs: true };
}

function piraeus(args: ProgramArgs): ResourceSpec[] {
  const p = args.apps.piraeus;
  const ns = namespaceSpec(PIRAEUS.namespace);
  const operator: ResourceSpec = {
    name: PIRAEUS.release,
    type: 'kubernetes:helm.sh/v3:Release',
    properties: { name: PIRAEUS.release, chart: PIRAEUS.chart, version: p.version, namespace: PIRAEUS.namespace, values: piraeusValues() },
    dependsOn: [ns.name],
  };
  const cr = (kind: string, name: string, spec: Record<string, unknown>): ResourceSpec => ({
    name,
    type: customType('piraeus.io/v1', kind),
    custom: true,
    properties: { apiVersion: 'piraeus.io/v1', kind, metadata: { name, labels: managed }, spec },
    // The CRs need the operator's CRDs.
    dependsOn: [operator.name],
  });
  return [
    ns,
    operator,
    cr('LinstorCluster', 'linstorcluster', {}),
    // Flatcar: /usr is read-only and has no /usr/src, so the drbd-module-loader must not bind-mount it;
    // it builds DRBD from /lib/modules/$(uname -r)/build instead (piraeus docs: how-to/flatcar).
    cr('LinstorSatelliteConfiguration', 'no-usr-src-mount', {
      podTemplate: {
        spec: {
          volumes: [{ name: 'usr-src', $patch: 'delete' }],
          initContainers: [{ name: 'drbd-module-loader', volumeMounts: [{ mountPath: '/usr/src', name: 'usr-src', $patch: 'delete' }] }],
        },
      },
    }),
    // A file-backed thin pool in a directory on the root disk (Flatcar grows it to the VM disk at boot).
    cr('LinstorSatelliteConfiguration', 'storage-pool', {
      storagePools: [{ name: PIRAEUS.storagePool, fileThinPool: { directory: p.poolDirectory } }],
    }),
    {
      name: PIRAEUS.storageClass,
      type: 'kubernetes:storage.k8s.io/v1:StorageClass',
      properties: {
        metadata: {
          name: PIRAEUS.storageClass,
          labels: managed,
          annotations: p.defaultStorageClass ? { 'storageclass.kubernetes.io/is-default-class': 'true' } : {},
        },
        provisioner: PIRAEUS.provisioner,
        allowVolumeExpansion: true,
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Delete',
        parameters: {
          'linstor.csi.linbit.com/storagePool': PIRAEUS.storagePool,
          'linstor.csi.linbit.com/placementCount': String(p.replicas),
        },
      },
    },
  ];
}

/**
 * Flatcar's /etc/ssl/certs entries are symlinks into /usr/share/ca-certificates (and openssl.cnf into
 * /usr/share/ssl); the release manifest mounts only /etc/ssl, /etc/pki and /etc/ca-certificates, so the
 * links dangle in the pod and resolving a `channel` fails with x509 errors (system-upgrade-controller
 * issue #358). The targets are mounted read-only at the same paths, merged into the Deployment by
 * server-side apply (volumes are keyed by name, mounts by path).
 */
export const SUC_FLATCAR_CERT_DIRS = [
  { name: 'usr-share-ca-certificates', path: '/usr/share/ca-certificates' },
  { name: 'usr-share-ssl', path: '/usr/share/ssl' },
] as const;

/** Taints k3s servers may carry; the server Plan's Jobs must run there anyway. */
export const SERVER_PLAN_TOLERATIONS = [
  { key: 'CriticalAddonsOnly', operator: 'Exists' },
  { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node-role.kubernetes.io/etcd', operator: 'Exists', effect: 'NoExecute' },
] as const;

/** Agents are drained before k3s restarts on them (as upstream's examples/k3s-upgrade.yaml agent Plan). */
export const AGENT_PLAN_DRAIN = { force: true, skipWaitForDeleteTimeout: 60 } as const;

function systemUpgradeController(args: ProgramArgs, target: PlanTarget): ResourceSpec[] {
  const s = args.apps.systemUpgradeController;
  const base = `${SYSTEM_UPGRADE.releases}/${s.version}`;
  // The release manifests create the system-upgrade namespace and service account; the CRDs come first.
  const crds: ResourceSpec = {
    name: 'system-upgrade-controller-crd',
    type: 'kubernetes:yaml/v2:ConfigFile',
    properties: { file: `${base}/crd.yaml` },
  };
  const controller: ResourceSpec = {
    name: 'system-upgrade-controller',
    type: 'kubernetes:yaml/v2:ConfigFile',
    properties: { file: `${base}/system-upgrade-controller.yaml` },
    dependsOn: [crds.name],
  };
  const certs: ResourceSpec = {
    name: 'system-upgrade-controller-flatcar-certs',
    type: 'kubernetes:apps/v1:DeploymentPatch',
    properties: {
      metadata: { name: SYSTEM_UPGRADE.deployment, namespace: SYSTEM_UPGRADE.namespace, annotations: { 'pulumi.com/patchForce': 'true' } },
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: SYSTEM_UPGRADE.deployment,
                volumeMounts: SUC_FLATCAR_CERT_DIRS.map((d) => ({ name: d.name, mountPath: d.path, readOnly: true })),
              },
            ],
            volumes: SUC_FLATCAR_CERT_DIRS.map((d) => ({ name: d.name, hostPath: { path: d.path, type: 'Directory' } })),
          },
        },
      },
    },
    dependsOn: [controller.name],
  };
  const planSpec = (nodeSelector: unknown, extra: Record<string, unknown>) => ({
    concurrency: 1,
    cordon: true,
    nodeSelector,
    serviceAccountName: SYSTEM_UPGRADE.serviceAccount,
    upgrade: { image: SYSTEM_UPGRADE.upgradeImage },
    ...target,
    ...extra,
  });
  const plan = (name: string, spec: Record<string, unknown>, dependsOn: string[]): ResourceSpec => ({
    name,
    type: customType('upgrade.cattle.io/v1', 'Plan'),
    custom: true,
    properties: {
      apiVersion: 'upgrade.cattle.io/v1',
      kind: 'Plan',
      metadata: { name, namespace: SYSTEM_UPGRADE.namespace, labels: managed },
      spec,
    },
    dependsOn,
  });
  const server = plan(
    'server-plan',
    planSpec(
      { matchExpressions: [{ key: SYSTEM_UPGRADE.controlPlaneLabel, operator: 'In', values: ['true'] }] },
      { tolerations: SERVER_PLAN_TOLERATIONS },
    ),
    [controller.name, certs.name],
  );
  // Agents wait (prepare) until every server runs the new version, and are drained first.
  const agent = plan(
    'agent-plan',
    planSpec(
      { matchExpressions: [{ key: SYSTEM_UPGRADE.controlPlaneLabel, operator: 'DoesNotExist' }] },
      { prepare: { image: SYSTEM_UPGRADE.upgradeImage, args: ['prepare', server.name] }, drain: AGENT_PLAN_DRAIN },
    ),
    [controller.name, certs.name, server.name],
  );
  return [crds, controller, certs, server, agent];
}
