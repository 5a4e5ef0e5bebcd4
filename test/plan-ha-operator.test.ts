import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCliProcess, tempDir, TOKEN_SECRET } from './helpers/cli.js';

const config = (mode?: string) => `preset: ha
proxmox:
  url: https://127.0.0.1:8006
  tokenId: root@pam!flatcar
  tokenSecret: ${TOKEN_SECRET}
  fingerprint: ${Array.from({ length: 32 }, () => 'AB').join(':')}
${mode ? `apps:\n  mode: ${mode}\n` : ''}`;

test('plan for the ha preset shows the operator steps: the operator with its Program and Stack, then the wait for the operator', async () => {
  const t = tempDir();
  try {
    const file = join(t.dir, 'ha.yaml');
    writeFileSync(file, config());
    const r = await runCliProcess(['plan', '--config', file, '--state-dir', join(t.dir, 'state')], { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /apps:bootstrap\s+Apply Pulumi Kubernetes Operator with Pulumi \(project infra-bootstrap, stack ha\), and hand it a Program infra-apps \(Pulumi YAML of kured, Piraeus \(LINSTOR\), cert-manager, system-upgrade-controller\), a Stack infra-apps/,
    );
    assert.match(
      r.stdout,
      /apps:operator\s+Wait until the Pulumi operator has applied kured, Piraeus \(LINSTOR\), cert-manager, system-upgrade-controller \(Stack pulumi-kubernetes-operator\/infra-apps/,
    );
    assert.doesNotMatch(r.stdout, /apps:infra/);

    writeFileSync(file, config('local'));
    const local = await runCliProcess(['plan', '--config', file, '--state-dir', join(t.dir, 'state')], { cwd: t.dir });
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, /apps:infra\s+Apply kured/);
    assert.doesNotMatch(local.stdout, /apps:operator/);
  } finally {
    t.cleanup();
  }
});
