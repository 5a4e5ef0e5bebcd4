/**
 * Issue #15, join trust: after the first server starts, the sha256 of its cluster CA is pinned in the state
 * and every other node joins with k3s's secure token `K10<hash>::server:<secret>`; the secret stays in the
 * 0600 secrets file and out of the logs and state. A node that reaches a server whose CA is not the pinned
 * one refuses to join, and the run says so clearly.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { readState } from '../src/runner/state.js';
import { clusterDirFor } from '../src/store/layout.js';
import { sha256Hex } from '../src/k3s/release.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

test('nodes join with the pinned CA hash; a server with another CA is refused clearly', async () => {
  env = await startE2e({ preset: 'homelab' });
  const r = await env.up();
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failed));
  const dir = clusterDirFor(env.stateDir, 'homelab');
  const secrets = join(dir, 'secrets.json');
  assert.equal(statSync(secrets).mode & 0o777, 0o600);
  const secret = (JSON.parse(readFileSync(secrets, 'utf8')) as { k3sToken: string }).k3sToken;
  const first = env.guests.node('homelab-server-1')!;
  const caHash = sha256Hex(first.fs.get('/var/lib/rancher/k3s/server/tls/server-ca.crt')!.data.toString('utf8'));
  assert.equal(readState(dir)!.pins['k3s.ca'], caHash, 'the CA hash is pinned');
  const tokenOf = (name: string) =>
    (parse(env!.guests.node(name)!.fs.get('/etc/rancher/k3s/config.yaml')!.data.toString('utf8')) as { token: string }).token;
  assert.equal(tokenOf('homelab-server-1'), secret, 'the first server creates the CA with the bare secret');
  for (const agent of ['homelab-agent-1', 'homelab-agent-2']) assert.equal(tokenOf(agent), `K10${caHash}::server:${secret}`);
  const logs = env.events
    .filter((e) => e.type === 'log')
    .map((e) => (e as { line: string }).line)
    .join('\n');
  assert.ok(!logs.includes(secret), 'the secret is not logged');
  assert.ok(!readFileSync(join(dir, 'state.json'), 'utf8').includes(secret), 'the secret is not in the state');

  // Another cluster CA now answers at the first server's address (the file there still shows the old one).
  (first.cluster as unknown as { caData: string }).caData = Buffer.from('another cluster').toString('base64');
  const grown = resolveConfig(deepMerge(env.raw, { nodes: { agents: { count: 3 } } }) as Record<string, unknown>, { env: {} });
  const again = await env.up({ config: grown });
  assert.equal(again.status, 'failed');
  const failed = env.events.filter((e) => e.type === 'step' && e.status === 'failed') as Array<{
    id: string;
    error?: { message: string; fix?: string };
  }>;
  const join3 = failed.find((e) => e.id === 'node:homelab-agent-3:k3s');
  assert.ok(join3, JSON.stringify(failed));
  assert.match(join3.error!.message, /refused to join: the server it reached does not hold the cluster CA pinned/);
  assert.match(join3.error!.fix ?? '', /forget-host-key k3s\.ca/);
  assert.equal(env.guests.node('homelab-agent-3')!.cluster, undefined, 'the node did not join');
});
