/**
 * StateStore's group commit (src/runner/state.ts): transitions of the same moment share one atomic
 * write, each resolves only once a file holding it is on disk, and a synchronous update made while a
 * group write is under way is never replaced by that older write.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { StateStore, readState } from '../src/runner/state.js';

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-state-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
};

describe('StateStore.dispatchSaved', () => {
  test('each transition is on disk when its promise resolves; many at once leave one file', async () => {
    const t = tempDir();
    try {
      const store = StateStore.open(t.dir, 'test');
      const seen: string[] = [];
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          store.dispatchSaved({ type: 'running', id: `s${i}`, at: i }).then((rec) => {
            assert.equal(rec.status, 'running');
            seen.push(readState(t.dir)!.steps[`s${i}`]!.status);
          }),
        ),
      );
      assert.equal(seen.length, 60);
      assert.ok(seen.every((s) => s === 'running'));
      // later transitions (after the first group) are saved too
      for (let i = 0; i < 10; i++) await store.dispatchSaved({ type: 'done', id: `s${i}`, at: 100 + i, via: 'run' });
      const onDisk = readState(t.dir)!;
      assert.equal(Object.keys(onDisk.steps).length, 60);
      assert.equal(onDisk.steps.s9!.status, 'done');
      assert.equal(onDisk.steps.s10!.status, 'running');
      assert.deepEqual(readdirSync(t.dir).sort(), ['state.journal', 'state.json']); // no temp files left
    } finally {
      t.cleanup();
    }
  });

  test("a synchronous update during a group write is kept, with the group's transitions", async () => {
    const t = tempDir();
    try {
      const store = StateStore.open(t.dir, 'test');
      for (let round = 0; round < 20; round++) {
        const p = store.dispatchSaved({ type: 'running', id: `r${round}`, at: round });
        await new Promise((r) => setImmediate(r)); // the group write has started (or finished)
        store.update((s) => {
          s.pins[`pin${round}`] = `fp${round}`;
        });
        await p;
        await store.saved();
        const onDisk = readState(t.dir)!;
        assert.equal(onDisk.pins[`pin${round}`], `fp${round}`, `round ${round}: the synchronous update was overwritten`);
        assert.equal(onDisk.steps[`r${round}`]!.status, 'running');
      }
      assert.deepEqual(readdirSync(t.dir).sort(), ['state.journal', 'state.json']); // no temp files left
    } finally {
      t.cleanup();
    }
  });

  test('the file always holds exactly the state in memory, also after in-place updates of a record', async () => {
    const t = tempDir();
    try {
      const store = StateStore.open(t.dir, 'test');
      store.update((s) => {
        s.order = ['a', 'b'];
        s.titles = { a: 'A "quoted"', b: 'B' };
      });
      await store.dispatchSaved({ type: 'running', id: 'a', at: 1 });
      await store.dispatchSaved({ type: 'done', id: 'a', at: 2, via: 'run', outputs: { vmid: 9001, note: 'ü\n"x"' } });
      assert.deepEqual(readState(t.dir), JSON.parse(JSON.stringify(store.get())));
      // like forget-host-key: a record changed in place by update() must not be saved from a stale cache
      store.update((s) => {
        s.steps.a!.status = 'pending';
        delete s.steps.a!.outputs;
        s.titles!.b = 'B renamed';
      });
      await store.dispatchSaved({ type: 'running', id: 'b', at: 3 });
      store.pins().set('node-ssh:x', 'SHA256:abc');
      await store.saved();
      const onDisk = readState(t.dir)!;
      assert.deepEqual(onDisk, JSON.parse(JSON.stringify(store.get())));
      assert.equal(onDisk.steps.a!.status, 'pending');
      assert.equal(onDisk.steps.a!.outputs, undefined);
      assert.equal(onDisk.titles!.b, 'B renamed');
      assert.equal(onDisk.pins['node-ssh:x'], 'SHA256:abc');
    } finally {
      t.cleanup();
    }
  });

  test('an invalid transition is refused at once and changes nothing', async () => {
    const t = tempDir();
    try {
      const store = StateStore.open(t.dir, 'test');
      await store.dispatchSaved({ type: 'done', id: 'a', at: 1, via: 'check' });
      const before = JSON.stringify(readState(t.dir));
      await assert.rejects(store.dispatchSaved({ type: 'done', id: 'a', at: 2, via: 'run' }), /must follow/);
      assert.equal(JSON.stringify(readState(t.dir)), before);
    } finally {
      t.cleanup();
    }
  });
});
