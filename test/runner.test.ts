/** The runner in-process: reducer, DAG order, limits, failures, outputs, interruption, state, lock, secrets, log. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { RunEvents, type RunEvent } from '../src/events.js';
import { AbortedError, BugError, RemoteError, UserError } from '../src/errors.js';
import { reduceStep, topoOrder, TRANSITIONS, type StepAction } from '../src/runner/reducer.js';
import { runSteps, LANE_LIMITS, type DriverOptions } from '../src/runner/driver.js';
import { StateStore, readState } from '../src/runner/state.js';
import { contextFactory } from '../src/runner/context.js';
import { offlineServices } from '../src/runner/services.js';
import { acquireLock } from '../src/runner/lock.js';
import { FileSecretStore } from '../src/runner/secrets.js';
import { Redactor } from '../src/log/redact.js';
import { LogFile } from '../src/log/file.js';
import { detectChanges, flattenConfig, hashOf, diffSettings } from '../src/runner/changes.js';
import { resolveConfig } from '../src/config/load.js';
import type { Step, StepContext, CheckResult, StepOutputs } from '../steps/types.js';
import { tempDir, TOKEN_SECRET, waitFor } from './helpers/cli.js';

const config = resolveConfig(
  { preset: 'homelab', proxmox: { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!t', tokenSecret: TOKEN_SECRET } },
  { env: {} },
);

interface FakeOpts {
  needs?: string[];
  lane?: string;
  check?: (ctx: StepContext) => Promise<CheckResult>;
  run?: (ctx: StepContext, plan?: unknown) => Promise<StepOutputs | void>;
  inputs?: unknown;
}
const step = (id: string, o: FakeOpts = {}): Step => ({
  id,
  title: `step ${id}`,
  group: 'g',
  needs: o.needs ?? [],
  lane: o.lane,
  inputs: o.inputs ?? id,
  describe: () => `describe ${id}`,
  check: o.check ?? (async () => ({ done: false })),
  run: o.run ?? (async () => ({ ran: id })),
});

function harness(steps: Step[], over: Partial<DriverOptions> = {}) {
  const t = tempDir('fk3s-runner-');
  const store = StateStore.open(t.dir, 'test');
  const events = new RunEvents();
  const seen: RunEvent[] = [];
  events.onEvent((e) => seen.push(e));
  const redactor = new Redactor();
  const controller = new AbortController();
  const context = contextFactory({
    config,
    clusterDir: t.dir,
    stateDir: t.dir,
    state: () => store.get(),
    events,
    redactor,
    services: offlineServices(new FileSecretStore(t.dir, redactor), store.pins()),
    options: { parallel: 8 },
  });
  const go = () => runSteps({ steps, store, events, context, signal: controller.signal, redactor, ...over });
  return { ...t, store, events, seen, controller, go, redactor };
}

/** A gate steps wait on, to observe concurrency without timing. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('reducer', () => {
  test('pending → running → done via run; check may find any status done', () => {
    const r1 = reduceStep(undefined, { type: 'running', id: 'x', at: 1, inputsHash: 'h' });
    assert.equal(r1.status, 'running');
    const r2 = reduceStep(r1, { type: 'done', id: 'x', at: 2, via: 'run', outputs: { a: 1 } });
    assert.deepEqual([r2.status, r2.via, r2.outputs, r2.inputsHash], ['done', 'run', { a: 1 }, 'h']);
    const failed = reduceStep(r1, { type: 'failed', id: 'x', at: 3, error: { message: 'boom' } });
    assert.equal(reduceStep(failed, { type: 'done', id: 'x', at: 4, via: 'check' }).status, 'done');
    const cutOff = reduceStep(undefined, { type: 'running', id: 'x', at: 1 });
    assert.equal(reduceStep(cutOff, { type: 'running', id: 'x', at: 2 }).status, 'running');
  });

  test('done via run without running first is a bug; outputs survive a later failure', () => {
    assert.throws(() => reduceStep(undefined, { type: 'done', id: 'x', at: 1, via: 'run' }), BugError);
    const done = reduceStep(reduceStep(undefined, { type: 'running', id: 'x', at: 1 }), {
      type: 'done',
      id: 'x',
      at: 2,
      via: 'run',
      outputs: { vmid: 9001 },
    });
    const again = reduceStep(reduceStep(done, { type: 'running', id: 'x', at: 3 }), {
      type: 'failed',
      id: 'x',
      at: 4,
      error: { message: 'e' },
    });
    assert.deepEqual(again.outputs, { vmid: 9001 });
  });

  test('the transition table refuses what no run does: pending or failed back to pending, done via run without running', () => {
    const at = (status: 'pending' | 'running' | 'done' | 'skipped' | 'failed') => ({ status, at: 1, title: 'X' }) as const;
    assert.throws(
      () => reduceStep(at('pending'), { type: 'pending', id: 'x', at: 2, reason: 'config changed' }),
      /invalid transition pending → pending/,
    );
    assert.throws(() => reduceStep(undefined, { type: 'pending', id: 'x', at: 2 }), BugError);
    assert.throws(
      () => reduceStep(at('failed'), { type: 'pending', id: 'x', at: 2, reason: 'interrupted' }),
      /invalid transition failed → pending/,
    );
    assert.throws(() => reduceStep(at('done'), { type: 'done', id: 'x', at: 2, via: 'run' }), /done → done:run/);
    assert.throws(() => reduceStep(at('skipped'), { type: 'done', id: 'x', at: 2, via: 'run' }), BugError);
    // what runs do: interrupted, re-opened by a config change, re-checked, re-run after a kill
    assert.equal(reduceStep(at('running'), { type: 'pending', id: 'x', at: 2, reason: 'interrupted' }).status, 'pending');
    assert.equal(reduceStep(at('done'), { type: 'pending', id: 'x', at: 2, reason: 'config changed' }).status, 'pending');
    assert.equal(reduceStep(at('skipped'), { type: 'pending', id: 'x', at: 2 }).status, 'pending');
    assert.equal(reduceStep(at('failed'), { type: 'running', id: 'x', at: 2 }).status, 'running');
  });

  test('reduceStep follows the table exactly, for every status and every action', () => {
    const actions: StepAction[] = [
      { type: 'running', id: 'x', at: 2 },
      { type: 'done', id: 'x', at: 2, via: 'check' },
      { type: 'done', id: 'x', at: 2, via: 'run' },
      { type: 'skipped', id: 'x', at: 2, reason: 'n/a' },
      { type: 'failed', id: 'x', at: 2, error: { message: 'e' } },
      { type: 'pending', id: 'x', at: 2 },
    ];
    let refused = 0;
    for (const from of Object.keys(TRANSITIONS) as Array<keyof typeof TRANSITIONS>) {
      for (const a of actions) {
        const to = a.type === 'done' ? `done:${a.via}` : a.type;
        const allowed = (TRANSITIONS[from] as readonly string[]).includes(to);
        let ok = true;
        try {
          reduceStep({ status: from, at: 1 }, a);
        } catch (err) {
          assert.ok(err instanceof BugError);
          ok = false;
        }
        assert.equal(ok, allowed, `${from} → ${to}`);
        if (!ok) refused++;
      }
    }
    assert.equal(refused, 6, 'pending→{done:run,pending}, done→done:run, skipped→done:run, failed→{done:run,pending}');
  });

  test('topoOrder puts needs first, keeps list order otherwise, and rejects cycles and unknown needs', () => {
    assert.deepEqual(topoOrder([step('c', { needs: ['b'] }), step('a'), step('b', { needs: ['a'] }), step('d')]), ['a', 'b', 'c', 'd']);
    assert.throws(() => topoOrder([step('a', { needs: ['b'] }), step('b', { needs: ['a'] })]), /cycle/);
    assert.throws(() => topoOrder([step('a', { needs: ['zz'] })]), /unknown step zz/);
  });
});

describe('driver', () => {
  test('run gets the plan its check just worked out, so it does not look the world up again', async () => {
    const got: unknown[] = [];
    let lookups = 0;
    const h = harness([
      step('a', {
        check: async () => ({ done: false, reason: 'VM 9001 exists', plan: { delete: [9001], lookup: ++lookups } }),
        run: async (_ctx, plan) => (got.push(plan), { deleted: (plan as { delete: number[] }).delete }),
      }),
      step('b', { run: async (_ctx, plan) => void got.push(plan) }),
    ]);
    try {
      assert.equal((await h.go()).status, 'succeeded');
      assert.deepEqual(got, [{ delete: [9001], lookup: 1 }, undefined]);
      assert.equal(lookups, 1);
      assert.deepEqual(readState(h.dir)!.steps.a!.outputs, { deleted: [9001] });
    } finally {
      h.cleanup();
    }
  });

  test('check decides: done → recorded via check (not run); skip → skipped with reason; else run', async () => {
    const ran: string[] = [];
    const h = harness([
      step('a', { check: async () => ({ done: true, outputs: { found: 1 } }), run: async () => void ran.push('a') }),
      step('b', { needs: ['a'], check: async () => ({ skip: true, reason: 'not needed here' }), run: async () => void ran.push('b') }),
      step('c', { needs: ['b'], run: async () => (ran.push('c'), { made: 2 }) }),
    ]);
    try {
      const r = await h.go();
      assert.equal(r.status, 'succeeded');
      assert.deepEqual(ran, ['c']);
      const st = readState(h.dir)!;
      assert.deepEqual([st.steps.a!.status, st.steps.a!.via, st.steps.a!.outputs], ['done', 'check', { found: 1 }]);
      assert.deepEqual([st.steps.b!.status, st.steps.b!.reason], ['skipped', 'not needed here']);
      assert.deepEqual([st.steps.c!.status, st.steps.c!.via, st.steps.c!.outputs], ['done', 'run', { made: 2 }]);
      const transitions = h.seen.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? `${e.id}:${e.status}` : ''));
      assert.deepEqual(transitions, ['a:done', 'b:skipped', 'c:running', 'c:done']);
    } finally {
      h.cleanup();
    }
  });

  test('"running" is on disk before run() starts, and outputs of earlier steps reach later ones', async () => {
    let seenOnDisk = '';
    let seenOutputs: unknown;
    const h = harness([
      step('a', { run: async () => ({ vmid: 9001 }) }),
      step('b', {
        needs: ['a'],
        run: async (ctx) => {
          seenOnDisk = readState(ctx.clusterDir)!.steps.b!.status; // snapshot + journal, as on disk
          seenOutputs = ctx.outputs('a');
          assert.deepEqual(
            ctx.outputsMatching('a').map((o) => o.id),
            ['a'],
          );
        },
      }),
    ]);
    try {
      assert.equal((await h.go()).status, 'succeeded');
      assert.equal(seenOnDisk, 'running');
      assert.deepEqual(seenOutputs, { vmid: 9001 });
    } finally {
      h.cleanup();
    }
  });

  test('a failure leaves its dependents pending while independent branches finish', async () => {
    const h = harness([
      step('root'),
      step('bad', {
        needs: ['root'],
        run: async () => Promise.reject(new RemoteError('clone failed', { fix: 'free a VMID', detail: 'TASK ERROR: lock' })),
      }),
      step('after-bad', { needs: ['bad'] }),
      step('other', { needs: ['root'] }),
      step('after-other', { needs: ['other'] }),
    ]);
    try {
      const r = await h.go();
      assert.equal(r.status, 'failed');
      assert.deepEqual(
        r.failed.map((f) => [f.id, f.error.message, f.error.fix, f.error.detail]),
        [['bad', 'clone failed', 'free a VMID', 'TASK ERROR: lock']],
      );
      assert.deepEqual(r.blocked, ['after-bad']);
      const st = h.store.get().steps;
      assert.equal(st['after-other']!.status, 'done');
      assert.equal(st['after-bad'], undefined);
      assert.equal(st.bad!.status, 'failed');
    } finally {
      h.cleanup();
    }
  });

  test('--parallel caps concurrent steps and lanes cap their own steps', async () => {
    let now = 0;
    let max = 0;
    let laneNow = 0;
    let laneMax = 0;
    const g = gate();
    const work = (lane?: string) => async () => {
      now++;
      max = Math.max(max, now);
      if (lane) laneMax = Math.max(laneMax, ++laneNow);
      await g.p;
      await new Promise((r) => setImmediate(r));
      now--;
      if (lane) laneNow--;
    };
    const steps = [
      ...Array.from({ length: 6 }, (_, i) => step(`clone${i}`, { lane: 'pve-clone', run: work('pve-clone') })),
      ...Array.from({ length: 6 }, (_, i) => step(`free${i}`, { run: work() })),
    ];
    const h = harness(steps, { parallel: 5 });
    try {
      const p = h.go();
      await waitFor(() => now === 5, 30000, 'five steps to start');
      // Give the scheduler more turns: nothing beyond the limits may start while the gate is shut.
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(now, 5, 'five steps at once');
      assert.equal(laneNow, LANE_LIMITS['pve-clone'], 'clones limited by their lane');
      g.open();
      const r = await p;
      assert.equal(r.status, 'succeeded');
      assert.equal(max, 5);
      assert.equal(laneMax, LANE_LIMITS['pve-clone']);
    } finally {
      h.cleanup();
    }
  });

  test('ctx.slot holds a lane only for the work inside it; steps waiting for a slot leave room under --parallel', async () => {
    const limit = LANE_LIMITS['pve-clone']!;
    let inSlot = 0;
    let inSlotMax = 0;
    let checksAtOnce = 0;
    let freeDone = 0;
    const g = gate();
    const cloneStep = (i: number) =>
      step(`clone${i}`, {
        // the check and the work after the slot run outside it
        check: async () => {
          checksAtOnce++;
          return { done: false };
        },
        run: async (ctx) => {
          await ctx.slot!('pve-clone', async () => {
            inSlotMax = Math.max(inSlotMax, ++inSlot);
            await g.p;
            inSlot--;
          });
          return { cloned: i };
        },
      });
    const steps = [
      ...Array.from({ length: 8 }, (_, i) => cloneStep(i)),
      ...Array.from({ length: 3 }, (_, i) => step(`free${i}`, { run: async () => void freeDone++ })),
    ];
    const h = harness(steps, { parallel: 4 });
    try {
      const p = h.go();
      // every clone checked (4 at a time would stop at 4 if waiting held a place), the free steps ran
      await waitFor(() => checksAtOnce === 8 && freeDone === 3 && inSlot === limit, 30000, 'checks, free steps and full slots');
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(inSlot, limit, 'only the lane limit inside the slot');
      g.open();
      const r = await p;
      assert.equal(r.status, 'succeeded');
      assert.equal(inSlotMax, limit);
      assert.equal(r.done.length, 11);
    } finally {
      h.cleanup();
    }
  });

  test('an adaptive lane grows by one per window of clean holds up to its cap, and halves on congestion', async () => {
    // Each clone step records how many holds are inside the lane when it enters; holds finish one turn later.
    let inside = 0;
    const seen: number[] = [];
    let congestAt = -1;
    let entered = 0;
    const cloneStep = (i: number) =>
      step(`clone${i}`, {
        run: async (ctx) => {
          await ctx.slot!('pve-clone', async (hold) => {
            seen.push(++inside);
            const me = entered++;
            await new Promise((r) => setTimeout(r, 5));
            if (me === congestAt) hold.congested();
            inside--;
          });
          return { cloned: i };
        },
      });
    const h = harness(
      Array.from({ length: 60 }, (_, i) => cloneStep(i)),
      { parallel: 64, laneLimits: { 'pve-clone': 2 }, laneCaps: { 'pve-clone': 5 } },
    );
    try {
      congestAt = 40;
      const r = await h.go();
      assert.equal(r.status, 'succeeded');
      assert.equal(Math.max(...seen), 5, 'grew from 2 to its cap of 5, never beyond');
      assert.equal(Math.max(...seen.slice(0, 2)), 2, 'started at the lane limit');
      // after the congested hold (the 41st) the lane halves to 2: later entries see at most 2 … then grow again
      const after = seen.slice(45, 48);
      assert.ok(Math.max(...after) <= 3, `narrowed after congestion: ${seen.join(',')}`);
    } finally {
      h.cleanup();
    }
  });

  test('a step in ctx.idle (a VM booting) does not hold a place under --parallel', async () => {
    const g = gate();
    let idleNow = 0;
    let freeDone = 0;
    const booting = (i: number) =>
      step(`boot${i}`, {
        run: async (ctx) => {
          idleNow++;
          await ctx.idle!(() => g.p);
          idleNow--;
          return { up: i };
        },
      });
    const steps = [
      ...Array.from({ length: 4 }, (_, i) => booting(i)),
      ...Array.from({ length: 3 }, (_, i) => step(`free${i}`, { run: async () => void freeDone++ })),
    ];
    const h = harness(steps, { parallel: 2 });
    try {
      const p = h.go();
      await waitFor(() => idleNow === 4 && freeDone === 3, 30000, 'every booting step idle and the free steps done');
      g.open();
      const r = await p;
      assert.equal(r.status, 'succeeded');
      assert.equal(r.done.length, 7);
    } finally {
      h.cleanup();
    }
  });

  test('a step found running (cut off) is checked: done → done via check without running again', async () => {
    const t = tempDir('fk3s-runner-');
    try {
      const store = StateStore.open(t.dir, 'test');
      store.dispatch({ type: 'running', id: 'a', at: 1 });
      let ran = false;
      const events = new RunEvents();
      const r = await runSteps({
        steps: [step('a', { check: async () => ({ done: true }), run: async () => void (ran = true) })],
        store: StateStore.open(t.dir, 'test'),
        events,
        context: (_s, signal) => ({ signal }) as StepContext,
        signal: new AbortController().signal,
      });
      assert.equal(r.status, 'succeeded');
      assert.equal(ran, false);
      assert.deepEqual([readState(t.dir)!.steps.a!.status, readState(t.dir)!.steps.a!.via], ['done', 'check']);
    } finally {
      t.cleanup();
    }
  });

  test('abort: running steps see the signal and go back to pending; nothing new starts', async () => {
    const started = gate();
    let laterRan = false;
    const h = harness([
      step('slow', {
        run: async (ctx) => {
          started.open();
          await new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(new AbortedError())));
        },
      }),
      step('later', { needs: ['slow'], run: async () => void (laterRan = true) }),
    ]);
    try {
      const p = h.go();
      await started.p;
      h.controller.abort();
      const r = await p;
      assert.equal(r.status, 'interrupted');
      assert.equal(laterRan, false);
      assert.equal(readState(h.dir)!.steps.slow!.status, 'pending');
      assert.equal(readState(h.dir)!.steps.slow!.reason, 'interrupted');
    } finally {
      h.cleanup();
    }
  });

  test('step log lines and error messages pass through the redactor', async () => {
    const h = harness([
      step('a', {
        run: async (ctx) => {
          ctx.log('token is s3cr3t-value-123');
          throw new UserError('bad token s3cr3t-value-123');
        },
      }),
    ]);
    h.redactor.add('s3cr3t-value-123');
    try {
      const r = await h.go();
      const log = h.seen.find((e) => e.type === 'log');
      assert.equal(log?.type === 'log' && log.line, 'token is ***');
      assert.equal(r.failed[0]!.error.message, 'bad token ***');
      for (const f of ['state.json', 'state.journal']) assert.ok(!readFileSync(join(h.dir, f), 'utf8').includes('s3cr3t'), f);
    } finally {
      h.cleanup();
    }
  });

  test('a secret a step puts in its outputs is recorded as *** with a warning', async () => {
    const h = harness([step('a', { run: async () => ({ token: 'K10-secret-token-xyz', vmid: 9001 }) })]);
    h.redactor.add('K10-secret-token-xyz');
    try {
      assert.equal((await h.go()).status, 'succeeded');
      assert.deepEqual(readState(h.dir)!.steps.a!.outputs, { token: '***', vmid: 9001 });
      assert.ok(h.seen.some((e) => e.type === 'log' && e.level === 'warn' && /recorded as \*\*\*/.test(e.line)));
    } finally {
      h.cleanup();
    }
  });
});

describe('config changes', () => {
  test('settings are diffed by dotted path with secrets redacted; steps whose inputs changed re-open', () => {
    const t = tempDir('fk3s-runner-');
    try {
      const store = StateStore.open(t.dir, 'test');
      const steps = [step('servers', { inputs: config.nodes.servers }), step('agents', { inputs: config.nodes.agents })];
      for (const s of steps) {
        store.dispatch({ type: 'running', id: s.id, at: 1, inputsHash: hashOf(s.inputs) });
        store.dispatch({ type: 'done', id: s.id, at: 2, via: 'run' });
      }
      store.update((st) => void (st.config = flattenConfig(config)));
      const changed = resolveConfig(
        {
          preset: 'homelab',
          nodes: { agents: { count: 3 } },
          proxmox: { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!t', tokenSecret: '11111111-2222-3333-4444-555555555555' },
        },
        { env: {} },
      );
      const c = detectChanges(store.get(), changed, [
        step('servers', { inputs: changed.nodes.servers }),
        step('agents', { inputs: changed.nodes.agents }),
      ]);
      assert.deepEqual(c.settings, [{ path: 'nodes.agents.count', from: 2, to: 3 }]);
      assert.deepEqual(
        c.reopened.map((r) => r.id),
        ['agents'],
      );
      assert.equal(flattenConfig(config)['proxmox.tokenSecret'], '<redacted>');
      assert.ok(!JSON.stringify(store.get()).includes(TOKEN_SECRET));
    } finally {
      t.cleanup();
    }
  });

  test('diffSettings reports added and removed keys', () => {
    assert.deepEqual(diffSettings({ a: 1, b: [1] }, { b: [1, 2], c: 'x' }), [
      { path: 'a', from: 1, to: undefined },
      { path: 'b', from: [1], to: [1, 2] },
      { path: 'c', from: undefined, to: 'x' },
    ]);
  });
});

describe('files', () => {
  test('state writes are atomic and 0600; a corrupt state file is a user error with a fix', () => {
    const t = tempDir('fk3s-runner-');
    try {
      const store = StateStore.open(t.dir, 'test');
      for (let i = 0; i < 20; i++) store.dispatch({ type: 'running', id: `s${i}`, at: i });
      assert.equal(statSync(join(t.dir, 'state.json')).mode & 0o777, 0o600);
      assert.equal(statSync(join(t.dir, 'state.journal')).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(t.dir).sort(), ['state.journal', 'state.json']);
      writeFileSync(join(t.dir, 'state.json'), '{"version":1,"steps":{');
      assert.throws(
        () => readState(t.dir),
        (e: unknown) => e instanceof UserError && /not valid JSON/.test(e.message) && /mv /.test(e.fix ?? ''),
      );
    } finally {
      t.cleanup();
    }
  });

  test('pins are kept in the state file', () => {
    const t = tempDir('fk3s-runner-');
    try {
      StateStore.open(t.dir, 'test').pins().set('proxmox.tls', 'AB:CD');
      assert.equal(StateStore.open(t.dir, 'test').pins().get('proxmox.tls'), 'AB:CD');
    } finally {
      t.cleanup();
    }
  });

  test('secrets: 0600 file, values persisted, fed to the redactor', () => {
    const t = tempDir('fk3s-runner-');
    try {
      const r = new Redactor();
      const s = new FileSecretStore(t.dir, r);
      const v = s.getOrCreate('k3s-token', () => 'generated-token-abcdef');
      assert.equal(
        s.getOrCreate('k3s-token', () => 'other'),
        v,
      );
      assert.equal(statSync(join(t.dir, 'secrets.json')).mode & 0o777, 0o600);
      assert.equal(r.redact(`x ${v} y`), 'x *** y');
      const r2 = new Redactor();
      assert.equal(new FileSecretStore(t.dir, r2).get('k3s-token'), v);
      assert.equal(r2.redact(v), '***', 'a reopened store feeds its values to the redactor');
    } finally {
      t.cleanup();
    }
  });

  test('log file: timestamped lines, redacted, mode 0600', () => {
    const t = tempDir('fk3s-runner-');
    try {
      const r = new Redactor();
      r.add('hunter2-password');
      const log = new LogFile(join(t.dir, 'sub', 'run.log'), r);
      const events = new RunEvents();
      log.attach(events);
      events.emitEvent({
        type: 'log',
        id: 'x',
        group: 'g',
        line: 'using hunter2-password',
        level: 'debug',
        at: Date.UTC(2026, 0, 2, 3, 4, 5),
      });
      log.close();
      const text = readFileSync(join(t.dir, 'sub', 'run.log'), 'utf8');
      assert.equal(text, '2026-01-02T03:04:05.000Z   x: debug: using ***\n');
      assert.equal(statSync(join(t.dir, 'sub', 'run.log')).mode & 0o777, 0o600);
    } finally {
      t.cleanup();
    }
  });

  test('lock: a live holder is refused naming its pid; a dead holder is taken over with a warning', () => {
    const t = tempDir('fk3s-runner-');
    try {
      const first = acquireLock(t.dir);
      assert.throws(
        () => acquireLock(t.dir, { pid: process.pid + 1 }),
        (e: unknown) => e instanceof UserError && e.message.includes(`pid ${process.pid}`),
      );
      first.release();
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      mkdirSync(t.dir, { recursive: true });
      writeFileSync(join(t.dir, 'lock'), `${dead}\n`);
      const warnings: string[] = [];
      const l = acquireLock(t.dir, { warn: (w) => warnings.push(w) });
      assert.match(warnings.join('\n'), new RegExp(`stale lock.*pid ${dead}`));
      assert.equal(readFileSync(join(t.dir, 'lock'), 'utf8').trim(), String(process.pid));
      l.release();
      assert.deepEqual(readdirSync(t.dir), []);
    } finally {
      t.cleanup();
    }
  });
});

describe('services: Proxmox TLS trust on first use', () => {
  const FP = Array.from({ length: 32 }, () => 'C3').join(':');
  type Opts = Parameters<NonNullable<import('../src/runner/services.js').ServicesOptions['createProxmoxClient']>>[0];
  /** A stand-in for createProxmoxClient: an unpinned server asks onUnknownFingerprint, as the real one does. */
  const fakeCreate = (seen: Opts[]) => async (o: Opts) => {
    seen.push(o);
    if (!o.fingerprint && !(await o.onUnknownFingerprint?.(FP))) throw new UserError('refused');
    return { client: {} as never, fingerprint: FP };
  };
  const make = async (over: Partial<import('../src/runner/services.js').ServicesOptions>, cfg = config) => {
    const { createServices } = await import('../src/runner/services.js');
    const t = tempDir('fk3s-services-');
    const store = StateStore.open(t.dir, 'test');
    const seen: Opts[] = [];
    const services = createServices({
      config: cfg,
      secrets: new FileSecretStore(t.dir),
      pins: store.pins(),
      createProxmoxClient: fakeCreate(seen),
      ...over,
    });
    return { t, store, seen, services };
  };

  test('--yes trusts the first fingerprint and pins it; the next connection passes the pin', async () => {
    const { t, store, seen, services } = await make({ yes: true });
    try {
      await services.proxmox();
      assert.equal(store.pins().get('proxmox.tls'), FP);
      assert.equal(readState(t.dir)!.pins['proxmox.tls'], FP);
      const again = await make({ yes: false, pins: StateStore.open(t.dir, 'test').pins(), createProxmoxClient: fakeCreate(seen) });
      await again.services.proxmox();
      assert.equal(seen.at(-1)!.fingerprint, FP);
      again.t.cleanup();
    } finally {
      t.cleanup();
    }
  });

  test('without --yes or a terminal an unknown certificate is refused with the fix', async () => {
    const { t, store, services } = await make({ yes: false });
    try {
      await assert.rejects(
        services.proxmox(),
        (e: unknown) => e instanceof UserError && e.field === 'proxmox.fingerprint' && (e.fix ?? '').includes(FP),
      );
      assert.equal(store.pins().get('proxmox.tls'), undefined);
    } finally {
      t.cleanup();
    }
  });

  test('on a terminal the user is asked; "no" refuses', async () => {
    const questions: string[] = [];
    const { t, store, services } = await make({ yes: false, confirm: async (q) => (questions.push(q), false) });
    try {
      await assert.rejects(services.proxmox());
      assert.match(questions[0]!, new RegExp(FP));
      assert.equal(store.pins().get('proxmox.tls'), undefined);
    } finally {
      t.cleanup();
    }
  });

  test('a fingerprint in the config is passed on and recorded as the pin; without it the pin is used, not first use', async () => {
    const cfg = { ...config, proxmox: { ...config.proxmox, fingerprint: FP } };
    const { t, store, seen, services } = await make({ yes: false }, cfg);
    try {
      await services.proxmox();
      assert.equal(seen[0]!.fingerprint, FP);
      assert.equal(store.pins().get('proxmox.tls'), FP);
      const asked: string[] = [];
      const again = await make({
        yes: true,
        pins: StateStore.open(t.dir, 'test').pins(),
        createProxmoxClient: fakeCreate(seen),
        confirm: async (q) => (asked.push(q), true),
      });
      await again.services.proxmox();
      assert.equal(seen.at(-1)!.fingerprint, FP, 'the recorded pin is passed on');
      assert.deepEqual(asked, [], 'no first-use question');
      again.t.cleanup();
    } finally {
      t.cleanup();
    }
  });
});

test('services expose the confirmation hook to steps (PVE host SSH key first use), and only when someone can answer', async () => {
  const { createServices } = await import('../src/runner/services.js');
  const { resolveConfig } = await import('../src/config/load.js');
  const config = resolveConfig(
    {
      preset: 'homelab',
      proxmox: { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!x', tokenSecret: '0d5c7a4e-9f1b-4c2d-8e3f-a1b2c3d4e5f6' },
    },
    { env: {} },
  );
  const pins = { get: () => undefined, set: () => {} };
  const secrets = { get: () => undefined, getOrCreate: (_n: string, make: () => string) => make(), set: () => {} };
  const asked: string[] = [];
  const withTty = createServices({ config, pins, secrets, confirm: async (q) => (asked.push(q), true) });
  assert.equal(await withTty.confirm?.('Trust it?'), true);
  assert.deepEqual(asked, ['Trust it?']);
  assert.equal(createServices({ config, pins, secrets }).confirm, undefined);
});
