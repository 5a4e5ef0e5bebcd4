import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { run } from '../src/cli/commands/apps.js';
import { StateStore } from '../src/runner/state.js';
import { STEP } from '../steps/ids.js';
import { UserError } from '../src/errors.js';
import type { CliIo } from '../src/cli/io.js';

const SECRET = '0d5c7a4e-1111-2222-3333-444455556666';

function memIo(env: NodeJS.ProcessEnv, cwd: string): CliIo & { out(): string; err(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  return { stdin: new PassThrough(), stdout, stderr, env, cwd, out: () => out, err: () => err };
}

function setup(apps: string) {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-apps-cmd-'));
  const config = join(dir, 'cluster.yaml');
  writeFileSync(
    config,
    `cluster: { name: homelab, k3sVersion: v1.33.4+k3s1 }\nproxmox: { url: "https://pve.example.lan:8006", tokenId: "root@pam!x", tokenSecret: "${SECRET}" }\nnodes: { servers: { count: 1 }, agents: { count: 2 } }\napps: ${apps}\n`,
  );
  const stateDir = join(dir, 'state');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  return { dir, config, stateDir, bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A state as `up` leaves it: the kubeconfig step done with its outputs. */
function recordCluster(stateDir: string): string {
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  mkdirSync(clusterDir, { recursive: true });
  const kubeconfigPath = join(clusterDir, 'kubeconfig.yaml');
  writeFileSync(kubeconfigPath, 'apiVersion: v1\nkind: Config\n', { mode: 0o600 });
  const store = StateStore.open(clusterDir, 'homelab');
  store.dispatch({
    type: 'done',
    id: STEP.kubeconfig,
    at: Date.now(),
    via: 'check',
    outputs: { kubeconfigPath, server: 'https://10.0.0.11:6443' },
  });
  return kubeconfigPath;
}

async function withPath<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = dir;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

test('apps with no app selected does nothing', async () => {
  const t = setup('{}');
  try {
    const io = memIo({}, t.dir);
    assert.equal(await run(['--config', t.config, '--yes', '--state-dir', t.stateDir], io), 0);
    assert.match(io.out(), /No apps are selected/);
  } finally {
    t.cleanup();
  }
});

test('apps before the cluster exists says to run up first', async () => {
  const t = setup('{ kured: true }');
  try {
    await assert.rejects(
      run(['--config', t.config, '--yes', '--state-dir', t.stateDir], memIo({}, t.dir)),
      (err: unknown) => err instanceof UserError && /No cluster "homelab"/.test(err.message) && /flatcar-k3s up/.test(err.fix ?? ''),
    );
  } finally {
    t.cleanup();
  }
});

test('apps without the Pulumi CLI fails in the preflight with the install message; the app steps never start', async () => {
  const t = setup('{ kured: true, pulumiOperator: true }');
  try {
    recordCluster(t.stateDir);
    const io = memIo({}, t.dir);
    const code = await withPath(t.bin, () => run(['--config', t.config, '--yes', '--state-dir', t.stateDir], io));
    assert.equal(code, 1);
    assert.match(
      io.err(),
      /Step apps:preflight \(Pulumi CLI and Kubernetes plugin for the cluster apps\) failed: The Pulumi CLI is required/,
    );
    assert.match(io.err(), /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
    assert.doesNotMatch(io.err(), /Step apps:(bootstrap|infra)/);
    const state = StateStore.open(join(t.stateDir, 'clusters', 'homelab'), 'homelab').get();
    assert.equal(state.steps['apps:preflight']?.status, 'failed');
    assert.equal(state.steps[STEP.appsBootstrap], undefined, 'bootstrap never ran');
    assert.equal(state.steps[STEP.appsInfra], undefined, 'infra never ran');
    assert.equal(state.steps[STEP.kubeconfig]?.status, 'done', 'the cluster steps are untouched');
  } finally {
    t.cleanup();
  }
});

test('apps refuses to ask without a terminal unless --yes', async () => {
  const t = setup('{ kured: true }');
  try {
    await assert.rejects(
      run(['--config', t.config, '--state-dir', t.stateDir], memIo({}, t.dir)),
      (err: unknown) => err instanceof UserError && /--yes/.test(err.fix ?? ''),
    );
  } finally {
    t.cleanup();
  }
});
