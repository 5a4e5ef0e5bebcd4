/** homelab preset from nothing to a kubeconfig on the simulator with demo Flatcar nodes, through the runner. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startE2e, type E2eEnv } from './e2e-harness.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

test('homelab: up from nothing gives a working kubeconfig; a second up changes nothing', async () => {
  env = await startE2e({ preset: 'homelab' });
  const r = await env.up();
  const errors = env.events.filter((e) => e.type === 'step' && e.status === 'failed');
  assert.equal(r.status, 'succeeded', JSON.stringify(errors, null, 2) + JSON.stringify(r.blocked));
  const kc = join(env.stateDir, 'clusters', 'homelab', 'kubeconfig');
  assert.ok(existsSync(kc));
  assert.equal(statSync(kc).mode & 0o777, 0o600);
  const doc = parse(readFileSync(kc, 'utf8'));
  assert.equal(doc['current-context'], 'homelab');
  assert.match(doc.clusters[0].cluster.server, /^https:\/\/127\.0\.\d+\.\d+:6443$/);
  const logs = env.events.filter((e) => e.type === 'log').map((e) => (e as { line: string }).line);
  assert.ok(logs.some((l) => l === `Try it: kubectl --kubeconfig ${kc} get nodes`));

  const mark = env.sim.requests().length;
  const again = await env.up();
  assert.equal(again.status, 'succeeded');
  assert.deepEqual(env.changingSince(mark), []);
});
