import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config } from '../src/config/schema.js';
import { ConfigError, RemoteError, UserError } from '../src/errors.js';
import { appSteps } from '../steps/apps/index.js';
import { withoutApps } from '../src/config/apps.js';
import { buildSteps } from '../steps/index.js';
import { STEP } from '../steps/ids.js';
import { PASSPHRASE_SECRET, type PulumiBackend } from '../steps/apps/stack.js';
import type { AppsStackOptions } from '../src/pulumi/automation.js';
import type { PulumiCliStatus } from '../src/pulumi/cli.js';
import type { RunOptions, StepContext, StepOutputs } from '../steps/types.js';
import type { EngineEvent } from '@pulumi/pulumi/automation/index.js';
import { runMocked } from './fixtures/pulumi/mock-run.js';
import { kubernetesPluginStatus } from '../src/pulumi/plugin.js';

function config(apps: Record<string, unknown>, extra: Record<string, unknown> = {}): Config {
  return ConfigSchema.parse({
    cluster: { name: 'homelab', k3sVersion: 'v1.33.4+k3s1' },
    proxmox: { url: 'https://pve.example.lan:8006', tokenId: 'root@pam!x', tokenSecret: '0d5c7a4e-1111-2222-3333-444455556666' },
    nodes: { servers: { count: 1 }, agents: { count: 2 } },
    apps,
    ...extra,
  });
}
const OPTS: RunOptions = { parallel: 4 };

const MISSING: PulumiCliStatus = { found: false, reason: 'the `pulumi` command is not on PATH' };
const FOUND = { found: true, version: '3.200.0', path: '/usr/local/bin/pulumi', command: {} } as unknown as PulumiCliStatus;

class FakePulumi implements PulumiBackend {
  calls: Array<{ op: 'preview' | 'up'; o: AppsStackOptions }> = [];
  constructor(
    public cli: PulumiCliStatus,
    public pending: number,
    private events: EngineEvent[] = [],
  ) {}
  ups = 0;
  async detect() {
    return this.cli;
  }
  applied() {
    return this.ups > 0 || this.pending === 0;
  }
  async preview(o: AppsStackOptions) {
    this.calls.push({ op: 'preview', o });
    return { changes: this.pending ? { create: this.pending } : { same: 3 }, changed: this.pending };
  }
  async up(o: AppsStackOptions) {
    this.calls.push({ op: 'up', o });
    this.ups++;
    for (const e of this.events) o.onEvent?.(e);
    const changes = this.pending ? { create: this.pending } : { same: 3 };
    this.pending = 0;
    return { changes, changed: Object.values(changes)[0] };
  }
}

interface FakeCtx extends StepContext {
  lines: Array<{ line: string; level: string }>;
  secretsMade: string[];
}

function ctx(cfg: Config, dir: string, over: { demo?: boolean; outputs?: Record<string, StepOutputs> } = {}): FakeCtx {
  const secrets = new Map<string, string>();
  const lines: FakeCtx['lines'] = [];
  const secretsMade: string[] = [];
  const outputs = over.outputs ?? {};
  return {
    config: cfg,
    clusterDir: join(dir, 'clusters', cfg.cluster.name),
    stateDir: dir,
    outputs: <T extends StepOutputs>(id: string) => outputs[id] as T | undefined,
    outputsMatching: (prefix: string) =>
      Object.entries(outputs)
        .filter(([id]) => id.startsWith(prefix))
        .map(([id, o]) => ({ id, outputs: o })),
    log: (line, level = 'info') => lines.push({ line, level }),
    progress: () => {},
    signal: new AbortController().signal,
    options: { parallel: 4, demo: over.demo },
    services: {
      proxmox: () => Promise.reject(new Error('not used')),
      ssh: {} as StepContext['services']['ssh'],
      secrets: {
        get: (n) => secrets.get(n),
        set: (n, v) => void secrets.set(n, v),
        getOrCreate: (n, make) => {
          if (!secrets.has(n)) {
            secrets.set(n, make());
            secretsMade.push(n);
          }
          return secrets.get(n)!;
        },
      },
      pins: { get: () => undefined, set: () => {} },
      now: () => Date.now(),
      sleep: () => Promise.resolve(),
    },
    lines,
    secretsMade,
  };
}

describe('apps steps', () => {
  test('no apps selected: no steps at all (also after "skip the apps now")', () => {
    assert.deepEqual(appSteps(config({}), OPTS), []);
    const all = config({ pulumiOperator: true, kured: true, piraeus: true, certManager: true, systemUpgradeController: true });
    assert.equal(appSteps(all, OPTS).length, 3);
    assert.deepEqual(appSteps(withoutApps(all), OPTS), []);
    assert.equal(all.apps.kured.enabled, true, 'the original config is not changed');
  });

  test('ids, needs and groups: preflight first with no needs, bootstrap before infra, both after the kubeconfig', () => {
    const all = appSteps(config({ pulumiOperator: true, kured: true }), OPTS);
    assert.deepEqual(
      all.map((s) => [s.id, s.needs, s.group]),
      [
        ['apps:preflight', [], 'apps'],
        [STEP.appsBootstrap, [STEP.kubeconfig, 'apps:preflight'], 'apps'],
        [STEP.appsInfra, [STEP.kubeconfig, 'apps:preflight', STEP.appsBootstrap], 'apps'],
      ],
    );
    assert.deepEqual(
      appSteps(config({ pulumiOperator: true }), OPTS).map((s) => s.id),
      ['apps:preflight', STEP.appsBootstrap],
    );
    const infraOnly = appSteps(config({ certManager: true }), OPTS);
    assert.deepEqual(
      infraOnly.map((s) => [s.id, s.needs]),
      [
        ['apps:preflight', []],
        [STEP.appsInfra, [STEP.kubeconfig, 'apps:preflight']],
      ],
    );
  });

  test('in the full plan, every root step waits for the preflight, so a missing CLI stops the run before any VM', () => {
    const steps = buildSteps(config({ kured: true }), OPTS);
    const gate = steps.find((s) => s.id === 'apps:preflight')!;
    assert.deepEqual(gate.needs, []);
    const roots = steps.filter((s) => s !== gate && !s.needs.some((n) => n !== 'apps:preflight'));
    for (const s of roots) assert.ok(s.needs.includes('apps:preflight'), `${s.id} must wait for the preflight`);
    assert.equal(steps.filter((s) => s.needs.length === 0).length, 1, 'the preflight is the only root');
  });

  test('kured with locksmithd unmasked or a reboot strategy is refused at plan time, naming both settings', () => {
    for (const ignition of [{ rebootStrategy: 'reboot' }, { maskedUnits: ['docker.service'] }]) {
      const c = config({ kured: true }, { flatcar: { ignition } });
      assert.throws(
        () => appSteps(c, OPTS),
        (err: unknown) =>
          err instanceof ConfigError &&
          /flatcar\.ignition\.maskedUnits/.test(err.message) &&
          /flatcar\.ignition\.rebootStrategy/.test(err.message) &&
          /locksmithd/.test(err.message),
      );
    }
    // Without kured, the same Flatcar settings are fine.
    assert.doesNotThrow(() => appSteps(config({ certManager: true }, { flatcar: { ignition: { rebootStrategy: 'reboot' } } }), OPTS));
  });

  test('piraeus with more replicas than nodes is refused at plan time', () => {
    assert.throws(
      () => appSteps(config({ piraeus: { replicas: 4 } }), OPTS),
      (err: unknown) => err instanceof ConfigError && /apps\.piraeus\.replicas/.test(err.message) && /has 3/.test(err.message),
    );
  });

  test('preflight without the CLI: skipped under --demo, refused with the install message otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-'));
    try {
      const cfg = config({ kured: true });
      const [pre, infra] = appSteps(cfg, OPTS, { pulumi: new FakePulumi(MISSING, 1) });
      const demo = await pre.check(ctx(cfg, dir, { demo: true }));
      assert.ok('skip' in demo && /Pulumi CLI is not installed/.test(demo.reason));
      const demoInfra = await infra.check(ctx(cfg, dir, { demo: true }));
      assert.ok('skip' in demoInfra, 'the app steps are skipped too under --demo');

      const real = ctx(cfg, dir);
      assert.deepEqual(await pre.check(real), { done: false, reason: 'the `pulumi` command is not on PATH' });
      await assert.rejects(
        pre.run(real),
        (err: unknown) => err instanceof UserError && /curl -fsSL https:\/\/get\.pulumi\.com \| sh/.test(err.fix ?? ''),
      );
      await assert.rejects(infra.run(real), (err: unknown) => err instanceof UserError && /Pulumi CLI is required/.test(err.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the plan line of the preflight already warns when `pulumi` is not on PATH', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-'));
    const saved = process.env.PATH;
    try {
      const cfg = config({ kured: true, certManager: true });
      const [pre] = appSteps(cfg, OPTS);
      process.env.PATH = dir;
      assert.match(
        pre.describe(ctx(cfg, dir)),
        /kured, cert-manager.*NOT FOUND on PATH, so the run will stop here before any VM is created \(install: curl -fsSL https:\/\/get\.pulumi\.com \| sh\)/,
      );
      assert.match(pre.describe(ctx(cfg, dir, { demo: true })), /not found on PATH, so the demo skips the apps$/);
      writeFileSync(join(dir, 'pulumi'), '#!/bin/sh\n', { mode: 0o755 });
      assert.doesNotMatch(pre.describe(ctx(cfg, dir)), /not found/i);
    } finally {
      process.env.PATH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('preflight with the CLI is done and records the version and whether the Kubernetes plugin is installed', async () => {
    const cfg = config({ kured: true });
    const plugin = kubernetesPluginStatus({ env: { PULUMI_HOME: '/nonexistent' }, version: '4.34.2', platform: 'linux', arch: 'x64' });
    const [pre] = appSteps(cfg, OPTS, { pulumi: new FakePulumi(FOUND, 0), plugin: () => ({ ...plugin, installed: true }) });
    const c = ctx(cfg, tmpdir());
    const r = await pre.check(c);
    assert.ok('done' in r && r.done);
    assert.deepEqual(r.outputs, {
      pulumiVersion: '3.200.0',
      pulumiPath: '/usr/local/bin/pulumi',
      kubernetesPlugin: { version: '4.34.2', installed: true },
    });
    assert.match(r.reason ?? '', /^pulumi 3\.200\.0 at \/usr\/local\/bin\/pulumi; Pulumi Kubernetes plugin v4\.34\.2 is installed/);
    assert.deepEqual(
      c.lines.filter((l) => l.level === 'warn'),
      [],
    );
  });

  test('preflight says before any VM when the Kubernetes plugin is missing, and how to install it offline', async () => {
    const cfg = config({ kured: true });
    const plugin = kubernetesPluginStatus({ env: { PULUMI_HOME: '/nonexistent' }, version: '4.34.2', platform: 'linux', arch: 'x64' });
    assert.equal(plugin.installed, false);
    const [pre] = appSteps(cfg, OPTS, { pulumi: new FakePulumi(FOUND, 0), plugin: () => plugin });
    const c = ctx(cfg, tmpdir());
    const r = await pre.check(c);
    assert.ok('done' in r && r.done, 'not fatal: Pulumi downloads it when online');
    const warn = c.lines.find((l) => l.level === 'warn')?.line ?? '';
    assert.match(warn, /Kubernetes plugin v4\.34\.2 is NOT installed/);
    assert.match(
      warn,
      /https:\/\/github\.com\/pulumi\/pulumi-kubernetes\/releases\/download\/v4\.34\.2\/pulumi-resource-kubernetes-v4\.34\.2-linux-amd64\.tar\.gz/,
    );
    assert.match(
      warn,
      /`pulumi plugin install resource kubernetes v4\.34\.2 --file \.\/pulumi-resource-kubernetes-v4\.34\.2-linux-amd64\.tar\.gz`/,
    );
    assert.match(pre.describe(c), /Kubernetes plugin v4\.34\.2 is NOT installed/, 'the plan says it too');
  });

  test('under --demo with the CLI the app stacks are skipped too: the simulated nodes serve no Kubernetes API', async () => {
    const cfg = config({ kured: true });
    const fake = new FakePulumi(FOUND, 2);
    const infra = appSteps(cfg, OPTS, { pulumi: fake }).find((s) => s.id === STEP.appsInfra)!;
    const r = await infra.check(
      ctx(cfg, tmpdir(), { demo: true, outputs: { [STEP.kubeconfig]: { kubeconfigPath: '/nonexistent', server: 'x' } } }),
    );
    assert.ok('skip' in r && /no Kubernetes API/.test(r.reason));
    assert.equal(fake.calls.length, 0, 'Pulumi is not called');
  });

  test('a preview that cannot reach the cluster leaves the step to run (which reports the error)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-'));
    try {
      const kubeconfigPath = join(dir, 'kubeconfig.yaml');
      writeFileSync(kubeconfigPath, 'apiVersion: v1\n');
      const cfg = config({ kured: true });
      const fake = new FakePulumi(FOUND, 0);
      fake.preview = async () => {
        throw new RemoteError('Pulumi infra-apps could not preview the changes (stack homelab)');
      };
      const infra = appSteps(cfg, OPTS, { pulumi: fake }).find((s) => s.id === STEP.appsInfra)!;
      const r = await infra.check(ctx(cfg, dir, { outputs: { [STEP.kubeconfig]: { kubeconfigPath, server: 'x' } } }));
      assert.deepEqual(r, {
        done: false,
        reason: 'Pulumi preview failed: Pulumi infra-apps could not preview the changes (stack homelab)',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('infra step: preview decides done, up streams engine events, the kubeconfig and a generated passphrase are used', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-'));
    try {
      const kubeconfigPath = join(dir, 'kubeconfig.yaml');
      writeFileSync(kubeconfigPath, 'apiVersion: v1\nkind: Config\n# homelab\n', { mode: 0o600 });
      const cfg = config({ kured: true, systemUpgradeController: true });
      const event: EngineEvent = {
        sequence: 1,
        timestamp: 1,
        resourcePreEvent: {
          metadata: {
            op: 'create',
            urn: 'urn:pulumi:homelab::infra-apps::pulumi:pulumi:Stack$kubernetes:helm.sh/v3:Release::kured',
            type: 'kubernetes:helm.sh/v3:Release',
            provider: '',
          },
        },
      };
      const fake = new FakePulumi(FOUND, 4, [event]);
      const infra = appSteps(cfg, OPTS, { pulumi: fake }).find((s) => s.id === STEP.appsInfra)!;
      const c = ctx(cfg, dir, { outputs: { [STEP.kubeconfig]: { kubeconfigPath, server: 'https://10.0.0.11:6443' } } });

      const before = await infra.check(c);
      assert.deepEqual(before, { done: false, reason: 'not applied yet' });
      assert.equal(fake.calls.length, 0, 'a stack never applied needs no preview');
      const out = await infra.run(c);
      assert.deepEqual(out, { project: 'infra-apps', stack: 'homelab', changes: { create: 4 } });
      assert.ok(
        c.lines.some((l) => l.line === '+ creating Release kured' && l.level === 'info'),
        JSON.stringify(c.lines),
      );
      const after = await infra.check(c);
      assert.ok('done' in after && after.done, 'a re-run with nothing to change is done by check (Pulumi diff)');
      fake.pending = 2;
      assert.deepEqual(await infra.check(c), { done: false, reason: 'Pulumi preview: 2 resource change(s) to apply' });

      const o = fake.calls.find((x) => x.op === 'up')!.o;
      assert.equal(o.project, 'infra-apps');
      assert.equal(o.stackName, 'homelab');
      assert.equal(o.clusterDir, c.clusterDir);
      assert.deepEqual(c.secretsMade, [PASSPHRASE_SECRET], 'the passphrase is created once, in the secrets store');
      assert.match(o.passphrase, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
      assert.ok(
        fake.calls.every((x) => x.o.passphrase === o.passphrase),
        'the same passphrase for every operation',
      );
      assert.ok(!c.lines.some((l) => l.line.includes(o.passphrase)), 'the passphrase is never logged');

      // The bound program is the infra-apps program with this cluster's kubeconfig and pinned k3s version.
      const resources = await runMocked(() => void o.program());
      const plan = resources.find((r) => r.name === 'server-plan')!;
      assert.equal(plan.inputs.spec.version, 'v1.33.4+k3s1');
      assert.ok(resources.some((r) => r.name === 'kured' && r.type === 'kubernetes:helm.sh/v3:Release'));
      assert.ok(!resources.some((r) => r.name === 'pulumi-kubernetes-operator'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without a recorded kubeconfig, check is not done and run says to create the cluster first', async () => {
    const cfg = config({ certManager: true });
    const infra = appSteps(cfg, OPTS, { pulumi: new FakePulumi(FOUND, 0) }).find((s) => s.id === STEP.appsInfra)!;
    const c = ctx(cfg, tmpdir());
    assert.deepEqual(await infra.check(c), { done: false, reason: 'no kubeconfig recorded yet' });
    await assert.rejects(infra.run(c), (err: unknown) => err instanceof UserError && /flatcar-k3s up --config FILE/.test(err.fix ?? ''));
  });

  test('Plans with no pinned or recorded k3s version are refused by the step itself, before Pulumi runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-'));
    try {
      const kubeconfigPath = join(dir, 'kubeconfig.yaml');
      writeFileSync(kubeconfigPath, 'apiVersion: v1\n');
      const cfg = config({ systemUpgradeController: true }, { cluster: { name: 'homelab', k3sVersion: 'stable' } });
      const fake = new FakePulumi(FOUND, 1);
      const infra = appSteps(cfg, OPTS, { pulumi: fake }).find((s) => s.id === STEP.appsInfra)!;
      const c = ctx(cfg, dir, { outputs: { [STEP.kubeconfig]: { kubeconfigPath, server: 'x' } } });
      await assert.rejects(
        infra.run(c),
        (err: unknown) => err instanceof UserError && err.field === 'apps.systemUpgradeController.channel',
      );
      assert.equal(fake.calls.length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a "stable" k3s version is taken from what the k3s release step recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-'));
    try {
      const kubeconfigPath = join(dir, 'kubeconfig.yaml');
      writeFileSync(kubeconfigPath, 'apiVersion: v1\n');
      const cfg = config({ systemUpgradeController: true }, { cluster: { name: 'homelab', k3sVersion: 'stable' } });
      const fake = new FakePulumi(FOUND, 1);
      const infra = appSteps(cfg, OPTS, { pulumi: fake }).find((s) => s.id === STEP.appsInfra)!;
      const c = ctx(cfg, dir, {
        outputs: {
          [STEP.kubeconfig]: { kubeconfigPath, server: 'x' },
          [STEP.k3sRelease]: { requested: 'stable', version: 'v1.34.1+k3s1', arch: 'amd64' },
        },
      });
      await infra.run(c);
      const resources = await runMocked(() => void fake.calls[0].o.program());
      assert.equal(resources.find((r) => r.name === 'agent-plan')!.inputs.spec.version, 'v1.34.1+k3s1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
