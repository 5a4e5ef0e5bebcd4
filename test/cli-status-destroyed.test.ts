import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { StateStore, emptyState } from '../src/runner/state.js';
import { runCliProcess, tempDir } from './helpers/cli.js';

function seed(stateDir: string, cluster: string, command: string, status: 'succeeded' | 'failed'): void {
  const store = new StateStore(join(stateDir, 'clusters', cluster), emptyState(cluster));
  store.update((s) => {
    s.lastRun = { startedAt: 1_000, finishedAt: 2_000, status, pid: 1, command };
  });
}

test('status says a cluster was destroyed only after a destroy that finished', async () => {
  const t = tempDir();
  try {
    seed(t.dir, 'gone', 'flatcar-k3s destroy --config c.yaml --yes', 'succeeded');
    seed(t.dir, 'half', 'flatcar-k3s destroy --config c.yaml --yes', 'failed');
    seed(t.dir, 'live', 'flatcar-k3s up --config c.yaml --yes', 'succeeded');
    const list = await runCliProcess(['status', '--state-dir', t.dir], { cwd: t.dir });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /gone\s+destroyed/);
    assert.match(list.stdout, /half\s+last run failed/);
    assert.match(list.stdout, /live\s+last run succeeded/);
    const one = await runCliProcess(['status', '--cluster', 'gone', '--state-dir', t.dir], { cwd: t.dir });
    assert.match(one.stdout, /Destroyed .*: its VMs are gone/);
    const other = await runCliProcess(['status', '--cluster', 'live', '--state-dir', t.dir], { cwd: t.dir });
    assert.doesNotMatch(other.stdout, /Destroyed/);
  } finally {
    t.cleanup();
  }
});
