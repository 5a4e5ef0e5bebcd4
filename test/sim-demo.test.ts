/**
 * startDemo (src/demo) and `flatcar-k3s demo-server`: the overrides make a complete config with the
 * homelab preset, the PVE host key is written 0600, and demo-server prints a usable JSON line and
 * stops on a signal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { resolveConfig } from '../src/config/load.js';
import { startDemo } from '../src/demo/index.js';
import type { CliIo } from '../src/cli/io.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'sim-demo-test-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('startDemo', () => {
  it('starts the simulator and returns overrides that complete the homelab preset', async () => {
    const stateDir = tempDir();
    const lines: string[] = [];
    const demo = await startDemo({ stateDir, speed: 0, log: (l) => lines.push(l) });
    try {
      const px = demo.overrides.proxmox as {
        url: string;
        tokenId: string;
        tokenSecret: string;
        fingerprint: string;
        ssh: { privateKeyFile: string; hostKey: string; port: number };
      };
      assert.equal(px.url, demo.sim.url);
      assert.equal(px.fingerprint, demo.sim.fingerprint);
      assert.equal(px.ssh.privateKeyFile, join(stateDir, 'demo', 'pve-host-ssh-key'));
      assert.equal(statSync(px.ssh.privateKeyFile).mode & 0o777, 0o600);
      assert.equal(readFileSync(px.ssh.privateKeyFile, 'utf8'), demo.sim.ssh!.privateKey);
      assert.match(lines.join('\n'), /simulated Proxmox VE 8\.4\.1 at https:\/\/127\.0\.0\.1:\d+/);
      const config = resolveConfig({ preset: 'homelab' }, { env: {}, overrides: demo.overrides, source: 'test' });
      assert.equal(config.proxmox.url, demo.sim.url);
      assert.equal(config.proxmox.ssh.hostKey, demo.sim.ssh!.hostKeyFingerprint);
      assert.deepEqual(config.proxmox.nodes, ['pve1']);
      // the mirror fillers and the demo guests contributed their overrides, pointing at loopback
      assert.ok(config.flatcar.feedBaseUrl.startsWith(demo.sim.mirror.url), config.flatcar.feedBaseUrl);
      assert.ok(config.flatcar.imageBaseUrl.startsWith(demo.sim.mirror.url), config.flatcar.imageBaseUrl);
      assert.ok(config.cluster.k3sReleaseUrl.startsWith(demo.sim.mirror.url), config.cluster.k3sReleaseUrl);
      assert.equal(config.nodes.sshKeys.length, 1);
      const feed = await fetch(`${config.flatcar.feedBaseUrl}/releases-stable.json`);
      assert.equal(feed.status, 200);
      assert.ok(Object.keys((await feed.json()) as object).includes('current'));
      // the token in the overrides works against the simulator
      const agent = new Agent({ connect: { ca: demo.sim.certPem } });
      try {
        const r = await request(`${px.url}/api2/json/nodes`, {
          dispatcher: agent,
          headers: { authorization: `PVEAPIToken=${px.tokenId}=${px.tokenSecret}` },
        });
        assert.equal(r.statusCode, 200);
        assert.equal(((await r.body.json()) as { data: unknown[] }).data.length, 1);
      } finally {
        await agent.close();
      }
    } finally {
      await demo.close();
    }
  });
});

/** GET over HTTPS accepting exactly one certificate, by SHA-256 fingerprint. */
function pinnedGet(url: string, fingerprint: string, authorization: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, headers: { authorization }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('socket', (s) =>
      s.once('secureConnect', () => {
        const got = (s as TLSSocket).getPeerCertificate().fingerprint256;
        if (got !== fingerprint) req.destroy(new Error(`fingerprint mismatch: ${got}`));
      }),
    );
    req.on('error', reject);
    req.end();
  });
}

describe('demo-server', () => {
  function fakeIo(): CliIo & { out: () => string; err: () => string; signal: () => void; ready: Promise<void> } {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    let handler: ((s: 'SIGINT' | 'SIGTERM') => void) | undefined;
    let markReady!: () => void;
    const ready = new Promise<void>((r) => (markReady = r));
    stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) markReady();
    });
    stderr.on('data', (d: Buffer) => (err += d));
    return {
      stdin: new PassThrough(),
      stdout,
      stderr,
      env: {},
      cwd: process.cwd(),
      onSignal(h) {
        handler = h;
        return () => (handler = undefined);
      },
      out: () => out,
      err: () => err,
      signal: () => handler?.('SIGINT'),
      ready,
    };
  }

  it('--json prints one line with url, token, fingerprint and a config; stops on SIGINT', async () => {
    const { run } = await import('../src/cli/commands/demo-server.js');
    const io = fakeIo();
    const done = run(['--json', '--speed', '0', '--nodes', '2', '--pve-version', '9.1.2', '--fail', 'GET /cluster/nextid#1=500:busy'], io);
    await Promise.race([io.ready, done.then((code) => assert.fail(`demo-server exited early with ${code}: ${io.err()}`))]);
    const lines = io.out().trim().split('\n');
    assert.equal(lines.length, 1);
    const info = JSON.parse(lines[0]!) as {
      url: string;
      tokenId: string;
      tokenSecret: string;
      fingerprint: string;
      node: string;
      config: Record<string, unknown>;
    };
    assert.equal(info.node, 'pve1');
    assert.equal(info.tokenId, 'root@pam!flatcar-k3s');
    const config = resolveConfig(info.config, { env: {}, source: 'demo-server' });
    assert.deepEqual(config.proxmox.nodes, ['pve1', 'pve2']);
    assert.equal(config.cluster.name, 'homelab');
    // pin by fingerprint, the way a config with proxmox.fingerprint does
    const auth = `PVEAPIToken=${info.tokenId}=${info.tokenSecret}`;
    const version = await pinnedGet(`${info.url}/api2/json/version`, info.fingerprint, auth);
    assert.equal(version.status, 200);
    assert.equal((JSON.parse(version.body) as { data: { version: string } }).data.version, '9.1.2');
    assert.equal((await pinnedGet(`${info.url}/api2/json/cluster/nextid`, info.fingerprint, auth)).status, 500);
    await assert.rejects(pinnedGet(`${info.url}/api2/json/version`, 'AB:'.repeat(31) + 'AB', auth), /fingerprint mismatch/);
    io.signal();
    assert.equal(await done, 0);
  });

  it('prints a curl example that pins the certificate (no -k)', async () => {
    const { run } = await import('../src/cli/commands/demo-server.js');
    const io = fakeIo();
    const done = run(['--speed', '0'], io);
    let exited = false;
    void done.finally(() => (exited = true)).catch(() => {});
    while (!io.out().includes('Press Ctrl-C')) {
      if (exited) await done; // surfaces the error (or fails below)
      assert.ok(!exited, `demo-server exited early: ${io.err()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const text = io.out();
    assert.match(text, /curl --cacert \S+pve-root-ca\.pem /);
    assert.doesNotMatch(text, /curl -k|--insecure/);
    assert.match(text, /fingerprint\s+([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    assert.match(text, /preset: homelab/);
    io.signal();
    assert.equal(await done, 0);
  });

  it('--shared-storage adds the shared nfs storage and its config uses it; each other node has its SSH host key pinned', async () => {
    const { run } = await import('../src/cli/commands/demo-server.js');
    const io = fakeIo();
    const done = run(['--json', '--speed', '0', '--nodes', '3', '--shared-storage'], io);
    await Promise.race([io.ready, done.then((code) => assert.fail(`demo-server exited early with ${code}: ${io.err()}`))]);
    const info = JSON.parse(io.out().trim().split('\n')[0]!) as { config: Record<string, unknown> };
    const config = resolveConfig(info.config, { env: {}, source: 'demo-server' });
    assert.deepEqual(config.proxmox.storage, { disks: 'nfs', images: 'nfs', snippets: 'nfs' });
    assert.deepEqual(Object.keys(config.proxmox.ssh.nodes), ['pve2', 'pve3']);
    assert.match(config.proxmox.ssh.nodes.pve2!.hostKey!, /^SHA256:/);
    assert.notEqual(config.proxmox.ssh.nodes.pve2!.hostKey, config.proxmox.ssh.hostKey);
    io.signal();
    assert.equal(await done, 0);
  });

  it('rejects a bad fault spec as a usage error before starting', async () => {
    const { run } = await import('../src/cli/commands/demo-server.js');
    await assert.rejects(run(['--fail', 'nonsense'], fakeIo()), /fault spec 'nonsense' is not understood/);
  });
});
