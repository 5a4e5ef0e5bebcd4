import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCliProcess, tempDir, writeConfig } from './helpers/cli.js';

// Nothing listens on 127.0.0.1:1 and no `pulumi` is on this PATH: the run stops at its first real step.
const env = { PATH: '/usr/bin:/bin', CI: 'true' };

test('without the Pulumi CLI, up stops before anything is created and names --skip-apps; with it, the apps are left out', async () => {
  const t = tempDir();
  try {
    const cfg = writeConfig(t.dir, '');
    const { writeFileSync, readFileSync } = await import('node:fs');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('https://127.0.0.1:8006', 'https://127.0.0.1:1'));
    const without = await runCliProcess(['up', '--config', cfg, '--yes', '--state-dir', t.dir], { cwd: t.dir, env });
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stdout + without.stderr, /FAILED\s+apps:preflight/);
    assert.match(without.stdout + without.stderr, /--skip-apps/);
    assert.doesNotMatch(without.stdout, /running\s+proxmox:connect/);

    const skipped = await runCliProcess(['up', '--config', cfg, '--yes', '--skip-apps', '--state-dir', t.dir], { cwd: t.dir, env });
    assert.equal(skipped.code, 1);
    assert.doesNotMatch(skipped.stdout, /apps:(preflight|bootstrap|infra)/);
    assert.match(skipped.stdout + skipped.stderr, /proxmox:connect/);
  } finally {
    t.cleanup();
  }
});
