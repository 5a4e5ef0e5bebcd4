/**
 * install-k3s.sh for real, in a bubblewrap sandbox whose / is a temp dir (so /opt/bin, /etc/rancher…
 * are real paths), with stub systemctl/curl/k3s from test/fixtures/k3s-stubs on PATH.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  mkdtempSync,
  mkdirSync,
  copyFileSync,
  writeFileSync,
  readFileSync,
  statSync,
  existsSync,
  readlinkSync,
  rmSync,
  chmodSync,
  symlinkSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { installArgv, installScriptPath, STAGED } from '../src/k3s/install-script.js';
import { nodeK3sConfigYaml } from '../src/k3s/config.js';
import { kubeVipManifest, KUBE_VIP_MANIFEST_NAME } from '../src/k3s/kube-vip.js';
import { k3sDownloadUrl } from '../src/k3s/release.js';
import { resolveConfig } from '../src/config/load.js';
import { planNodes } from '../src/config/layout.js';

const STUBS = join(import.meta.dirname, 'fixtures', 'k3s-stubs');
const VERSION = 'v1.33.4+k3s1';
const stubBinary = readFileSync(join(STUBS, 'k3s'));
const SHA = createHash('sha256').update(stubBinary).digest('hex');
const bwrapOk = spawnSync('bwrap', ['--version']).status === 0;

const roots: string[] = [];
function makeRoot(release: Buffer = stubBinary): string {
  const root = mkdtempSync(join(tmpdir(), 'k3s-sandbox-'));
  roots.push(root);
  for (const d of ['home/core', 'etc', 'run', 'tmp', 'release', 'var']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'release', 'k3s'), release, { mode: 0o755 });
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${d}`, join(root, d));
  return root;
}

function run(root: string, args: string[]) {
  const r = spawnSync(
    'bwrap',
    [
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
      '--ro-bind',
      installScriptPath(),
      '/install-k3s.sh',
      '--clearenv',
      '--setenv',
      'PATH',
      '/stubs:/usr/bin:/usr/sbin',
      'sh',
      '/install-k3s.sh',
      ...args,
    ],
    { encoding: 'utf8' },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const inRoot = (root: string, p: string) => join(root, p);
const mode = (root: string, p: string) => statSync(inRoot(root, p)).mode & 0o777;
const calls = (root: string) =>
  existsSync(inRoot(root, 'run/stub-systemd/calls.log')) ? readFileSync(inRoot(root, 'run/stub-systemd/calls.log'), 'utf8') : '';

const ha = resolveConfig(
  { preset: 'ha', proxmox: { url: 'https://pve.test:8006', tokenId: 'root@pam!t', tokenSecret: '00000000-0000-0000-0000-000000000000' } },
  { env: {} },
);
const haNodes = planNodes(ha);
const token = 'K10' + 'a'.repeat(40);
const serverConfig = nodeK3sConfigYaml({
  config: ha,
  node: haNodes[0]!,
  address: '192.168.50.11',
  token,
  firstServerAddress: '192.168.50.11',
});
const agentNode = haNodes.find((n) => n.role === 'agent')!;
const agentConfig = nodeK3sConfigYaml({
  config: ha,
  node: agentNode,
  address: '192.168.50.14',
  token,
  firstServerAddress: '192.168.50.11',
});
const vipManifest = kubeVipManifest({ vip: ha.nodes.vip!, interface: 'eth0' });

function stage(root: string, files: Record<string, string | Buffer>) {
  for (const [p, data] of Object.entries(files)) writeFileSync(inRoot(root, p), data, { mode: 0o600 });
}

const url = k3sDownloadUrl('https://mirror.test/k3s-io/k3s/releases', VERSION, 'amd64');

describe('install-k3s.sh in a sandbox', { skip: bwrapOk ? false : 'bwrap not available' }, () => {
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  describe('first HA server with a VIP', () => {
    let root: string;
    let first: ReturnType<typeof run>;
    before(() => {
      root = makeRoot();
      stage(root, { [STAGED.config]: serverConfig, [STAGED.manifest(KUBE_VIP_MANIFEST_NAME)]: vipManifest });
      first = run(
        root,
        installArgv({
          role: 'server',
          version: VERSION,
          sha256: SHA,
          url,
          config: STAGED.config,
          manifests: [STAGED.manifest(KUBE_VIP_MANIFEST_NAME)],
        }),
      );
    });

    test('installs the verified binary to /opt/bin with kubectl/crictl links', () => {
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout.trim().split('\n').pop()!, /^RESULT installed$/);
      assert.deepEqual(readFileSync(inRoot(root, 'opt/bin/k3s')), stubBinary);
      assert.equal(mode(root, 'opt/bin/k3s'), 0o755);
      assert.equal(readlinkSync(inRoot(root, 'opt/bin/kubectl')), 'k3s');
      assert.equal(readlinkSync(inRoot(root, 'opt/bin/crictl')), 'k3s');
      assert.ok(!existsSync(inRoot(root, 'usr/local/bin/k3s')));
      assert.match(readFileSync(inRoot(root, 'run/curl-calls.log'), 'utf8'), /download\/v1\.33\.4%2Bk3s1\/k3s/);
    });

    test('writes config.yaml (0600) with cluster-init, tls-san with the VIP, secrets encryption', () => {
      assert.equal(readFileSync(inRoot(root, 'etc/rancher/k3s/config.yaml'), 'utf8'), serverConfig);
      assert.equal(mode(root, 'etc/rancher/k3s/config.yaml'), 0o600);
      assert.match(serverConfig, /cluster-init: true/);
      assert.match(serverConfig, /tls-san:\n  - 192\.168\.50\.10\n  - 192\.168\.50\.11/);
      assert.match(serverConfig, /secrets-encryption: true/);
      assert.match(serverConfig, /write-kubeconfig-mode: "0600"/);
      assert.ok(!existsSync(inRoot(root, STAGED.config)), 'staged config (with the token) removed');
    });

    test('installs the kube-vip manifest (0600) into the auto-deploy directory', () => {
      const p = `var/lib/rancher/k3s/server/manifests/${KUBE_VIP_MANIFEST_NAME}`;
      assert.equal(readFileSync(inRoot(root, p), 'utf8'), vipManifest);
      assert.equal(mode(root, p), 0o600);
      assert.match(vipManifest, /value: 192\.168\.50\.10/);
    });

    test('writes the k3s.service unit and starts it', () => {
      const unit = readFileSync(inRoot(root, 'etc/systemd/system/k3s.service'), 'utf8');
      assert.match(unit, /^ExecStart=\/opt\/bin\/k3s server$/m);
      assert.match(unit, /^Type=notify$/m);
      assert.match(calls(root), /daemon-reload/);
      assert.match(calls(root), /enable --now --no-block k3s\.service/);
      assert.equal(readFileSync(inRoot(root, 'run/stub-systemd/k3s.service'), 'utf8').trim(), 'active');
    });

    test('a second run with the same inputs changes nothing', () => {
      const unitMtime = statSync(inRoot(root, 'etc/systemd/system/k3s.service')).mtimeMs;
      const before = calls(root);
      stage(root, { [STAGED.config]: serverConfig, [STAGED.manifest(KUBE_VIP_MANIFEST_NAME)]: vipManifest });
      const again = run(
        root,
        installArgv({
          role: 'server',
          version: VERSION,
          sha256: SHA,
          url,
          config: STAGED.config,
          manifests: [STAGED.manifest(KUBE_VIP_MANIFEST_NAME)],
        }),
      );
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /RESULT unchanged/);
      assert.equal(statSync(inRoot(root, 'etc/systemd/system/k3s.service')).mtimeMs, unitMtime);
      const newCalls = calls(root).slice(before.length);
      assert.doesNotMatch(newCalls, /enable|restart|daemon-reload/);
      assert.ok(!existsSync(inRoot(root, STAGED.config)));
    });

    test('a changed config is installed and k3s restarted', () => {
      const changed = serverConfig.replace('secrets-encryption: true\n', '');
      stage(root, { [STAGED.config]: changed });
      const r = run(root, installArgv({ role: 'server', version: VERSION, sha256: SHA, url, config: STAGED.config }));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /RESULT installed/);
      assert.equal(readFileSync(inRoot(root, 'etc/rancher/k3s/config.yaml'), 'utf8'), changed);
      assert.match(calls(root), /restart --no-block k3s\.service/);
    });
  });

  test('an agent gets k3s-agent.service, its config, and no manifests even if some are staged', () => {
    const root = makeRoot();
    stage(root, { [STAGED.config]: agentConfig, [STAGED.manifest(KUBE_VIP_MANIFEST_NAME)]: vipManifest });
    const r = run(
      root,
      installArgv({
        role: 'agent',
        version: VERSION,
        sha256: SHA,
        url,
        config: STAGED.config,
        manifests: [STAGED.manifest(KUBE_VIP_MANIFEST_NAME)],
      }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(inRoot(root, 'etc/systemd/system/k3s-agent.service'), 'utf8'), /^ExecStart=\/opt\/bin\/k3s agent$/m);
    assert.ok(!existsSync(inRoot(root, 'etc/systemd/system/k3s.service')));
    assert.ok(!existsSync(inRoot(root, 'var/lib/rancher/k3s/server/manifests')));
    const cfg = readFileSync(inRoot(root, 'etc/rancher/k3s/config.yaml'), 'utf8');
    assert.match(cfg, /^server: https:\/\/192\.168\.50\.10:6443$/m);
    assert.doesNotMatch(cfg, /cluster-init/);
    assert.match(calls(root), /enable --now --no-block k3s-agent\.service/);
  });

  test('a single server without a VIP gets no kube-vip manifest and no cluster-init', () => {
    const homelab = resolveConfig(
      {
        preset: 'homelab',
        proxmox: { url: 'https://pve.test:8006', tokenId: 'root@pam!t', tokenSecret: '00000000-0000-0000-0000-000000000000' },
      },
      { env: {} },
    );
    const node = planNodes(homelab)[0]!;
    const cfg = nodeK3sConfigYaml({ config: homelab, node, address: '10.0.0.5', token, firstServerAddress: '10.0.0.5' });
    assert.doesNotMatch(cfg, /cluster-init|server:/);
    const root = makeRoot();
    stage(root, { [STAGED.config]: cfg });
    const r = run(root, installArgv({ role: 'server', version: VERSION, sha256: SHA, url, config: STAGED.config }));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(inRoot(root, 'var/lib/rancher/k3s/server/manifests')));
  });

  test('a binary whose sha256 does not match is refused and nothing is installed', () => {
    const root = makeRoot(Buffer.from('#!/bin/sh\necho evil\n'));
    stage(root, { [STAGED.config]: serverConfig });
    const r = run(root, installArgv({ role: 'server', version: VERSION, sha256: SHA, url, config: STAGED.config }));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /sha256 mismatch for k3s v1\.33\.4\+k3s1: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
    assert.ok(!existsSync(inRoot(root, 'opt/bin/k3s')));
    assert.equal(readdirSafe(inRoot(root, 'opt/bin')).length, 0, 'no temp file left behind');
    assert.ok(!existsSync(inRoot(root, 'etc/rancher/k3s/config.yaml')));
    assert.doesNotMatch(calls(root), /enable/);
  });

  test('air-gapped: the uploaded binary is verified and installed without any download', () => {
    const root = makeRoot();
    stage(root, { [STAGED.config]: serverConfig, [STAGED.binary]: stubBinary });
    chmodSync(inRoot(root, STAGED.binary), 0o644);
    const r = run(root, installArgv({ role: 'server', version: VERSION, sha256: SHA, binary: STAGED.binary, config: STAGED.config }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(inRoot(root, 'opt/bin/k3s')), stubBinary);
    assert.equal(mode(root, 'opt/bin/k3s'), 0o755);
    assert.ok(!existsSync(inRoot(root, 'run/curl-calls.log')), 'curl was not called');
    assert.ok(!existsSync(inRoot(root, STAGED.binary)));
  });

  test('--binary-only installs just the verified binary; the full install then finds it in place', () => {
    const root = makeRoot();
    const r = run(root, installArgv({ binaryOnly: true, version: VERSION, sha256: SHA, url }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /RESULT binary/);
    assert.deepEqual(readFileSync(inRoot(root, 'opt/bin/k3s')), stubBinary);
    assert.ok(!existsSync(inRoot(root, 'etc/systemd/system/k3s.service')));
    assert.doesNotMatch(calls(root), /enable|daemon-reload/);
    stage(root, { [STAGED.config]: serverConfig });
    const full = run(root, installArgv({ role: 'server', version: VERSION, sha256: SHA, url, config: STAGED.config }));
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stdout, /already in \/opt\/bin\/k3s/);
    assert.equal(readFileSync(inRoot(root, 'run/curl-calls.log'), 'utf8').trim().split('\n').length, 1, 'downloaded once');
  });

  test('bad arguments are refused with a message', () => {
    const root = makeRoot();
    const r = run(root, ['--role', 'master', '--version', VERSION, '--sha256', SHA, '--url', url]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--role must be server or agent/);
    const r2 = run(root, ['--role', 'server', '--version', 'latest', '--sha256', SHA, '--url', url]);
    assert.match(r2.stderr, /--version must look like/);
  });
});

function readdirSafe(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}
