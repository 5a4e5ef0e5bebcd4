import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunStore } from '../src/ui/run-store.js';
import { RunScreen, type RunAction } from '../screens/RunScreen.js';
import type { RunEvent } from '../src/events.js';
import { render, KEYS } from './helpers/ink.js';

const T0 = 1_700_000_000_000;

function feed(store: RunStore, events: RunEvent[]) {
  for (const e of events) store.ingest(e);
  store.flush();
}

const plan: RunEvent = {
  type: 'plan',
  steps: [
    { id: 'proxmox:connect', title: 'Connect to Proxmox', group: 'proxmox', status: 'pending' },
    { id: 'template:image', title: 'Download Flatcar image', group: 'template', status: 'pending' },
    { id: 'node:demo-server-1:clone', title: 'Clone VM', group: 'demo-server-1', status: 'pending' },
    { id: 'node:demo-agent-1:clone', title: 'Clone VM', group: 'demo-agent-1', status: 'pending' },
  ],
};

function logs(id: string, group: string, n: number, at = T0): RunEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    type: 'log' as const,
    id,
    group,
    line: `${group} line ${i + 1}`,
    level: 'info' as const,
    at,
  }));
}

test('given a running step with many log lines, when rendered, then its pane shows only a bounded tail of the latest lines', async () => {
  const store = new RunStore({ frameMs: 0, tailLines: 4 });
  const actions: RunAction[] = [];
  const r = render(<RunScreen store={store} cluster="demo" now={() => T0 + 5000} onSubmit={(a) => actions.push(a)} />);
  try {
    feed(store, [
      plan,
      { type: 'run', status: 'started', at: T0 },
      { type: 'step', id: 'proxmox:connect', title: 'Connect to Proxmox', group: 'proxmox', status: 'running', at: T0 },
      ...logs('proxmox:connect', 'proxmox', 50),
    ]);
    const f = await r.waitFor('proxmox line 50');
    assert.match(f, /proxmox › Connect to Proxmox/);
    assert.match(f, /5s/, 'elapsed time shown');
    assert.match(f, /0\/4/, 'overall progress done/total');
    assert.ok(f.includes('proxmox line 47'));
    assert.ok(!f.includes('proxmox line 46'), 'older lines are not in the pane');
    assert.ok(!f.includes('proxmox line 1\n'));
  } finally {
    r.unmount();
    store.close();
  }
});

test('given a step finishes, then it collapses into the static list and its pane disappears; parallel steps get a pane each', async () => {
  const store = new RunStore({ frameMs: 0 });
  const r = render(<RunScreen store={store} cluster="demo" now={() => T0 + 2000} onSubmit={() => {}} />);
  try {
    feed(store, [
      plan,
      { type: 'run', status: 'started', at: T0 },
      { type: 'step', id: 'proxmox:connect', title: 'Connect to Proxmox', group: 'proxmox', status: 'running', at: T0 },
      { type: 'step', id: 'proxmox:connect', title: 'Connect to Proxmox', group: 'proxmox', status: 'done', via: 'run', at: T0 + 1500 },
      {
        type: 'step',
        id: 'template:image',
        title: 'Download Flatcar image',
        group: 'template',
        status: 'done',
        via: 'check',
        at: T0 + 1600,
      },
      { type: 'step', id: 'node:demo-server-1:clone', title: 'Clone VM', group: 'demo-server-1', status: 'running', at: T0 + 1600 },
      { type: 'step', id: 'node:demo-agent-1:clone', title: 'Clone VM', group: 'demo-agent-1', status: 'running', at: T0 + 1600 },
      ...logs('node:demo-server-1:clone', 'demo-server-1', 3),
      ...logs('node:demo-agent-1:clone', 'demo-agent-1', 2),
    ]);
    const f = await r.waitFor('demo-agent-1 line 2');
    assert.match(f, /✔ proxmox › Connect to Proxmox 1s/);
    assert.match(f, /✔ template › Download Flatcar image already done/);
    assert.match(f, /demo-server-1 › Clone VM/);
    assert.match(f, /demo-server-1 line 3/);
    assert.match(f, /2\/4/);
    // The finished step has no live pane any more: its title appears once (in the static list).
    assert.equal(f.split('Connect to Proxmox').length - 1, 1);
    assert.equal(store.buffered('proxmox:connect').lines.length, 0, 'a done step drops its buffer');
  } finally {
    r.unmount();
    store.close();
  }
});

test('given a failed step, then the failure view shows the step, the error with its fix and the log path, and r asks to retry', async () => {
  const store = new RunStore({ frameMs: 0 });
  const actions: RunAction[] = [];
  const r = render(
    <RunScreen store={store} cluster="demo" logFile="/tmp/state/demo/run.log" now={() => T0 + 2000} onSubmit={(a) => actions.push(a)} />,
  );
  try {
    feed(store, [
      plan,
      { type: 'run', status: 'started', at: T0 },
      { type: 'step', id: 'template:image', title: 'Download Flatcar image', group: 'template', status: 'running', at: T0 },
      ...logs('template:image', 'template', 3),
      {
        type: 'step',
        id: 'template:image',
        title: 'Download Flatcar image',
        group: 'template',
        status: 'failed',
        at: T0 + 1000,
        error: {
          message: 'storage "local" does not allow content "import"',
          fix: 'Run: pvesm set local --content iso,vztmpl,backup,import,snippets',
          detail: 'task log tail',
        },
      },
      { type: 'run', status: 'failed', at: T0 + 1000, message: 'template:image failed' },
    ]);
    const f = await r.waitFor('Fix:');
    assert.match(f, /template › Download Flatcar image failed/);
    assert.match(f, /does not allow content "import"/);
    assert.match(f, /pvesm set local --content/);
    assert.match(f, /\/tmp\/state\/demo\/run\.log/);
    assert.match(f, /r.*retry/);
    await r.press('l');
    const log = await r.waitFor('Log of template');
    assert.match(log, /template line 3/, 'the failed step keeps its buffered log for the expanded view');
    await r.press(KEYS.esc);
    await r.waitFor('Fix:');
    await r.press('r');
    assert.deepEqual(actions, ['retry']);
    await r.press('q');
    assert.deepEqual(actions, ['retry', 'quit']);
  } finally {
    r.unmount();
    store.close();
  }
});

test('given twelve running nodes in an 80x24 terminal, then the live view fits the screen and expanding a pane shows its log', async () => {
  const store = new RunStore({ frameMs: 0, tailLines: 8 });
  const r = render(<RunScreen store={store} cluster="big" now={() => T0} onSubmit={() => {}} />, { columns: 80, rows: 24 });
  try {
    const ev: RunEvent[] = [{ type: 'run', status: 'started', at: T0 }];
    for (let n = 1; n <= 12; n++) {
      ev.push({ type: 'step', id: `node:n${n}:boot`, title: 'Boot', group: `n${n}`, status: 'running', at: T0 });
      ev.push(...logs(`node:n${n}:boot`, `n${n}`, 200));
    }
    feed(store, ev);
    const f = await r.waitFor('n1 › Boot');
    const lines = f.replace(/\n+$/, '').split('\n');
    assert.ok(lines.length <= 24, `frame has ${lines.length} rows:\n${f}`);
    assert.ok(
      lines.every((l) => l.length <= 80),
      'no row wider than the terminal',
    );
    assert.match(f, /more running|n12 › Boot/);
    await r.press(KEYS.down);
    await r.press('l');
    const log = await r.waitFor('Log of n2 › Boot');
    assert.match(log, /last \d+ of 200 lines/);
    assert.match(log, /n2 line 200/);
    assert.ok(log.replace(/\n+$/, '').split('\n').length <= 24);
  } finally {
    r.unmount();
    store.close();
  }
});

test('given the terminal is resized, then the panes reflow to the new width', async () => {
  const store = new RunStore({ frameMs: 0 });
  const r = render(<RunScreen store={store} cluster="demo" now={() => T0} onSubmit={() => {}} />, { columns: 100, rows: 30 });
  try {
    feed(store, [
      { type: 'run', status: 'started', at: T0 },
      { type: 'step', id: 's', title: 'Step', group: 'g', status: 'running', at: T0 },
      { type: 'log', id: 's', group: 'g', line: 'x'.repeat(200), level: 'info', at: T0 },
    ]);
    await r.waitFor((f) => f.split('\n').some((l) => l.length > 80));
    r.stdout.resize(60, 20);
    await r.waitFor((f) => f.includes('g › Step') && f.split('\n').every((l) => l.length <= 60));
  } finally {
    r.unmount();
    store.close();
  }
});

test('given log lines longer than the pane, then each is cut at the edge with "…" beside the gutter, and a line that fits is shown whole', async () => {
  const store = new RunStore({ frameMs: 0, tailLines: 3 });
  const r = render(<RunScreen store={store} cluster="demo" now={() => T0} onSubmit={() => {}} />, { columns: 40, rows: 20 });
  try {
    // 40 columns: the gutter "  │ " takes 4, a line gets 35 (the last one is the "…" of a cut line).
    const fits = 'f'.repeat(35);
    feed(store, [
      { type: 'run', status: 'started', at: T0 },
      { type: 'step', id: 's', title: 'Step', group: 'g', status: 'running', at: T0 },
      { type: 'log', id: 's', group: 'g', line: `long ${'y'.repeat(60)}`, level: 'info', at: T0 },
      { type: 'log', id: 's', group: 'g', line: fits, level: 'info', at: T0 },
      { type: 'log', id: 's', group: 'g', line: 'short', level: 'warn', at: T0 },
    ]);
    const f = await r.waitFor('warn: short');
    const lines = f.split('\n');
    assert.ok(lines.includes(`  │ long ${'y'.repeat(29)}…`), f);
    assert.ok(lines.includes(`  │ ${fits}`), f);
    assert.ok(lines.includes('  │ warn: short'), f);
  } finally {
    r.unmount();
    store.close();
  }
});

test('the store publishes at most once per frame however many events arrive, with a heartbeat only while running', async () => {
  const store = new RunStore({ frameMs: 20, heartbeatMs: 40, tailLines: 3, bufferLines: 5 });
  let published = 0;
  const off = store.subscribe(() => published++);
  try {
    store.ingest({ type: 'run', status: 'started', at: T0 });
    store.ingest({ type: 'step', id: 's', title: 'S', group: 'g', status: 'running', at: T0 });
    for (let i = 1; i <= 10_000; i++) store.ingest({ type: 'log', id: 's', group: 'g', line: `l${i}`, level: 'info', at: T0 });
    assert.equal(published, 0, 'ingesting does not publish');
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    const frames = (performance.now() - t) / 20;
    assert.ok(published >= 1 && published <= frames + 1, `published ${published} snapshots in ${Math.round(frames)} frames`);
    const snap = store.getSnapshot();
    assert.deepEqual(snap.running[0]!.tail, ['l9998', 'l9999', 'l10000']);
    assert.equal(snap.running[0]!.lineCount, 10_000);
    assert.deepEqual(store.buffered('s').lines, ['l9996', 'l9997', 'l9998', 'l9999', 'l10000'], 'the buffer is bounded too');
    store.ingest({ type: 'step', id: 's', title: 'S', group: 'g', status: 'done', via: 'run', at: T0 + 1 });
    store.ingest({ type: 'run', status: 'succeeded', at: T0 + 1 });
    store.flush();
    const after = published;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(published, after, 'no heartbeat once the run ended');
  } finally {
    off();
    store.close();
  }
});

test('the total counts the plan\'s steps only: the services\' own log lines (id "services") are not a step', () => {
  const store = new RunStore({ frameMs: 0 });
  try {
    feed(store, [
      plan,
      { type: 'run', status: 'started', at: T0 },
      { type: 'log', id: 'services', group: 'proxmox', line: 'pinned the TLS fingerprint', level: 'info', at: T0 },
      { type: 'progress', id: 'services', group: 'proxmox', message: 'connecting', at: T0 },
      ...['proxmox:connect', 'template:image', 'node:demo-server-1:clone', 'node:demo-agent-1:clone'].map(
        (id): RunEvent => ({ type: 'step', id, title: id, group: 'g', status: 'done', via: 'run', at: T0 + 1 }),
      ),
    ]);
    const snap = store.getSnapshot();
    assert.equal(snap.total, 4);
    assert.equal(snap.completed, 4, 'every step done is the whole bar');
    assert.deepEqual(store.buffered('services').lines, ['pinned the TLS fingerprint'], 'the lines are kept');
    // a step seen first through its log, then through its status, is counted once
    store.ingest({ type: 'log', id: 'extra', group: 'g', line: 'x', level: 'info', at: T0 });
    store.ingest({ type: 'step', id: 'extra', title: 'Extra', group: 'g', status: 'running', at: T0 });
    store.ingest({ type: 'step', id: 'extra', title: 'Extra', group: 'g', status: 'done', via: 'run', at: T0 });
    store.flush();
    assert.deepEqual([store.getSnapshot().total, store.getSnapshot().completed], [5, 5]);
  } finally {
    store.close();
  }
});
