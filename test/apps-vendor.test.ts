/**
 * The values we hand each chart are keys the chart reads: checked against the keys of the chart's own
 * values.yaml, vendored under vendor/charts with the repository, path and commit they were read from.
 * Likewise kube-vip's environment variables against the names its config reads (vendor/kube-vip).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AppsSchema } from '../src/config/schema.js';
import { CERT_MANAGER, KURED, PIRAEUS, certManagerValues, kuredValues, piraeusValues } from '../src/pulumi/programs/infra-apps.js';
import { PULUMI_OPERATOR, operatorValues } from '../src/pulumi/programs/infra-bootstrap.js';
import { kubeVipObjects, KUBE_VIP_IMAGE } from '../src/k3s/kube-vip.js';

interface ChartKeys {
  chart: string;
  version: string;
  chartSource: string;
  source: { repo: string; ref: string; path: string; commit: string };
  keys: string[];
  open: string[];
}
const chartKeys = (name: string): ChartKeys => JSON.parse(readFileSync(new URL(`../vendor/charts/${name}.json`, import.meta.url), 'utf8'));

/** Dot paths of `values` that the chart does not declare (open maps and lists take anything below them). */
function unknownKeys(values: Record<string, unknown>, chart: ChartKeys, prefix = ''): string[] {
  const keys = new Set(chart.keys);
  const open = new Set(chart.open);
  const bad: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (!keys.has(path)) bad.push(path);
    else if (v && typeof v === 'object' && !Array.isArray(v) && !open.has(path))
      bad.push(...unknownKeys(v as Record<string, unknown>, chart, path));
  }
  return bad;
}

const defaults = AppsSchema.parse({ pulumiOperator: true, kured: true, piraeus: true, certManager: true, systemUpgradeController: true });

describe('vendored chart values keys', () => {
  test('each vendored list records where it was read from, and the chart it describes', () => {
    for (const [name, source] of [
      ['kured', KURED.repo],
      ['cert-manager', CERT_MANAGER.repo],
      ['piraeus', PIRAEUS.chart],
      ['pulumi-kubernetes-operator', PULUMI_OPERATOR.chart],
    ]) {
      const c = chartKeys(name);
      assert.match(c.source.commit, /^[0-9a-f]{40}$/, name);
      assert.match(c.source.repo, /^https:\/\/github\.com\//, name);
      assert.match(c.source.path, /values\.yaml$/, name);
      assert.equal(c.chartSource, source, name);
      assert.ok(c.keys.length > 20, `${name}: a real key list`);
    }
  });

  test('the pinned chart versions are the versions whose keys are vendored (piraeus: see its note)', () => {
    assert.equal(chartKeys('kured').version, defaults.kured.version);
    assert.equal(chartKeys('cert-manager').version, defaults.certManager.version);
    assert.equal(chartKeys('pulumi-kubernetes-operator').version, defaults.pulumiOperator.version);
    assert.match((chartKeys('piraeus') as unknown as { note: string }).note, new RegExp(defaults.piraeus.version.replace(/\./g, '\\.')));
  });

  test('kured: every value we set is a key of the chart, with every optional setting on', () => {
    const k = AppsSchema.parse({ kured: { drainGracePeriod: 0, forceReboot: true } }).kured;
    assert.deepEqual(unknownKeys(kuredValues(k), chartKeys('kured')), []);
  });

  test('cert-manager, piraeus and the operator: every value we set is a key of the chart', () => {
    assert.deepEqual(unknownKeys(certManagerValues(), chartKeys('cert-manager')), []);
    assert.deepEqual(unknownKeys(piraeusValues(), chartKeys('piraeus')), []);
    assert.deepEqual(unknownKeys(operatorValues(), chartKeys('pulumi-kubernetes-operator')), []);
  });

  test('the check catches a key the chart does not read', () => {
    assert.deepEqual(
      unknownKeys({ configuration: { drainGracePeriod: '1', rebootSentinal: 'x' }, tolerations: [{ key: 'a' }] }, chartKeys('kured')),
      ['configuration.rebootSentinal'],
    );
    assert.deepEqual(unknownKeys({ crds: { enable: true } }, chartKeys('cert-manager')), ['crds.enable']);
  });

  test('kured passes settings only when truthy: no value we set is a falsy scalar the chart would drop unnoticed', () => {
    const k = AppsSchema.parse({ kured: { drainGracePeriod: 0 } }).kured;
    const c = kuredValues(k).configuration as Record<string, unknown>;
    for (const [key, v] of Object.entries(c)) {
      // forceReboot false is the chart's own default, so dropping it changes nothing.
      if (key === 'forceReboot') continue;
      assert.ok(v !== 0 && v !== '' && v !== null, `configuration.${key} = ${JSON.stringify(v)} would be dropped by the chart`);
    }
  });
});

describe('kube-vip', () => {
  const vendored = JSON.parse(readFileSync(new URL('../vendor/kube-vip/env.json', import.meta.url), 'utf8')) as {
    image: string;
    env: string[];
    source: { commit: string };
  };
  test('the image is the vendored release, and every environment variable we set is one kube-vip reads', () => {
    assert.equal(KUBE_VIP_IMAGE, vendored.image);
    assert.match(vendored.source.commit, /^[0-9a-f]{40}$/);
    const ds = kubeVipObjects({ vip: '192.168.50.10', interface: 'eth0' }).find((o) => o.kind === 'DaemonSet') as any;
    const env: Array<{ name: string; value?: string }> = ds.spec.template.spec.containers[0].env;
    const unknown = env.map((e) => e.name).filter((n) => !vendored.env.includes(n));
    assert.deepEqual(unknown, []);
    assert.equal(env.find((e) => e.name === 'vip_subnet')?.value, '32');
    assert.ok(!env.some((e) => e.name === 'vip_cidr'), 'vip_cidr is no longer read');
  });
});
