import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { ConfigSchema, type Config } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';
import { operatorModeIssues } from '../src/config/apps.js';
import { getStackCommand, parseStackJson, reconcileRequestCommand, stackSync, type StackObject } from '../src/pulumi/operator-status.js';
import { appSteps, appsOnlySteps } from '../steps/apps/index.js';
import { AppsOperatorStep, type StackAccess } from '../steps/apps/operator.js';
import { STEP } from '../steps/ids.js';
import type { StepContext, StepOutputs } from '../steps/types.js';

function config(apps: Record<string, unknown>): Config {
  return ConfigSchema.parse({
    cluster: { name: 'ha', k3sVersion: 'v1.33.4+k3s1' },
    proxmox: { url: 'https://pve.example.lan:8006', tokenId: 'root@pam!x', tokenSecret: '0d5c7a4e-1111-2222-3333-444455556666' },
    nodes: { servers: { count: 3 }, agents: { count: 3 }, vip: '192.168.50.10' },
    apps,
  });
}
const OPTS = { parallel: 4 };

const stack = (o: {
  gen?: number;
  observed?: number;
  ready?: string;
  state?: string;
  message?: string;
  lastGen?: number;
  current?: string;
  request?: string;
  failures?: number;
}): StackObject => ({
  metadata: { generation: o.gen ?? 2 },
  status: {
    observedGeneration: o.observed ?? o.gen ?? 2,
    conditions: o.ready
      ? [
          {
            type: 'Ready',
            status: o.ready,
            reason: o.ready === 'True' ? 'ProcessingCompleted' : 'RetryingAfterFailure',
            message: o.message ?? '',
          },
        ]
      : [],
    ...(o.current ? { currentUpdate: { name: o.current, generation: o.gen ?? 2 } } : {}),
    ...(o.state
      ? {
          lastUpdate: {
            name: 'infra-apps-abc12',
            state: o.state,
            message: o.message,
            generation: o.lastGen ?? o.gen ?? 2,
            reconcileRequest: o.request,
            failures: o.failures,
          },
        }
      : {}),
  },
});

describe('reading the operator Stack', () => {
  test('in sync only when the current generation was applied and the last update succeeded', () => {
    assert.equal(stackSync(undefined).state, 'missing');
    assert.equal(stackSync(stack({ ready: 'True', state: 'succeeded' })).state, 'synced');
    assert.match(stackSync(stack({ ready: 'True', state: 'succeeded' })).message, /in sync \(last update infra-apps-abc12 succeeded\)/);
    assert.equal(
      stackSync(stack({ gen: 3, observed: 2, ready: 'True', state: 'succeeded', lastGen: 2 })).state,
      'pending',
      'a newer Program/Stack generation is not applied yet',
    );
    assert.equal(stackSync(stack({ ready: 'True', state: 'succeeded', current: 'infra-apps-def34' })).state, 'updating');
    assert.match(stackSync(stack({ current: 'infra-apps-def34' })).message, /update infra-apps-def34 is running/);
    const failed = stackSync(stack({ ready: 'False', state: 'failed', message: 'error: helm: chart not found\n  at x', failures: 2 }));
    assert.equal(failed.state, 'failed');
    assert.match(failed.message, /failed: error: helm: chart not found at x \(2 failures; the operator retries\)/);
    assert.equal(stackSync({ metadata: { generation: 1 } }).state, 'pending');
    assert.match(stackSync({ metadata: { generation: 1 } }).message, /not picked up by the operator yet/);
  });

  test('after a re-apply request, only an update for that request counts', () => {
    const old = stack({ ready: 'True', state: 'succeeded', request: '2026-01-01T00:00:00.000Z' });
    assert.equal(stackSync(old, '2026-02-02T00:00:00.000Z').state, 'pending');
    assert.equal(
      stackSync(stack({ ready: 'True', state: 'succeeded', request: '2026-02-02T00:00:00.000Z' }), '2026-02-02T00:00:00.000Z').state,
      'synced',
    );
  });

  test('kubectl commands quote their values; an empty answer is no Stack', () => {
    assert.equal(
      getStackCommand(),
      'sudo /opt/bin/k3s kubectl -n pulumi-kubernetes-operator get stacks.pulumi.com infra-apps -o json --ignore-not-found',
    );
    assert.equal(
      reconcileRequestCommand("x'; rm -rf /"),
      "sudo /opt/bin/k3s kubectl -n pulumi-kubernetes-operator annotate stacks.pulumi.com infra-apps 'pulumi.com/reconciliation-request=x'\\''; rm -rf /' --overwrite",
    );
    assert.equal(parseStackJson(''), undefined);
    assert.equal(parseStackJson('{oops'), 'unreadable');
    assert.deepEqual(parseStackJson('{"metadata":{"generation":1}}'), { metadata: { generation: 1 } });
  });
});

class FakeAccess implements StackAccess {
  reads = 0;
  requests: string[] = [];
  constructor(private readonly answers: Array<StackObject | undefined | 'unreadable' | ((req?: string) => StackObject)>) {}
  async read() {
    const a = this.answers[Math.min(this.reads++, this.answers.length - 1)];
    return typeof a === 'function' ? a(this.requests.at(-1)) : a;
  }
  async requestReconcile(_ctx: StepContext, value: string) {
    this.requests.push(value);
  }
}

function ctx(cfg: Config, over: { demo?: boolean } = {}) {
  const lines: Array<{ line: string; level: string }> = [];
  const progress: string[] = [];
  let now = Date.parse('2026-12-07T18:00:00Z');
  const c = {
    config: cfg,
    clusterDir: tmpdir(),
    stateDir: tmpdir(),
    outputs: () => undefined,
    outputsMatching: () => [],
    log: (line: string, level = 'info') => lines.push({ line, level }),
    progress: (m: string) => progress.push(m),
    signal: new AbortController().signal,
    options: { parallel: 4, demo: over.demo },
    services: {
      now: () => now,
      sleep: async (ms: number) => void (now += ms),
    },
  } as unknown as StepContext;
  return { c, lines, progress };
}

describe('operator mode steps', () => {
  const all = {
    mode: 'operator',
    pulumiOperator: true,
    kured: true,
    certManager: true,
    systemUpgradeController: true,
    piraeus: { replicas: 3 },
  };

  test('the plan: preflight, the operator with its Stack, then the wait for the operator; no local infra-apps stack', () => {
    const steps = appSteps(config(all), OPTS);
    assert.deepEqual(
      steps.map((s) => s.id),
      [STEP.appsPreflight, STEP.appsBootstrap, STEP.appsOperator],
    );
    const [, boot, op] = steps;
    assert.deepEqual(op.needs, [STEP.appsBootstrap]);
    const c = ctx(config(all)).c;
    assert.match(
      boot.describe(c),
      /Pulumi Kubernetes Operator with Pulumi \(project infra-bootstrap, stack ha\), and hand it a Program infra-apps \(Pulumi YAML of kured, Piraeus \(LINSTOR\), cert-manager, system-upgrade-controller\), a Stack infra-apps \(state on a 1Gi PVC infra-apps-state\)/,
    );
    assert.match(
      op.describe(c),
      /Wait until the Pulumi operator has applied kured, Piraeus \(LINSTOR\), cert-manager, system-upgrade-controller \(Stack pulumi-kubernetes-operator\/infra-apps, state in a 1Gi volume/,
    );
    // Local mode: the local infra-apps stack, no wait for the operator.
    assert.deepEqual(
      appSteps(config({ ...all, mode: 'local' }), OPTS).map((s) => s.id),
      [STEP.appsPreflight, STEP.appsBootstrap, STEP.appsInfra],
    );
    // Operator mode with only the operator selected: nothing for it to run.
    assert.deepEqual(
      appSteps(config({ mode: 'operator', pulumiOperator: true }), OPTS).map((s) => s.id),
      [STEP.appsPreflight, STEP.appsBootstrap],
    );
  });

  test('a change of the app selection re-opens the bootstrap step (it writes the Program)', () => {
    const a = appSteps(config(all), OPTS)[1].inputs;
    const b = appSteps(config({ ...all, kured: false }), OPTS)[1].inputs;
    assert.notDeepEqual(a, b);
  });

  test('operator mode without the operator, or without cluster-admin, and a git source in local mode are refused', () => {
    assert.throws(
      () => appSteps(config({ mode: 'operator', kured: true }), OPTS),
      (e: unknown) => e instanceof ConfigError && /apps\.pulumiOperator/.test(e.message),
    );
    assert.throws(
      () => appSteps(config({ mode: 'operator', pulumiOperator: { clusterAdmin: false }, kured: true }), OPTS),
      (e: unknown) => e instanceof ConfigError && /apps\.pulumiOperator\.clusterAdmin/.test(e.message),
    );
    assert.throws(
      () => appSteps(config({ kured: true, source: { git: { url: 'https://git.example.lan/a.git' } } }), OPTS),
      (e: unknown) => e instanceof ConfigError && /apps\.source\.git/.test(e.message),
    );
    // Nothing selected (every app off, as --skip-apps runs): the mode is moot, nothing is refused.
    assert.deepEqual(appSteps(config({ mode: 'operator' }), OPTS), []);
    assert.deepEqual(operatorModeIssues(config({ mode: 'operator' }).apps), []);
  });

  test('check: done when the Stack is in sync; skipped under --demo', async () => {
    const cfg = config(all);
    const synced = new AppsOperatorStep(cfg, new FakeAccess([stack({ ready: 'True', state: 'succeeded' })]));
    const r = await synced.check(ctx(cfg).c);
    assert.ok('done' in r && r.done);
    assert.deepEqual((r as { outputs: StepOutputs }).outputs, {
      stack: 'pulumi-kubernetes-operator/infra-apps',
      lastUpdate: 'infra-apps-abc12',
      state: 'synced',
    });
    const failing = new AppsOperatorStep(cfg, new FakeAccess([stack({ ready: 'False', state: 'failed', message: 'boom' })]));
    assert.deepEqual(await failing.check(ctx(cfg).c), {
      done: false,
      reason: 'last update infra-apps-abc12 failed: boom (the operator retries)',
    });
    const demo = await synced.check(ctx(cfg, { demo: true }).c);
    assert.ok('skip' in demo);
  });

  test("run: waits through the operator's progress until the last update succeeded, showing each change once", async () => {
    const cfg = config(all);
    const access = new FakeAccess([
      undefined,
      'unreadable',
      { metadata: { generation: 1 } },
      stack({ gen: 1, current: 'u1' }),
      stack({ gen: 1, current: 'u1' }),
      stack({ gen: 1, ready: 'False', state: 'failed', message: 'chart not found', failures: 1 }),
      stack({ gen: 1, current: 'u2' }),
      stack({ gen: 1, ready: 'True', state: 'succeeded' }),
    ]);
    const step = new AppsOperatorStep(cfg, access);
    const { c, lines, progress } = ctx(cfg);
    const out = (await step.run(c)) as StepOutputs;
    assert.equal(out.state, 'synced');
    const shown = progress.filter((p) => p.startsWith('Stack infra-apps:'));
    assert.deepEqual(shown, [
      'Stack infra-apps: the Stack infra-apps does not exist (yet)',
      'Stack infra-apps: the Stack could not be read; trying again',
      'Stack infra-apps: not picked up by the operator yet',
      'Stack infra-apps: update u1 is running',
      'Stack infra-apps: last update infra-apps-abc12 failed: chart not found (1 failure; the operator retries)',
      'Stack infra-apps: update u2 is running',
      'Stack infra-apps: in sync (last update infra-apps-abc12 succeeded)',
    ]);
    assert.ok(lines.some((l) => l.level === 'warn' && /chart not found/.test(l.line)));
    assert.deepEqual(access.requests, [], 'up does not force an update');
  });

  test('run gives up after the wait limit with the last state and where to look', async () => {
    const cfg = config(all);
    const step = new AppsOperatorStep(cfg, new FakeAccess([stack({ gen: 1, ready: 'False', state: 'failed', message: 'forbidden' })]));
    await assert.rejects(
      step.run(ctx(cfg).c),
      (e: Error & { fix?: string; detail?: string }) =>
        /Timed out/.test(e.message) && /forbidden/.test(e.detail ?? '') && /describe stack infra-apps/.test(e.fix ?? ''),
    );
  });

  test('`apps` re-applies: it asks the operator for a new update and waits for that one', async () => {
    const cfg = config(all);
    const access = new FakeAccess([
      stack({ ready: 'True', state: 'succeeded', request: 'older' }),
      (req) => stack({ ready: 'True', state: 'succeeded', request: req }),
    ]);
    const steps = appsOnlySteps(cfg, OPTS, undefined, { stack: access });
    const op = steps.find((s) => s.id === STEP.appsOperator)!;
    const { c } = ctx(cfg);
    assert.deepEqual(await op.check(c), { done: false, reason: 're-apply requested' });
    const out = (await op.run(c)) as StepOutputs;
    assert.equal(access.requests.length, 1);
    assert.equal(access.requests[0], '2026-12-07T18:00:00.000Z');
    assert.equal(out.state, 'synced');
    assert.equal(access.reads, 2, 'the old success did not count');
  });
});
