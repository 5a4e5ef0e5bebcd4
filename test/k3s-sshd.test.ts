/**
 * The k3s install over SSH to a REAL OpenSSH sshd: the installer runs for real (in a bwrap sandbox whose /
 * is a temp dir, with stub systemctl/curl), the connection is dropped in the middle of the download, and
 * the install is run again over a new connection: it completes, leaves no temp files, and a third run
 * changes nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startSshd, type Sshd } from './helpers/sshd.js';
import { createSshConnector, connectWithRetry } from '../src/ssh/client.js';
import type { SshSession } from '../src/ssh/types.js';
import { installK3sOnNode } from '../src/k3s/install.js';
import { k3sDownloadUrl } from '../src/k3s/release.js';
import { RemoteError } from '../src/errors.js';

const STUBS = join(import.meta.dirname, 'fixtures', 'k3s-stubs');
const bin = readFileSync(join(STUBS, 'k3s'));
const SHA = createHash('sha256').update(bin).digest('hex');
const VERSION = 'v1.33.4+k3s1';
const bwrapOk = spawnSync('bwrap', ['--version']).status === 0;

let sshd: Sshd;
let root: string;
before(async () => {
  sshd = await startSshd();
  root = mkdtempSync(join(tmpdir(), 'k3s-sshd-root-'));
  for (const d of ['home/core', 'etc', 'run', 'tmp', 'release', 'var']) mkdirSync(join(root, d), { recursive: true });
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${d}`, join(root, d));
  writeFileSync(join(root, 'release', 'k3s'), bin, { mode: 0o755 });
});
after(async () => {
  await sshd?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const wrap = (argv: string[]) => [
  'bwrap',
  '--bind',
  root,
  '/',
  '--dev',
  '/dev',
  '--proc',
  '/proc',
  '--ro-bind',
  '/usr',
  '/usr',
  '--ro-bind',
  STUBS,
  '/stubs',
  '--clearenv',
  '--setenv',
  'PATH',
  '/stubs:/usr/bin:/usr/sbin',
  ...argv,
];
const connect = () =>
  connectWithRetry(
    createSshConnector(),
    {
      host: sshd.host,
      port: sshd.port,
      username: sshd.user,
      privateKey: sshd.clientKey,
      hostKeyFingerprint: sshd.hostKeyFingerprint,
      label: 'node-1',
    },
    { timeoutMs: 20_000 },
  );
const config = 'node-name: node-1\ntoken: t0ps3cret\n';
const install = (session: SshSession) =>
  installK3sOnNode({
    session,
    label: 'node-1',
    role: 'server',
    version: VERSION,
    sha256: SHA,
    url: k3sDownloadUrl('https://mirror.test/releases', VERSION, 'amd64'),
    config,
    sandbox: { root, wrap },
  });

test('install over a real sshd survives a dropped connection and resumes', { skip: bwrapOk ? false : 'bwrap not available' }, async () => {
  // 1. The download is slow; cut every session while it runs.
  writeFileSync(join(root, 'release', 'delay'), '5');
  const s1 = await connect();
  const first = install(s1);
  const deadline = Date.now() + 15_000;
  while (!existsSync(join(root, 'run', 'curl-calls.log'))) {
    if (Date.now() > deadline) throw new Error('the installer never reached the download');
    await new Promise((r) => setTimeout(r, 50));
  }
  const killed = await sshd.killSessionChildren();
  assert.ok(killed > 0);
  await assert.rejects(first, (e: Error) => e instanceof RemoteError && /lost|closed|exit code/.test(e.message));
  await s1.close();
  assert.ok(!existsSync(join(root, 'opt/bin/k3s')), 'nothing installed by the cut run');

  // 2. Run again over a new connection: completes.
  rmSync(join(root, 'release', 'delay'));
  const s2 = await connect();
  try {
    assert.equal(await install(s2), 'installed');
    assert.deepEqual(readFileSync(join(root, 'opt/bin/k3s')), bin);
    assert.deepEqual(
      readdirSync(join(root, 'opt/bin')).filter((f) => f.startsWith('.k3s.new')),
      [],
      'no temp file left',
    );
    assert.equal(readFileSync(join(root, 'etc/rancher/k3s/config.yaml'), 'utf8'), config);
    assert.equal(statSync(join(root, 'etc/rancher/k3s/config.yaml')).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(root, 'home/core/flatcar-k3s-config.yaml')), 'staged config removed');
    assert.match(readFileSync(join(root, 'etc/systemd/system/k3s.service'), 'utf8'), /ExecStart=\/opt\/bin\/k3s server/);
    // 3. Once more: nothing to do.
    assert.equal(await install(s2), 'unchanged');
  } finally {
    await s2.close();
  }
});
