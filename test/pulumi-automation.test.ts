import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAppsStack, pulumiError, pulumiPaths, tightenPermissions, countChanged, stackStateExists } from '../src/pulumi/automation.js';
import { detectPulumiCli, findOnPath, isPulumiMissing, pulumiCliMissingError } from '../src/pulumi/cli.js';
import { RemoteError, UserError } from '../src/errors.js';

/** Run fn with PATH pointing only at `dir` (the Automation API spawns `pulumi` from process.env.PATH). */
async function withPath<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = dir;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

const PASSPHRASE = 'correct-horse-battery-staple-0123456789abcdef';

test('without the CLI, opening a stack fails at once with the preflight message, not a spawn error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-pulumi-'));
  try {
    const emptyBin = join(dir, 'bin');
    mkdirSync(emptyBin);
    const err = await withPath(emptyBin, () =>
      openAppsStack({
        project: 'infra-apps',
        stackName: 'homelab',
        clusterDir: join(dir, 'cluster'),
        passphrase: PASSPHRASE,
        program: () => {},
      }).then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      ),
    );
    assert.ok(err instanceof UserError, `expected UserError, got ${String(err)}`);
    assert.match(err.message, /Pulumi CLI is required/);
    assert.match(err.fix ?? '', /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
    assert.match(err.fix ?? '', /brew/);
    assert.match(err.fix ?? '', /flatcar-k3s apps --config FILE/);
    assert.doesNotMatch(`${err.message} ${err.fix} ${err.detail}`, /ENOENT|correct-horse/);
    // The stack's directories exist and are private even though nothing else happened.
    const p = pulumiPaths(join(dir, 'cluster'), 'infra-apps');
    for (const d of [p.root, p.backendDir, p.workDir]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('detection: absent from PATH → not found with a reason; a broken `pulumi` on PATH → found=false naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-pulumi-'));
  try {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const missing = await withPath(bin, () => detectPulumiCli());
    assert.deepEqual(missing, { found: false, reason: 'the `pulumi` command is not on PATH' });

    // A file named pulumi that is not executable is not "on PATH" for a shell either.
    writeFileSync(join(bin, 'pulumi'), '#!/bin/sh\necho "pulumi: cannot execute binary file" >&2\nexit 126\n');
    assert.equal(findOnPath('pulumi', { PATH: bin }), undefined);
    chmodSync(join(bin, 'pulumi'), 0o755);
    assert.equal(findOnPath('pulumi', { PATH: `/nonexistent:${bin}` }), join(bin, 'pulumi'));

    // Executable, but `pulumi version` fails: Automation API cannot use it.
    const broken = await withPath(bin, () => detectPulumiCli());
    assert.equal(broken.found, false);
    if (!broken.found) assert.match(broken.reason, new RegExp(`${join(bin, 'pulumi')} did not run`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a fake CLI that answers `pulumi version` is detected with its version', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-pulumi-'));
  try {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'pulumi'), '#!/bin/sh\n[ "$1" = version ] && echo v3.200.0 && exit 0\nexit 1\n', { mode: 0o755 });
    const found = await withPath(`${bin}:/usr/bin:/bin`, () => detectPulumiCli());
    assert.equal(found.found, true);
    if (found.found) {
      assert.equal(found.version, '3.200.0');
      assert.equal(found.path, join(bin, 'pulumi'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Automation API failures become actionable errors and never carry the passphrase', () => {
  const o = { project: 'infra-apps' as const, stackName: 'homelab', passphrase: PASSPHRASE };
  const enoent = new Error('code: -2\n stdout: \n stderr: Command failed with ENOENT: pulumi version\nspawn pulumi ENOENT\n');
  assert.ok(isPulumiMissing(enoent));
  assert.ok(pulumiError(enoent, o, 'open the stack') instanceof UserError);

  const locked = pulumiError(
    new Error(
      `code: 255\n stderr: error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with \`pulumi cancel\`.\n`,
    ),
    o,
    'apply the changes',
  );
  assert.ok(locked instanceof RemoteError);
  assert.match(locked.message, /locked/);
  const lockedHere = pulumiError(
    new Error('error: the stack is currently locked by 1 lock(s).'),
    { ...o, clusterDir: '/var/lib/fk3s/clusters/home lab' },
    'apply',
  );
  assert.match(
    (lockedHere as RemoteError).fix ?? '',
    /cd '\/var\/lib\/fk3s\/clusters\/home lab\/pulumi\/infra-apps' && pulumi cancel --stack homelab --yes/,
  );

  const failed = pulumiError(
    new Error(
      `code: 255\n stdout: Updating (homelab)\n stderr: error: update failed\n  kubernetes:helm.sh/v3:Release (kured):\n    error: context deadline exceeded (passphrase ${PASSPHRASE})\n`,
    ),
    o,
    'apply the changes',
  );
  assert.ok(failed instanceof RemoteError);
  assert.match(failed.message, /infra-apps could not apply the changes \(stack homelab\)/);
  assert.match(failed.detail ?? '', /context deadline exceeded/);
  assert.doesNotMatch(`${failed.message}\n${failed.detail}\n${failed.fix}`, new RegExp(PASSPHRASE));

  const aborted = new AbortController();
  aborted.abort();
  assert.equal(pulumiError(new Error('code: -1 signal'), { ...o, signal: aborted.signal }, 'apply').name, 'AbortedError');
});

test('the preflight refusal explains how to install the CLI and how to apply the apps later', () => {
  const e = pulumiCliMissingError();
  assert.match(e.message, /The Pulumi CLI is required to install the cluster apps, but the `pulumi` command is not on PATH\./);
  assert.match(e.fix!, /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
  assert.match(e.fix!, /choco install pulumi/);
  assert.match(e.fix!, /flatcar-k3s up --skip-apps/);
  assert.match(e.fix!, /disable them in the config/);
  assert.match(e.detail!, /never downloads the Pulumi CLI/);
});

test('stack files are made private (0600 files, 0700 dirs) and the backend is a file:// URL in the cluster dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-pulumi-'));
  try {
    const p = pulumiPaths(dir, 'infra-bootstrap');
    assert.equal(p.backendUrl, `file://${join(dir, 'pulumi', 'backend')}`);
    assert.equal(p.workDir, join(dir, 'pulumi', 'infra-bootstrap'));
    mkdirSync(join(p.backendDir, '.pulumi', 'stacks', 'infra-bootstrap'), { recursive: true, mode: 0o755 });
    const state = join(p.backendDir, '.pulumi', 'stacks', 'infra-bootstrap', 'homelab.json');
    assert.equal(stackStateExists(dir, 'infra-bootstrap', 'homelab'), false, 'never applied');
    writeFileSync(state, '{}', { mode: 0o644 });
    assert.equal(stackStateExists(dir, 'infra-bootstrap', 'homelab'), true);
    assert.equal(stackStateExists(dir, 'infra-bootstrap', 'other'), false);
    assert.equal(stackStateExists(dir, 'infra-apps', 'homelab'), false, 'each project has its own stacks');
    tightenPermissions(p.root);
    assert.equal(statSync(state).mode & 0o777, 0o600);
    assert.equal(statSync(join(p.backendDir, '.pulumi')).mode & 0o777, 0o700);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('countChanged ignores unchanged and read-only operations', () => {
  assert.equal(countChanged({ same: 7 }), 0);
  assert.equal(countChanged({ same: 2, create: 3, update: 1, delete: 1, read: 4 }), 5);
});

/**
 * A stand-in `pulumi` that records each invocation (argv and the two variables that matter) and answers
 * like the real CLI for the commands openAppsStack issues: `version`, `stack select` (no such stack
 * yet), `stack init`.
 */
const FAKE_PULUMI = `#!/bin/sh
printf 'ARGS %s\\nPASS %s\\nBACKEND %s\\nCWD %s\\n' "$*" "$PULUMI_CONFIG_PASSPHRASE" "$PULUMI_BACKEND_URL" "$PWD" >> "$FAKE_PULUMI_LOG"
case "$1 $2" in
  "version "*) echo v3.200.0 ;;
  "stack select") echo "error: no stack named 'homelab' found" >&2; exit 255 ;;
  "stack init") exit 0 ;;
  *) echo "unexpected: $*" >&2; exit 3 ;;
esac
`;

test('opening a stack against a recording CLI: select-or-init with the passphrase provider, passphrase and backend only in the environment', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-pulumi-'));
  const savedLog = process.env.FAKE_PULUMI_LOG;
  try {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'pulumi'), FAKE_PULUMI, { mode: 0o755 });
    const log = join(dir, 'calls.log');
    process.env.FAKE_PULUMI_LOG = log;
    const clusterDir = join(dir, 'cluster');
    await withPath(`${bin}:/usr/bin:/bin`, () =>
      openAppsStack({ project: 'infra-bootstrap', stackName: 'homelab', clusterDir, passphrase: PASSPHRASE, program: () => {} }),
    );

    const calls = readFileSync(log, 'utf8')
      .split('ARGS ')
      .slice(1)
      .map((block) => {
        const [args, pass, backend, cwd] = block.trim().split('\n');
        return { args, pass: pass.replace(/^PASS ?/, ''), backend: backend.replace(/^BACKEND ?/, ''), cwd: cwd.replace(/^CWD ?/, '') };
      });
    const p = pulumiPaths(clusterDir, 'infra-bootstrap');
    const stackCalls = calls.filter((c) => c.args.startsWith('stack'));
    assert.deepEqual(
      stackCalls.map((c) => c.args),
      ['stack select --stack homelab --non-interactive', 'stack init homelab --secrets-provider passphrase --non-interactive'],
    );
    for (const c of stackCalls) {
      assert.equal(c.pass, PASSPHRASE, 'the passphrase reaches the CLI through PULUMI_CONFIG_PASSPHRASE');
      assert.equal(c.backend, p.backendUrl);
      assert.equal(c.cwd, p.workDir);
    }
    for (const c of calls) assert.ok(!c.args.includes(PASSPHRASE), 'never on the command line');

    const project = readFileSync(join(p.workDir, 'Pulumi.yaml'), 'utf8');
    assert.match(project, /name: infra-bootstrap/);
    assert.match(project, /runtime: nodejs/);
    assert.ok(project.includes(`url: ${p.backendUrl}`), project);
    assert.ok(!project.includes(PASSPHRASE));
    assert.equal(statSync(join(p.workDir, 'Pulumi.yaml')).mode & 0o777, 0o600);
  } finally {
    if (savedLog === undefined) delete process.env.FAKE_PULUMI_LOG;
    else process.env.FAKE_PULUMI_LOG = savedLog;
    rmSync(dir, { recursive: true, force: true });
  }
});
