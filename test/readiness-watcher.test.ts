/**
 * The run's one readiness watcher (steps/nodes/readiness.ts): many waiters share one poll loop (one
 * `kubectl get nodes` at a time), each is answered by a poll that started after it began waiting, and
 * waiters time out, abort and fail on their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { RemoteError } from '../src/errors.js';
import { ReadinessWatcher, type NodeReadiness } from '../steps/nodes/readiness.js';
import type { StepContext } from '../steps/types.js';

function fakeServer() {
  const nodes: NodeReadiness = new Map();
  const s = { polls: 0, inFlight: 0, maxInFlight: 0, nodes, down: false };
  const list = async () => {
    s.polls++;
    s.maxInFlight = Math.max(s.maxInFlight, ++s.inFlight);
    // what the server answers is what it knew when asked
    const snapshot = [...nodes].map(([name, ready]) => ({ name, ready, unschedulable: false, controlPlane: false, annotations: {} }));
    await delay(2);
    s.inFlight--;
    if (s.down) throw new Error('connection refused');
    return snapshot;
  };
  return { s, list };
}

const ctxOf = (signal = new AbortController().signal) =>
  ({ services: { now: Date.now, sleep: (ms: number) => delay(ms) }, log: () => {}, signal }) as unknown as Pick<
    StepContext,
    'services' | 'log' | 'signal'
  >;

test('fifty waiters share one poll loop: one list at a time, far fewer polls than waiters x rounds', async () => {
  const { s, list } = fakeServer();
  const w = new ReadinessWatcher(ctxOf(), list);
  const names = Array.from({ length: 50 }, (_, i) => `agent-${i}`);
  const waits = names.map((n) => w.until((m) => m.has(n), { signal: new AbortController().signal, timeoutMs: 60_000, what: n }));
  // the agents register one by one, as joins do
  for (const n of names) {
    s.nodes.set(n, false);
    await delay(1);
  }
  await Promise.all(waits);
  assert.equal(s.maxInFlight, 1, 'one poll at a time');
  assert.ok(s.polls < names.length, `${s.polls} polls for ${names.length} waiters`);
  assert.equal(w.polls, s.polls);
});

test('a waiter is answered only by a poll that started after it began waiting', async () => {
  const { s, list } = fakeServer();
  const w = new ReadinessWatcher(ctxOf(), list);
  s.nodes.set('a', false);
  const first = w.until((m) => m.has('a'), { signal: new AbortController().signal, timeoutMs: 60_000, what: 'a' });
  const got = await first;
  assert.equal(got.get('a'), false);
  // Ready only later: a waiter for Ready must not take the earlier answer
  const ready = w.until((m) => m.get('a') === true, { signal: new AbortController().signal, timeoutMs: 60_000, what: 'a Ready' });
  await delay(30);
  s.nodes.set('a', true);
  assert.equal((await ready).get('a'), true);
});

test('read() joins the poll under way; an unreachable server reads as undefined', async () => {
  const { s, list } = fakeServer();
  const w = new ReadinessWatcher(ctxOf(), list);
  s.nodes.set('a', true);
  const [a, b, full] = await Promise.all([w.read(), w.read(), w.nodes()]);
  assert.deepEqual(a, b);
  assert.deepEqual(
    full?.map((n) => n.name),
    ['a'],
  );
  assert.equal(s.polls, 1, 'read() and nodes() joined one poll');
  s.down = true;
  assert.equal(await w.read(), undefined);
});

test('each waiter times out on its own, with its own message; abort stops a waiter', async () => {
  const { s, list } = fakeServer();
  const w = new ReadinessWatcher(ctxOf(), list);
  const never = assert.rejects(
    w.until((m) => m.has('ghost'), {
      signal: new AbortController().signal,
      timeoutMs: 50,
      what: 'ghost to register',
      fix: 'look at ghost',
    }),
    (e: unknown) => e instanceof RemoteError && /waiting for ghost to register/.test(e.message) && e.fix === 'look at ghost',
  );
  const ac = new AbortController();
  const aborted = assert.rejects(
    w.until((m) => m.has('x'), { signal: ac.signal, timeoutMs: 60_000, what: 'x' }),
    /stopped/i,
  );
  const failing = assert.rejects(
    w.until((m) => m.has('y'), {
      signal: new AbortController().signal,
      timeoutMs: 60_000,
      what: 'y',
      onTick: async () => {
        throw new RemoteError('k3s refuses the token');
      },
    }),
    /refuses the token/,
  );
  ac.abort();
  await Promise.all([never, aborted, failing]);
  s.nodes.set('late', true);
  assert.equal(
    (await w.until((m) => m.has('late'), { signal: new AbortController().signal, timeoutMs: 60_000, what: 'late' })).get('late'),
    true,
  );
});
