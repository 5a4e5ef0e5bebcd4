/**
 * infra-apps: the cluster's base applications, each selectable in config.apps, each pinned, each tuned
 * for Flatcar. kube-vip is not here: the k3s step installs it as a static manifest.
 *
 * Resources are helm.v3.Release, plain Kubernetes objects and apiextensions.CustomResource, so their
 * inputs are visible to tests under Pulumi's mocks.
 */
import type * as K8s from '@pulumi/kubernetes';
import { lazyRequire } from '../../lazy-require.js';
import { UserError, formatIssue } from '../../errors.js';
import { piraeusNodeIssues } from '../../config/apps.js';
import { clusterProvider, namespace, type ProgramArgs } from './common.js';

/** @pulumi/kubernetes loads when the program runs, not at import: plan/--help build the apps steps. */
const kubernetes = lazyRequire<typeof K8s>('@pulumi/kubernetes');

export const CERT_MANAGER = { chart: 'cert-manager', repo: 'https://charts.jetstack.io', namespace: 'cert-manager', release: 'cert-manager' } as const;
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
  if (issues.length) throw new UserError(`piraeus: ${issues.map(formatIssue).join('; ')}`, { field: 'apps.piraeus.replicas', fix: 'Lower apps.piraeus.replicas or add nodes, then run again.' });
  if (args.apps.systemUpgradeController.enabled) planTarget(args);
}

export function infraApps(args: ProgramArgs): void {
  const { apps } = args;
  if (!apps.certManager.enabled && !apps.kured.enabled && !apps.piraeus.enabled && !apps.systemUpgradeController.enabled) return;
  checkInfraAppsArgs(args);
  const upgradeTarget = apps.systemUpgradeController.enabled ? planTarget(args) : undefined;

  const provider = clusterProvider(args);
  if (apps.certManager.enabled) certManager(args, provider);
  if (apps.kured.enabled) kured(args, provider);
  if (apps.piraeus.enabled) piraeus(args, provider);
  if (upgradeTarget) systemUpgradeController(args, upgradeTarget, provider);
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

function certManager(args: ProgramArgs, provider: K8s.Provider): void {
  const k8s = kubernetes();
  const cm = args.apps.certManager;
  const ns = namespace(CERT_MANAGER.namespace, provider);
  new k8s.helm.v3.Release(
    CERT_MANAGER.release,
    {
      name: CERT_MANAGER.release,
      chart: CERT_MANAGER.chart,
      repositoryOpts: { repo: CERT_MANAGER.repo },
      version: cm.version,
      namespace: ns.metadata.name,
      // CRDs come with the chart; keep them when the release is removed so certificates survive.
      values: { crds: { enabled: true, keep: true } },
    },
    { provider },
  );
}

function kured(args: ProgramArgs, provider: K8s.Provider): void {
  const k8s = kubernetes();
  const k = args.apps.kured;
  const ns = namespace(KURED.namespace, provider);
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
  if (k.drainGracePeriod !== undefined) configuration.drainGracePeriod = k.drainGracePeriod;
  new k8s.helm.v3.Release(
    KURED.release,
    {
      name: KURED.release,
      chart: KURED.chart,
      repositoryOpts: { repo: KURED.repo },
      version: k.version,
      namespace: ns.metadata.name,
      values: {
        configuration,
        updateStrategy: 'RollingUpdate',
        // Servers need OS updates too, even when tainted (CriticalAddonsOnly / control-plane).
        tolerations: [
          { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
          { key: 'CriticalAddonsOnly', operator: 'Exists' },
        ],
      },
    },
    { provider },
  );
}

function piraeus(args: ProgramArgs, provider: K8s.Provider): void {
  const k8s = kubernetes();
  const p = args.apps.piraeus;
  const ns = namespace(PIRAEUS.namespace, provider);
  const operator = new k8s.helm.v3.Release(
    PIRAEUS.release,
    {
      name: PIRAEUS.release,
      chart: PIRAEUS.chart,
      version: p.version,
      namespace: ns.metadata.name,
      values: { installCRDs: true },
    },
    { provider },
  );
  const after = { provider, dependsOn: [operator] };

  new k8s.apiextensions.CustomResource(
    'linstorcluster',
    { apiVersion: 'piraeus.io/v1', kind: 'LinstorCluster', metadata: { name: 'linstorcluster', labels: managed }, spec: {} },
    after,
  );

  // Flatcar: /usr is read-only and has no /usr/src, so the drbd-module-loader must not bind-mount it;
  // it builds DRBD from /lib/modules/$(uname -r)/build instead (piraeus docs: how-to/flatcar).
  new k8s.apiextensions.CustomResource(
    'no-usr-src-mount',
    {
      apiVersion: 'piraeus.io/v1',
      kind: 'LinstorSatelliteConfiguration',
      metadata: { name: 'no-usr-src-mount', labels: managed },
      spec: {
        podTemplate: {
          spec: {
            volumes: [{ name: 'usr-src', $patch: 'delete' }],
            initContainers: [{ name: 'drbd-module-loader', volumeMounts: [{ mountPath: '/usr/src', name: 'usr-src', $patch: 'delete' }] }],
          },
        },
      },
    },
    after,
  );

  // A file-backed thin pool in a directory on the root disk (Flatcar grows it to the VM disk at boot).
  new k8s.apiextensions.CustomResource(
    'storage-pool',
    {
      apiVersion: 'piraeus.io/v1',
      kind: 'LinstorSatelliteConfiguration',
      metadata: { name: 'storage-pool', labels: managed },
      spec: { storagePools: [{ name: PIRAEUS.storagePool, fileThinPool: { directory: p.poolDirectory } }] },
    },
    after,
  );

  new k8s.storage.v1.StorageClass(
    PIRAEUS.storageClass,
    {
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
    { provider },
  );
}

function systemUpgradeController(args: ProgramArgs, target: PlanTarget, provider: K8s.Provider): void {
  const k8s = kubernetes();
  const s = args.apps.systemUpgradeController;
  const base = `${SYSTEM_UPGRADE.releases}/${s.version}`;
  // The release manifests create the system-upgrade namespace and service account; the CRDs come first.
  const crds = new k8s.yaml.v2.ConfigFile('system-upgrade-controller-crd', { file: `${base}/crd.yaml` }, { provider });
  const controller = new k8s.yaml.v2.ConfigFile('system-upgrade-controller', { file: `${base}/system-upgrade-controller.yaml` }, { provider, dependsOn: [crds] });

  const planSpec = (nodeSelector: unknown, extra: Record<string, unknown> = {}) => ({
    concurrency: 1,
    cordon: true,
    nodeSelector,
    serviceAccountName: SYSTEM_UPGRADE.serviceAccount,
    upgrade: { image: SYSTEM_UPGRADE.upgradeImage },
    ...target,
    ...extra,
  });
  const serverPlan = new k8s.apiextensions.CustomResource(
    'server-plan',
    {
      apiVersion: 'upgrade.cattle.io/v1',
      kind: 'Plan',
      metadata: { name: 'server-plan', namespace: SYSTEM_UPGRADE.namespace, labels: managed },
      spec: planSpec({ matchExpressions: [{ key: SYSTEM_UPGRADE.controlPlaneLabel, operator: 'In', values: ['true'] }] }),
    },
    { provider, dependsOn: [controller] },
  );
  // Agents wait (prepare) until every server runs the new version.
  new k8s.apiextensions.CustomResource(
    'agent-plan',
    {
      apiVersion: 'upgrade.cattle.io/v1',
      kind: 'Plan',
      metadata: { name: 'agent-plan', namespace: SYSTEM_UPGRADE.namespace, labels: managed },
      spec: planSpec(
        { matchExpressions: [{ key: SYSTEM_UPGRADE.controlPlaneLabel, operator: 'DoesNotExist' }] },
        { prepare: { image: SYSTEM_UPGRADE.upgradeImage, args: ['prepare', 'server-plan'] } },
      ),
    },
    { provider, dependsOn: [controller, serverPlan] },
  );
}
