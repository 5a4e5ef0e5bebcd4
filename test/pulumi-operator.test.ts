/**
 * Operator mode under Pulumi's mocks: infra-bootstrap hands the operator a Program and a Stack that
 * install the same apps local mode would; the Program's YAML parses; the Stack's fields are valid
 * against the operator's CRD schema (vendored with its source and version).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { AppsSchema } from '../src/config/schema.js';
import { infraBootstrap, PULUMI_OPERATOR } from '../src/pulumi/programs/infra-bootstrap.js';
import { infraApps, INFRA_APPS_KEYS } from '../src/pulumi/programs/infra-apps.js';
import {
  OPERATOR_STACK,
  YAML_CUSTOM_RESOURCE,
  inClusterKubeconfig,
  programBody,
  renderProgramYaml,
  stackSpec,
} from '../src/pulumi/programs/operator.js';
import type { ProgramArgs } from '../src/pulumi/programs/common.js';
import { kubernetesPluginVersion } from '../src/pulumi/plugin.js';
import { runMocked, unsecret, type MockedResource } from './fixtures/pulumi/mock-run.js';

const KUBECONFIG = 'apiVersion: v1\nkind: Config\nclusters: []\n';
const PASSPHRASE = 'in-cluster-passphrase-0123456789';

function args(apps: Record<string, unknown>, over: Partial<ProgramArgs> = {}): ProgramArgs {
  return {
    apps: AppsSchema.parse({ mode: 'operator', pulumiOperator: true, ...apps }),
    cluster: { name: 'ha', kubeconfig: KUBECONFIG },
    nodeCount: 6,
    k3sVersion: 'v1.33.4+k3s1',
    operator: { passphrase: PASSPHRASE },
    ...over,
  };
}

interface VendoredCrd {
  source: { repo: string; ref: string; path: string; commit: string };
  group: string;
  kind: string;
  version: string;
  schema: Record<string, unknown>;
}
const crd = (kind: string): VendoredCrd =>
  JSON.parse(readFileSync(new URL(`../vendor/pulumi-operator/${kind}.schema.json`, import.meta.url), 'utf8'));
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
const validateStack = ajv.compile(crd('stack').schema);
const validateProgram = ajv.compile(crd('program').schema);

const SDK_FILLED = ['apiVersion', 'kind', 'compat'];

/** The 16 selections of the infra apps. */
const selections = Array.from({ length: 16 }, (_, mask) =>
  Object.fromEntries(INFRA_APPS_KEYS.map((k, i) => [k, Boolean(mask & (1 << i))])),
);

const find = (rs: MockedResource[], type: string, name: string) => {
  const r = rs.find((x) => x.type === type && x.name === name);
  assert.ok(r, `expected ${type} ${name} among:\n${rs.map((x) => `${x.type} ${x.name}`).join('\n')}`);
  return r;
};

/** A resource of the generated YAML program as the SDK would register it: type (custom resources resolved) and inputs. */
function yamlResources(program: {
  resources: Record<string, { type: string; properties?: Record<string, any>; options?: Record<string, any> }>;
}) {
  return Object.entries(program.resources)
    .filter(([, r]) => r.type !== 'pulumi:providers:kubernetes')
    .map(([name, r]) => ({
      name,
      type: r.type === YAML_CUSTOM_RESOURCE ? `kubernetes:${r.properties!.apiVersion}:${r.properties!.kind}` : r.type,
      inputs: r.properties ?? {},
      options: r.options ?? {},
    }));
}

describe('operator mode', () => {
  test('the vendored CRD schemas record their source and version', () => {
    for (const [file, kind] of [
      ['stack', 'Stack'],
      ['program', 'Program'],
    ]) {
      const c = crd(file);
      assert.equal(c.kind, kind);
      assert.equal(c.group, 'pulumi.com');
      assert.equal(c.version, 'v1');
      assert.equal(
        c.source.ref,
        `v${AppsSchema.parse({ pulumiOperator: true }).pulumiOperator.version}`,
        'the schema of the pinned operator',
      );
      assert.match(c.source.commit, /^[0-9a-f]{40}$/);
    }
  });

  test('for every selection: the Program declares exactly the resources, types and inputs local mode registers', async () => {
    for (const sel of selections) {
      const a = args(sel);
      const label = JSON.stringify(sel);
      const local = await runMocked(() => infraApps({ ...a, apps: { ...a.apps, mode: 'local' } }));
      const boot = await runMocked(() => infraBootstrap(a));
      const anyApp = Object.values(sel).some(Boolean);
      const programRes = boot.find((r) => r.type === 'kubernetes:pulumi.com/v1:Program');
      if (!anyApp) {
        assert.equal(programRes, undefined, `no Program without apps (${label})`);
        assert.ok(!boot.some((r) => r.type === 'kubernetes:pulumi.com/v1:Stack'), `no Stack without apps (${label})`);
        continue;
      }
      assert.ok(programRes, label);
      // The Program's YAML, as the cluster gets it, parses back to the program registered.
      const text = renderProgramYaml(a, PULUMI_OPERATOR.namespace);
      const manifest = parse(text) as { program: Parameters<typeof yamlResources>[0] };
      assert.deepEqual(manifest.program, programRes.inputs.program, label);
      assert.ok(validateProgram(manifest), `${label}: ${ajv.errorsText(validateProgram.errors)}`);

      const fromYaml = yamlResources(manifest.program);
      const localRes = local.filter((r) => r.type !== 'pulumi:providers:kubernetes');
      assert.deepEqual(fromYaml.map((r) => `${r.type} ${r.name}`).sort(), localRes.map((r) => `${r.type} ${r.name}`).sort(), label);
      for (const r of localRes) {
        const y = fromYaml.find((x) => x.name === r.name)!;
        // Typed SDK classes fill in apiVersion and kind (and Release `compat`) themselves; so does the provider for YAML.
        const expected = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => k in y.inputs || !SDK_FILLED.includes(k)));
        assert.deepEqual(y.inputs, expected, `${label}: ${r.type} ${r.name} has the same inputs in both modes`);
        assert.equal(y.options.provider, '${k3s}', `${r.name} goes through the explicit provider`);
      }
    }
  });

  test('the Program keeps the dependencies and pins the provider plugin the local SDK uses', () => {
    const body = programBody(
      [
        { name: 'a', type: 'kubernetes:core/v1:Namespace', properties: { metadata: { name: 'a' } } },
        { name: 'b', type: 'kubernetes:helm.sh/v3:Release', properties: { note: 'keep ${literal}' }, dependsOn: ['a'] },
      ],
      '4.34.2',
    );
    assert.deepEqual(body.resources.k3s, {
      type: 'pulumi:providers:kubernetes',
      properties: { kubeconfig: '${kubeconfig}', enableServerSideApply: true },
      options: { version: '4.34.2' },
    });
    assert.deepEqual(body.resources.b.options, { provider: '${k3s}', dependsOn: ['${a}'] });
    assert.equal(body.resources.b.properties!.note, 'keep $${literal}', 'a literal ${ is escaped, not interpolated');
    assert.deepEqual(body.configuration, { kubeconfig: { type: 'String' } });
    assert.throws(() => programBody([{ name: 'k3s', type: 'x', properties: {} }]), /duplicate/);
    assert.equal(programBody([]).resources.k3s.options!.version, kubernetesPluginVersion());
  });

  test('the Stack points at the Program, keeps the apps applied, and is valid against the CRD schema', async () => {
    const a = args({ kured: true, certManager: true, systemUpgradeController: true, piraeus: { replicas: 3 } });
    const rs = await runMocked(() => infraBootstrap(a));
    const stack = find(rs, 'kubernetes:pulumi.com/v1:Stack', 'infra-apps-stack').inputs;
    assert.deepEqual(stack.metadata, { name: 'infra-apps', namespace: PULUMI_OPERATOR.namespace });
    const s = stack.spec;
    assert.deepEqual(s.programRef, { name: 'infra-apps' });
    assert.equal(s.stack, 'ha');
    assert.equal(s.serviceAccountName, 'pulumi');
    assert.equal(s.backend, 'file:///state');
    assert.equal(s.secretsProvider, 'passphrase');
    assert.deepEqual(s.envRefs.PULUMI_CONFIG_PASSPHRASE, {
      type: 'Secret',
      secret: { name: OPERATOR_STACK.passphraseSecret, key: 'passphrase' },
    });
    assert.deepEqual(s.secretsRef.kubeconfig, { type: 'Secret', secret: { name: OPERATOR_STACK.kubeconfigSecret, key: 'kubeconfig' } });
    assert.equal(s.refresh, true, 'refresh finds apps deleted by hand');
    assert.equal(s.continueResyncOnCommitMatch, true);
    assert.ok(s.resyncFrequencySeconds >= 60);
    assert.equal(s.destroyOnFinalize, false);
    const pod = s.workspaceTemplate.spec.podTemplate.spec;
    assert.deepEqual(pod.volumes, [{ name: 'state', persistentVolumeClaim: { claimName: OPERATOR_STACK.statePvc } }]);
    assert.deepEqual(pod.containers, [{ name: 'pulumi', volumeMounts: [{ name: 'state', mountPath: '/state' }] }]);
    assert.ok(validateStack(stack), ajv.errorsText(validateStack.errors));

    const pvc = find(rs, 'kubernetes:core/v1:PersistentVolumeClaim', OPERATOR_STACK.statePvc).inputs;
    assert.deepEqual(pvc.spec, { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } });
    assert.equal(pvc.metadata.namespace, PULUMI_OPERATOR.namespace);
  });

  test('the schema check catches a wrong Stack field', () => {
    const bad = {
      apiVersion: 'pulumi.com/v1',
      kind: 'Stack',
      metadata: { name: 'infra-apps' },
      spec: { ...stackSpec(args({ kured: true })), refresh: 'yes' },
    };
    assert.equal(validateStack(bad), false);
    const noStack = { apiVersion: 'pulumi.com/v1', kind: 'Stack', metadata: { name: 'x' }, spec: { programRef: { name: 'infra-apps' } } };
    assert.equal(validateStack(noStack), false, 'spec.stack is required');
  });

  test('the passphrase and the kubeconfig reach the cluster only as Pulumi secrets in Secrets, never in the Program', async () => {
    const rs = await runMocked(() => infraBootstrap(args({ kured: true })));
    const pass = find(rs, 'kubernetes:core/v1:Secret', OPERATOR_STACK.passphraseSecret).inputs;
    assert.notDeepEqual(pass.stringData, { passphrase: PASSPHRASE }, 'wrapped as a secret');
    assert.deepEqual(unsecret(pass.stringData), { passphrase: PASSPHRASE });
    const kc = find(rs, 'kubernetes:core/v1:Secret', OPERATOR_STACK.kubeconfigSecret).inputs;
    const kubeconfig = parse((unsecret(kc.stringData) as { kubeconfig: string }).kubeconfig);
    assert.equal(kubeconfig.clusters[0].cluster.server, 'https://kubernetes.default.svc');
    assert.equal(
      kubeconfig.users[0].user.tokenFile,
      '/var/run/secrets/kubernetes.io/serviceaccount/token',
      "the workspace service account, not this machine's admin credentials",
    );
    assert.equal(inClusterKubeconfig('pulumi').includes(KUBECONFIG), false);
    const program = JSON.stringify(find(rs, 'kubernetes:pulumi.com/v1:Program', 'infra-apps-program').inputs);
    assert.ok(!program.includes(PASSPHRASE));
    assert.ok(!program.includes('tokenFile'));
  });

  test('order: the Stack waits for the operator release (CRDs), its service account, Secrets, state volume and Program', async () => {
    const slow = [PULUMI_OPERATOR.release, 'infra-apps-program', OPERATOR_STACK.statePvc, OPERATOR_STACK.passphraseSecret];
    const rs = await runMocked(() => infraBootstrap(args({ kured: true })), { slow });
    const at = (n: string) => rs.find((r) => r.name === n)!;
    for (const dep of [...slow, 'pulumi', OPERATOR_STACK.kubeconfigSecret])
      assert.ok(at('infra-apps-stack').requestedAt > at(dep).registeredAt, `Stack after ${dep}`);
    assert.ok(at('infra-apps-program').requestedAt > at(PULUMI_OPERATOR.release).registeredAt, 'Program after the operator (its CRD)');
  });

  test('a configured backend replaces the state volume; a StorageClass is passed on', async () => {
    const s3 = await runMocked(() => infraBootstrap(args({ kured: true, backend: { url: 's3://bucket/infra' } })));
    const stack = find(s3, 'kubernetes:pulumi.com/v1:Stack', 'infra-apps-stack').inputs;
    assert.equal(stack.spec.backend, 's3://bucket/infra');
    assert.equal(stack.spec.workspaceTemplate, undefined);
    assert.ok(!s3.some((r) => r.type === 'kubernetes:core/v1:PersistentVolumeClaim'));
    assert.ok(validateStack(stack), ajv.errorsText(validateStack.errors));
    const sc = await runMocked(() => infraBootstrap(args({ kured: true, backend: { storageClass: 'linstor-replicated', size: '2Gi' } })));
    assert.deepEqual(find(sc, 'kubernetes:core/v1:PersistentVolumeClaim', OPERATOR_STACK.statePvc).inputs.spec, {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '2Gi' } },
      storageClassName: 'linstor-replicated',
    });
  });

  test('apps.source.git: the Stack runs the named repository, and no Program is generated', async () => {
    const rs = await runMocked(() =>
      infraBootstrap(args({ source: { git: { url: 'https://git.example.lan/infra/apps.git', branch: 'prod', dir: 'infra-apps' } } })),
    );
    assert.ok(!rs.some((r) => r.type === 'kubernetes:pulumi.com/v1:Program'));
    const stack = find(rs, 'kubernetes:pulumi.com/v1:Stack', 'infra-apps-stack').inputs;
    assert.equal(stack.spec.projectRepo, 'https://git.example.lan/infra/apps.git');
    assert.equal(stack.spec.branch, 'refs/heads/prod');
    assert.equal(stack.spec.repoDir, 'infra-apps');
    assert.equal(stack.spec.programRef, undefined);
    assert.ok(validateStack(stack), ajv.errorsText(validateStack.errors));
  });

  test('local mode adds nothing for the operator to run', async () => {
    const rs = await runMocked(() => infraBootstrap(args({ mode: 'local', kured: true })));
    assert.ok(!rs.some((r) => /pulumi\.com\/v1|Secret|PersistentVolumeClaim/.test(r.type)), rs.map((r) => r.type).join(', '));
  });
});
