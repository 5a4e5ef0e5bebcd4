/**
 * Issue #15, trust that cannot be dropped: a cluster built with proxmox.fingerprint in its config records
 * that fingerprint in its state. When the line is later removed and the URL points at a server with
 * another certificate, `up --yes` refuses before any HTTP request (and so the API token) reaches it:
 * the recorded pin is used, never trust on first use.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import { makeSelfSignedCert } from '../src/sim/tls.js';
import { resolveConfig } from '../src/config/load.js';
import { readState } from '../src/runner/state.js';
import { clusterDirFor } from '../src/store/layout.js';

let env: E2eEnv | undefined;
let impostor: Server | undefined;
after(async () => {
  impostor?.close();
  await env?.close();
});

test('removing proxmox.fingerprint from a built cluster and pointing the URL at another certificate is refused before the token is sent', async () => {
  env = await startE2e({ preset: 'homelab' });
  const proxmox = env.raw.proxmox as Record<string, unknown>;
  assert.ok(proxmox.fingerprint, 'the simulator config names its fingerprint');
  const built = await env.up();
  assert.equal(built.status, 'succeeded', JSON.stringify(built.failed));
  const state = readState(clusterDirFor(env.stateDir, 'homelab'))!;
  assert.equal(state.pins['proxmox.tls'], env.sim.fingerprint, 'the fingerprint from the config is recorded in the state');

  // A server with another certificate that records every request it gets.
  const cert = makeSelfSignedCert('impostor', ['IP:127.0.0.1']);
  assert.notEqual(cert.fingerprint, env.sim.fingerprint);
  const requests: Array<{ url?: string; auth?: string }> = [];
  let handshakes = 0; // TCP connections (the client drops them during the TLS handshake)
  impostor = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    requests.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"version":"9.0.3","release":"9.0"}}');
  });
  impostor.on('connection', () => handshakes++);
  await new Promise<void>((resolve) => impostor!.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(impostor.address() as AddressInfo).port}`;

  const { fingerprint: _dropped, ...withoutPin } = proxmox;
  const moved = resolveConfig({ ...env.raw, proxmox: { ...withoutPin, url } }, { env: {} });
  assert.equal(moved.proxmox.fingerprint, undefined);
  const asked: string[] = [];
  const r = await env.up({ config: moved, options: { yes: true } });
  assert.equal(r.status, 'failed');
  assert.ok(handshakes > 0, 'the run did reach the other server');
  assert.deepEqual(requests, [], 'no HTTP request (so no API token) reached the other server');
  const failed = env.events.filter((e) => e.type === 'step' && e.status === 'failed').at(-1) as
    | { error?: { message: string; fix?: string } }
    | undefined;
  assert.match(failed?.error?.message ?? '', /TLS certificate changed/);
  assert.match(failed?.error?.fix ?? '', /forget-host-key proxmox\.tls/);
  const logs = env.events.filter((e) => e.type === 'log').map((e) => (e as { line: string }).line);
  assert.ok(!logs.some((l) => /on first use/.test(l)), 'nothing was trusted on first use');
  assert.deepEqual(asked, []);
  assert.equal(readState(clusterDirFor(env.stateDir, 'homelab'))!.pins['proxmox.tls'], env.sim.fingerprint, 'the pin stays');
});
