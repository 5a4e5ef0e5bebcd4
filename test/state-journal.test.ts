/**
 * The state as a journal (src/store/journal.ts, src/runner/state.ts): a run writes O(transitions) bytes
 * (not the whole state per transition), a torn last line is ignored and cut off, and a process killed
 * (SIGKILL) at random points always leaves a state that loads and holds every acknowledged transition.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { StateStore, readState } from '../src/runner/state.js';
import { clusterFiles } from '../src/store/layout.js';

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-journal-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
};

/** A run of `nodes` nodes x 6 steps x 2 transitions, outputs of a realistic size; bytes the store wrote. */
async function run(dir: string, nodes: number): Promise<{ written: number; transitions: number }> {
  const store = StateStore.open(dir, 'test');
  store.update((s) => {
    s.order = Array.from({ length: nodes * 6 }, (_, i) => `node:n${Math.floor(i / 6)}:step${i % 6}`);
  });
  let transitions = 0;
  for (let n = 0; n < nodes; n++) {
    await Promise.all(
      Array.from({ length: 6 }, async (_, k) => {
        const id = `node:n${n}:step${k}`;
        await store.dispatchSaved({ type: 'running', id, at: 1 });
        await store.dispatchSaved({
          type: 'done',
          id,
          at: 2,
          via: 'run',
          outputs: { vmid: 9000 + n, address: `127.0.1.${n % 250}`, hostKey: 'SHA256:' + 'x'.repeat(43), note: 'y'.repeat(120) },
        });
        transitions += 2;
      }),
    );
  }
  return { written: store.written, transitions };
}

describe('state journal', () => {
  test('bytes written per run grow linearly with the number of nodes', async () => {
    const a = tempDir();
    const b = tempDir();
    try {
      const small = await run(a.dir, 50);
      const big = await run(b.dir, 200);
      const perSmall = small.written / small.transitions;
      const perBig = big.written / big.transitions;
      // a whole-state rewrite per transition would make this ratio about 4 (the state is 4x bigger)
      assert.ok(perBig / perSmall < 1.5, `bytes per transition: ${perSmall.toFixed(0)} at 50 nodes, ${perBig.toFixed(0)} at 200`);
      // and what is on disk loads as what was in memory
      const loaded = readState(b.dir)!;
      assert.equal(Object.keys(loaded.steps).length, 1200);
      assert.equal(loaded.steps['node:n199:step5']!.status, 'done');
      const files = clusterFiles(b.dir);
      assert.ok(statSync(files.state).size + statSync(files.stateJournal).size <= big.written);
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });

  test('a torn last line is not a transition; the next write cuts it off', async () => {
    const t = tempDir();
    try {
      const store = StateStore.open(t.dir, 'test');
      store.update(() => {});
      await store.dispatchSaved({ type: 'running', id: 'a', at: 1 });
      await store.dispatchSaved({ type: 'done', id: 'a', at: 2, via: 'run' });
      // a kill in the middle of the next append
      const journal = clusterFiles(t.dir).stateJournal;
      appendFileSync(journal, '{"s":99,"u":3,"id":"b","r":{"status":"runn');
      assert.equal(readState(t.dir)!.steps.b, undefined);
      assert.equal(readState(t.dir)!.steps.a!.status, 'done');
      const again = StateStore.open(t.dir, 'test');
      await again.dispatchSaved({ type: 'running', id: 'c', at: 4 });
      const text = readFileSync(journal, 'utf8');
      assert.ok(text.endsWith('\n'), text);
      for (const line of text.trim().split('\n')) JSON.parse(line); // the fragment is gone
      const st = readState(t.dir)!;
      assert.equal(st.steps.c!.status, 'running');
      assert.equal(st.steps.a!.status, 'done');
    } finally {
      t.cleanup();
    }
  });

  test('killed at random points, the state always loads and holds every acknowledged transition', async () => {
    const t = tempDir();
    const child = join(t.dir, 'writer.mts');
    const stateUrl = new URL('../src/runner/state.ts', import.meta.url).href;
    writeFileSync(
      child,
      `import { StateStore } from ${JSON.stringify(stateUrl)};
const [dir, round] = process.argv.slice(2);
const store = StateStore.open(dir, 'test');
for (let i = 0; ; i++) {
  const id = 'r' + round + 's' + i;
  const big = 'z'.repeat((i * 37) % 3000);
  // a group of transitions at once, a synchronous one, a pin, and now and then a snapshot
  await Promise.all([store.dispatchSaved({ type: 'running', id, at: i }), store.dispatchSaved({ type: 'running', id: id + 'b', at: i })]);
  process.stdout.write('ack ' + id + '\\n');
  store.dispatch({ type: 'done', id, at: i, via: 'run', outputs: { big } });
  process.stdout.write('ack ' + id + ' done\\n');
  store.pins().set('pin-' + round, 'fp' + i);
  await store.saved(); // a pin is acknowledged once saved (with the next group write)
  process.stdout.write('pin ' + round + ' fp' + i + '\\n');
  if (i % 25 === 24) store.update((s) => { s.lastRun = { startedAt: i, status: 'running', pid: process.pid }; });
}
`,
    );
    try {
      for (let round = 0; round < 8; round++) {
        const p = spawn(process.execPath, ['--import', 'tsx', child, t.dir, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        // kill at a random point once it has written a little (no timing is asserted)
        const want = 5 + Math.floor(Math.random() * 60);
        await new Promise<void>((resolve, reject) => {
          const onData = () => {
            if (out.split('\n').filter((l) => l.startsWith('ack')).length >= want) {
              p.stdout.off('data', onData);
              setTimeout(() => p.kill('SIGKILL'), Math.random() * 15);
            }
          };
          p.stdout.on('data', onData);
          p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code}: ${err}`))));
        });
        const st = readState(t.dir)!; // must load
        for (const line of out.split('\n')) {
          const m = /^ack (\S+)( done)?$/.exec(line);
          if (m) {
            const rec = st.steps[m[1]!];
            assert.ok(rec, `round ${round}: acknowledged ${m[1]} is missing`);
            if (m[2]) assert.equal(rec.status, 'done', `round ${round}: acknowledged ${m[1]} done`);
          }
        }
        const pins = out.split('\n').filter((l) => l.startsWith('pin '));
        if (pins.length) {
          const [, r, fp] = pins.at(-1)!.split(' ');
          // the pin acknowledged last, or one written after it
          assert.ok(Number(st.pins[`pin-${r}`]!.slice(2)) >= Number(fp!.slice(2)), `round ${round}: pin went back`);
        }
      }
    } finally {
      t.cleanup();
    }
  });
});
