import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { StateStore, emptyState, readState } from '../src/runner/state.js';
import { runCliProcess, tempDir } from './helpers/cli.js';

function seed(stateDir: string): string {
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  const store = new StateStore(clusterDir, emptyState('homelab'));
  store.update((s) => {
    s.pins['node-ssh:homelab-server-1'] = 'SHA256:' + 'A'.repeat(43);
    s.pins['pve-ssh:pve1'] = 'SHA256:' + 'B'.repeat(43);
    s.steps['node:homelab-server-1:ssh'] = {
      status: 'done',
      via: 'run',
      at: 1,
      outputs: { address: '127.0.0.5', port: 22, hostKey: 'SHA256:' + 'A'.repeat(43) },
    };
  });
  return clusterDir;
}

test('forget-host-key drops a node pin and re-opens its SSH step, keeping other pins', async () => {
  const t = tempDir();
  try {
    const clusterDir = seed(t.dir);
    const r = await runCliProcess(['forget-host-key', 'homelab-server-1', '--state-dir', t.dir], { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Forgot node-ssh:homelab-server-1 \(was SHA256:A+\)/);
    const s = readState(clusterDir)!;
    assert.equal(s.pins['node-ssh:homelab-server-1'], undefined);
    assert.equal(s.pins['pve-ssh:pve1'], 'SHA256:' + 'B'.repeat(43));
    assert.equal(s.steps['node:homelab-server-1:ssh']!.status, 'pending');
    assert.equal(s.steps['node:homelab-server-1:ssh']!.outputs!.hostKey, undefined);
    assert.equal(s.steps['node:homelab-server-1:ssh']!.outputs!.address, '127.0.0.5');
  } finally {
    t.cleanup();
  }
});

test('forget-host-key takes a raw pin key, and names the known pins when the key is unknown', async () => {
  const t = tempDir();
  try {
    const clusterDir = seed(t.dir);
    const ok = await runCliProcess(['forget-host-key', 'pve-ssh:pve1', '--state-dir', t.dir], { cwd: t.dir });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(readState(clusterDir)!.pins['pve-ssh:pve1'], undefined);
    const bad = await runCliProcess(['forget-host-key', 'homelab-agent-9', '--state-dir', t.dir], { cwd: t.dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no pinned key "node-ssh:homelab-agent-9"/);
    assert.match(bad.stderr, /node-ssh:homelab-server-1/);
    const none = await runCliProcess(['forget-host-key', '--state-dir', t.dir], { cwd: t.dir });
    assert.equal(none.code, 2);
  } finally {
    t.cleanup();
  }
});
