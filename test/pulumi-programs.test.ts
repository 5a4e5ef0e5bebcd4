import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AppsSchema, type AppsConfig } from '../src/config/schema.js';
import { infraBootstrap, PULUMI_OPERATOR } from '../src/pulumi/programs/infra-bootstrap.js';
import { infraApps, KURED_SENTINEL, PIRAEUS } from '../src/pulumi/programs/infra-apps.js';
import type { ProgramArgs } from '../src/pulumi/programs/common.js';
import { UserError } from '../src/errors.js';
import { runMocked, unsecret, type MockedResource } from './fixtures/pulumi/mock-run.js';

const TOGGLES = ['pulumiOperator', 'kured', 'piraeus', 'certManager', 'systemUpgradeController'] as const;
const KUBECONFIG = 'apiVersion: v1\nkind: Config\nclusters: []\n';

function args(apps: Record<string, unknown>, over: Partial<ProgramArgs> = {}): ProgramArgs {
  return {
    apps: AppsSchema.parse(apps),
    cluster: { name: 'homelab', kubeconfig: KUBECONFIG },
    nodeCount: 3,
    k3sVersion: 'v1.33.4+k3s1',
    ...over,
  };
}

async function runBoth(a: ProgramArgs): Promise<MockedResource[]> {
  return [...(await runMocked(() => infraBootstrap(a))), ...(await runMocked(() => infraApps(a)))];
}

const key = (r: MockedResource) => `${r.type} ${r.name}`;
const find = (rs: MockedResource[], type: string, name: string) => {
  const r = rs.find((x) => x.type === type && x.name === name);
  assert.ok(r, `expected ${type} ${name} among:\n${rs.map(key).join('\n')}`);
  return r;
};

/** What each app contributes, by type and logical name (the provider is shared). */
const EXPECTED: Record<(typeof TOGGLES)[number], string[]> = {
  pulumiOperator: [
    'kubernetes:core/v1:Namespace pulumi-kubernetes-operator-namespace',
    'kubernetes:helm.sh/v3:Release pulumi-kubernetes-operator',
    'kubernetes:core/v1:ServiceAccount pulumi',
    'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding pulumi:system:auth-delegator',
    'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding pulumi:cluster-admin',
  ],
  kured: ['kubernetes:core/v1:Namespace kured-namespace', 'kubernetes:helm.sh/v3:Release kured'],
  piraeus: [
    'kubernetes:core/v1:Namespace piraeus-datastore-namespace',
    'kubernetes:helm.sh/v3:Release piraeus-operator',
    'kubernetes:piraeus.io/v1:LinstorCluster linstorcluster',
    'kubernetes:piraeus.io/v1:LinstorSatelliteConfiguration no-usr-src-mount',
    'kubernetes:piraeus.io/v1:LinstorSatelliteConfiguration storage-pool',
    'kubernetes:storage.k8s.io/v1:StorageClass linstor-replicated',
  ],
  certManager: ['kubernetes:core/v1:Namespace cert-manager-namespace', 'kubernetes:helm.sh/v3:Release cert-manager'],
  systemUpgradeController: [
    'kubernetes:yaml/v2:ConfigFile system-upgrade-controller-crd',
    'kubernetes:yaml/v2:ConfigFile system-upgrade-controller',
    'kubernetes:apps/v1:DeploymentPatch system-upgrade-controller-flatcar-certs',
    'kubernetes:upgrade.cattle.io/v1:Plan server-plan',
    'kubernetes:upgrade.cattle.io/v1:Plan agent-plan',
  ],
};
const PROVIDER = 'pulumi:providers:kubernetes k3s';

describe('apps programs under Pulumi mocks', () => {
  test('every one of the 32 app selections creates exactly the selected apps, all through the k3s provider', async () => {
    for (let mask = 0; mask < 32; mask++) {
      const selection = Object.fromEntries(TOGGLES.map((t, i) => [t, Boolean(mask & (1 << i))]));
      const rs = await runBoth(args(selection));
      const expected = TOGGLES.filter((t) => selection[t]).flatMap((t) => EXPECTED[t]);
      const bootstrapProvider = selection.pulumiOperator ? [PROVIDER] : [];
      const appsProvider = TOGGLES.some((t) => t !== 'pulumiOperator' && selection[t]) ? [PROVIDER] : [];
      const label = `selection ${JSON.stringify(selection)}`;
      assert.deepEqual(rs.map(key).sort(), [...expected, ...bootstrapProvider, ...appsProvider].sort(), label);
      for (const r of rs.filter((x) => x.type !== 'pulumi:providers:kubernetes')) {
        assert.match(r.provider ?? '', /pulumi:providers:kubernetes::k3s::/, `${key(r)} must use the explicit k3s provider (${label})`);
      }
    }
  });

  test('the provider gets the k3s kubeconfig as a secret, never the default ~/.kube/config', async () => {
    const rs = await runMocked(() => infraApps(args({ kured: true })));
    const p = find(rs, 'pulumi:providers:kubernetes', 'k3s');
    assert.equal(unsecret(p.inputs.kubeconfig), KUBECONFIG);
    assert.notEqual(p.inputs.kubeconfig, KUBECONFIG, 'kubeconfig must be wrapped as a secret');
  });

  test('Pulumi operator: pinned OCI chart in its namespace with CRDs, and a stack service account bound to system:auth-delegator', async () => {
    const rs = await runMocked(() => infraBootstrap(args({ pulumiOperator: { version: '2.9.0', clusterAdmin: false } })));
    const rel = find(rs, 'kubernetes:helm.sh/v3:Release', 'pulumi-kubernetes-operator');
    assert.equal(rel.inputs.chart, 'oci://ghcr.io/pulumi/helm-charts/pulumi-kubernetes-operator');
    assert.equal(rel.inputs.version, '2.9.0');
    assert.equal(rel.inputs.namespace, PULUMI_OPERATOR.namespace);
    assert.notEqual(rel.inputs.skipCrds, true);
    const sa = find(rs, 'kubernetes:core/v1:ServiceAccount', 'pulumi');
    assert.deepEqual(sa.inputs.metadata, { name: 'pulumi', namespace: 'pulumi-kubernetes-operator' });
    const crb = find(rs, 'kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding', 'pulumi:system:auth-delegator');
    assert.deepEqual(crb.inputs.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' });
    assert.deepEqual(crb.inputs.subjects, [{ kind: 'ServiceAccount', name: 'pulumi', namespace: 'pulumi-kubernetes-operator' }]);
    assert.ok(!rs.some((r) => r.name.endsWith(':cluster-admin')), 'clusterAdmin: false binds no cluster-admin');
  });

  test('kured: Flatcar sentinel set explicitly, the reboot window, drain settings and one node at a time', async () => {
    const rs = await runMocked(() =>
      infraApps(
        args({
          kured: {
            version: '6.1.0',
            startTime: '01:30',
            endTime: '04:00',
            rebootDays: ['sa', 'su'],
            timeZone: 'Europe/Berlin',
            drainTimeout: '15m',
            drainGracePeriod: 60,
          },
        }),
      ),
    );
    const rel = find(rs, 'kubernetes:helm.sh/v3:Release', 'kured');
    assert.equal(rel.inputs.chart, 'kured');
    assert.equal(rel.inputs.repositoryOpts.repo, 'https://kubereboot.github.io/charts');
    assert.equal(rel.inputs.version, '6.1.0');
    assert.equal(rel.inputs.namespace, 'kured');
    const c = rel.inputs.values.configuration;
    assert.equal(c.rebootSentinel, '/var/run/reboot-required');
    assert.equal(KURED_SENTINEL, '/var/run/reboot-required');
    assert.equal(c.rebootSentinelCommand, undefined, 'Flatcar writes the sentinel file; no sentinel command');
    assert.deepEqual(
      { startTime: c.startTime, endTime: c.endTime, rebootDays: c.rebootDays, timeZone: c.timeZone },
      { startTime: '01:30', endTime: '04:00', rebootDays: ['sa', 'su'], timeZone: 'Europe/Berlin' },
    );
    assert.equal(c.concurrency, 1);
    assert.equal(c.drainTimeout, '15m');
    assert.equal(c.drainGracePeriod, '60', 'a string: the chart drops falsy values');
    assert.equal(c.forceReboot, false);
  });

  test('piraeus: operator chart with CRDs, LinstorCluster, the Flatcar no-usr-src-mount patch, a file thin pool and the StorageClass', async () => {
    const rs = await runMocked(() =>
      infraApps(
        args({ piraeus: { version: '2.11.0', replicas: 3, defaultStorageClass: true, poolDirectory: '/var/lib/piraeus-datastore/data' } }),
      ),
    );
    const rel = find(rs, 'kubernetes:helm.sh/v3:Release', 'piraeus-operator');
    assert.equal(rel.inputs.chart, PIRAEUS.chart);
    assert.equal(rel.inputs.version, '2.11.0');
    assert.equal(rel.inputs.namespace, 'piraeus-datastore');
    assert.equal(rel.inputs.values.installCRDs, true);
    const cluster = find(rs, 'kubernetes:piraeus.io/v1:LinstorCluster', 'linstorcluster');
    assert.equal(cluster.inputs.apiVersion, 'piraeus.io/v1');

    const flatcar = find(rs, 'kubernetes:piraeus.io/v1:LinstorSatelliteConfiguration', 'no-usr-src-mount');
    assert.equal(flatcar.inputs.metadata.name, 'no-usr-src-mount');
    const pod = flatcar.inputs.spec.podTemplate.spec;
    assert.deepEqual(pod.volumes, [{ name: 'usr-src', $patch: 'delete' }]);
    assert.deepEqual(pod.initContainers, [
      { name: 'drbd-module-loader', volumeMounts: [{ mountPath: '/usr/src', name: 'usr-src', $patch: 'delete' }] },
    ]);

    const pool = find(rs, 'kubernetes:piraeus.io/v1:LinstorSatelliteConfiguration', 'storage-pool');
    assert.deepEqual(pool.inputs.spec.storagePools, [{ name: 'pool1', fileThinPool: { directory: '/var/lib/piraeus-datastore/data' } }]);

    const sc = find(rs, 'kubernetes:storage.k8s.io/v1:StorageClass', 'linstor-replicated');
    assert.equal(sc.inputs.provisioner, 'linstor.csi.linbit.com');
    assert.equal(sc.inputs.parameters['linstor.csi.linbit.com/placementCount'], '3');
    assert.equal(sc.inputs.parameters['linstor.csi.linbit.com/storagePool'], 'pool1');
    assert.equal(sc.inputs.metadata.annotations['storageclass.kubernetes.io/is-default-class'], 'true');

    const notDefault = await runMocked(() => infraApps(args({ piraeus: { replicas: 2 } })));
    const sc2 = find(notDefault, 'kubernetes:storage.k8s.io/v1:StorageClass', 'linstor-replicated');
    assert.equal(sc2.inputs.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'], undefined);
    assert.equal(sc2.inputs.parameters['linstor.csi.linbit.com/placementCount'], '2');
  });

  test('piraeus is refused on fewer nodes than replicas, naming the field', async () => {
    await assert.rejects(
      runMocked(() => infraApps(args({ piraeus: { replicas: 3 } }, { nodeCount: 2 }))),
      (err: unknown) =>
        err instanceof UserError &&
        err.field === 'apps.piraeus.replicas' &&
        /needs at least 3 nodes/.test(err.message) &&
        /has 2/.test(err.message),
    );
  });

  test('piraeus CRs wait for the operator release (they need its CRDs)', async () => {
    const rs = await runMocked(() => infraApps(args({ piraeus: true })), { slow: ['piraeus-operator'] });
    const rel = find(rs, 'kubernetes:helm.sh/v3:Release', 'piraeus-operator');
    for (const n of ['linstorcluster', 'no-usr-src-mount', 'storage-pool']) {
      const cr = rs.find((r) => r.name === n)!;
      assert.ok(cr.requestedAt > rel.registeredAt, `${n} must be requested after the operator release is registered`);
    }
  });

  test('cert-manager: pinned jetstack chart with its CRDs', async () => {
    const rs = await runMocked(() => infraApps(args({ certManager: { version: 'v1.21.1' } })));
    const rel = find(rs, 'kubernetes:helm.sh/v3:Release', 'cert-manager');
    assert.equal(rel.inputs.chart, 'cert-manager');
    assert.equal(rel.inputs.repositoryOpts.repo, 'https://charts.jetstack.io');
    assert.equal(rel.inputs.version, 'v1.21.1');
    assert.equal(rel.inputs.namespace, 'cert-manager');
    assert.equal(rel.inputs.values.crds.enabled, true);
  });

  test('system-upgrade-controller: pinned manifests and the two k3s Plans with selectors, concurrency and cordon', async () => {
    const rs = await runMocked(() => infraApps(args({ systemUpgradeController: { version: 'v0.20.1' } }, { k3sVersion: 'v1.33.4+k3s1' })));
    assert.equal(
      find(rs, 'kubernetes:yaml/v2:ConfigFile', 'system-upgrade-controller-crd').inputs.file,
      'https://github.com/rancher/system-upgrade-controller/releases/download/v0.20.1/crd.yaml',
    );
    assert.equal(
      find(rs, 'kubernetes:yaml/v2:ConfigFile', 'system-upgrade-controller').inputs.file,
      'https://github.com/rancher/system-upgrade-controller/releases/download/v0.20.1/system-upgrade-controller.yaml',
    );
    const server = find(rs, 'kubernetes:upgrade.cattle.io/v1:Plan', 'server-plan').inputs;
    const agent = find(rs, 'kubernetes:upgrade.cattle.io/v1:Plan', 'agent-plan').inputs;
    assert.deepEqual(server.metadata.name, 'server-plan');
    assert.equal(server.metadata.namespace, 'system-upgrade');
    assert.deepEqual(server.spec.nodeSelector, {
      matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'In', values: ['true'] }],
    });
    assert.deepEqual(agent.spec.nodeSelector, {
      matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' }],
    });
    for (const p of [server, agent]) {
      assert.equal(p.spec.concurrency, 1);
      assert.equal(p.spec.cordon, true);
      assert.equal(p.spec.serviceAccountName, 'system-upgrade');
      assert.deepEqual(p.spec.upgrade, { image: 'rancher/k3s-upgrade' });
      assert.equal(p.spec.version, 'v1.33.4+k3s1');
      assert.equal(p.spec.channel, undefined);
    }
    assert.equal(server.spec.prepare, undefined);
    assert.deepEqual(agent.spec.prepare, { image: 'rancher/k3s-upgrade', args: ['prepare', 'server-plan'] });
  });

  test('Plans follow a channel instead of the pinned version when the config says so', async () => {
    const channel = 'https://update.k3s.io/v1-release/channels/stable';
    const rs = await runMocked(() => infraApps(args({ systemUpgradeController: { channel } })));
    for (const n of ['server-plan', 'agent-plan']) {
      const spec = find(rs, 'kubernetes:upgrade.cattle.io/v1:Plan', n).inputs.spec;
      assert.equal(spec.channel, channel);
      assert.equal(spec.version, undefined);
    }
  });

  test('Plans without a pinned version or channel are refused with the fix', async () => {
    await assert.rejects(
      runMocked(() => infraApps(args({ systemUpgradeController: true }, { k3sVersion: undefined }))),
      (err: unknown) => err instanceof UserError && /cluster\.k3sVersion/.test(err.fix ?? ''),
    );
  });

  test('order: Plans wait for the controller, the agent plan waits for the server plan', async () => {
    const rs = await runMocked(() => infraApps(args({ systemUpgradeController: true })), {
      slow: ['server-plan', 'system-upgrade-controller', 'system-upgrade-controller-crd'],
    });
    const at = (n: string) => rs.find((r) => r.name === n)!;
    assert.ok(at('system-upgrade-controller').requestedAt > at('system-upgrade-controller-crd').registeredAt, 'controller after its CRDs');
    assert.ok(at('server-plan').requestedAt > at('system-upgrade-controller').registeredAt, 'server plan after the controller');
    assert.ok(at('agent-plan').requestedAt > at('server-plan').registeredAt, 'agent plan after the server plan');
  });

  test('kured: drainGracePeriod 0 reaches the chart as "0" (a numeric 0 is dropped by its `if`), unset sends nothing', async () => {
    for (const [given, sent] of [
      [0, '0'],
      [-1, '-1'],
      [30, '30'],
    ] as const) {
      const rs = await runMocked(() => infraApps(args({ kured: { drainGracePeriod: given } })));
      assert.equal(find(rs, 'kubernetes:helm.sh/v3:Release', 'kured').inputs.values.configuration.drainGracePeriod, sent);
    }
    const rs = await runMocked(() => infraApps(args({ kured: true })));
    assert.ok(!('drainGracePeriod' in find(rs, 'kubernetes:helm.sh/v3:Release', 'kured').inputs.values.configuration));
  });

  test('system-upgrade-controller on Flatcar: the CA directories /etc/ssl links into are mounted read-only into the controller', async () => {
    const rs = await runMocked(() => infraApps(args({ systemUpgradeController: true })));
    const patch = find(rs, 'kubernetes:apps/v1:DeploymentPatch', 'system-upgrade-controller-flatcar-certs').inputs;
    assert.deepEqual(patch.metadata, {
      name: 'system-upgrade-controller',
      namespace: 'system-upgrade',
      annotations: { 'pulumi.com/patchForce': 'true' },
    });
    const pod = patch.spec.template.spec;
    const paths = pod.volumes.map((v: any) => v.hostPath.path).sort();
    assert.deepEqual(paths, ['/usr/share/ca-certificates', '/usr/share/ssl']);
    assert.equal(pod.containers.length, 1);
    assert.equal(pod.containers[0].name, 'system-upgrade-controller');
    for (const v of pod.volumes) {
      const m = pod.containers[0].volumeMounts.find((x: any) => x.name === v.name);
      assert.ok(m, `volume ${v.name} is mounted`);
      assert.equal(m.mountPath, v.hostPath.path, 'mounted at the same path, so the /etc/ssl symlinks resolve');
      assert.equal(m.readOnly, true);
    }
  });

  test('system-upgrade-controller: the server Plan tolerates server taints, the agent Plan drains', async () => {
    const rs = await runMocked(() => infraApps(args({ systemUpgradeController: true })));
    const server = find(rs, 'kubernetes:upgrade.cattle.io/v1:Plan', 'server-plan').inputs.spec;
    const agent = find(rs, 'kubernetes:upgrade.cattle.io/v1:Plan', 'agent-plan').inputs.spec;
    const keys = server.tolerations.map((t: any) => `${t.key}:${t.effect ?? ''}`).sort();
    assert.deepEqual(keys, [
      'CriticalAddonsOnly:',
      'node-role.kubernetes.io/control-plane:NoSchedule',
      'node-role.kubernetes.io/etcd:NoExecute',
      'node-role.kubernetes.io/master:NoSchedule',
    ]);
    assert.ok(server.tolerations.every((t: any) => t.operator === 'Exists'));
    assert.equal(server.drain, undefined, 'servers are cordoned, not drained (as upstream)');
    assert.deepEqual(agent.drain, { force: true, skipWaitForDeleteTimeout: 60 });
    assert.equal(agent.tolerations, undefined);
  });

  test('the pinned defaults are the current releases', () => {
    const d = AppsSchema.parse({ pulumiOperator: true, kured: true, piraeus: true, certManager: true, systemUpgradeController: true });
    assert.deepEqual(
      [d.pulumiOperator.version, d.kured.version, d.piraeus.version, d.certManager.version, d.systemUpgradeController.version],
      ['2.9.0', '6.1.0', '2.11.0', 'v1.21.1', 'v0.20.1'],
    );
  });

  test('unselected apps create nothing, not even a provider', async () => {
    const none = args({});
    assert.deepEqual(await runMocked(() => infraBootstrap(none)), []);
    assert.deepEqual(await runMocked(() => infraApps(none)), []);
    const onlyOperator = await runMocked(() => infraApps(args({ pulumiOperator: true })));
    assert.deepEqual(onlyOperator, [], 'the operator lives in infra-bootstrap, not infra-apps');
  });
});

// Keep the type import used (AppsConfig is the programs' contract).
export type { AppsConfig };
