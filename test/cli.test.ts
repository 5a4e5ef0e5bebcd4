/**
 * The real CLI, spawned: usage and exit codes, validate/plan/status output, and `up` with fake steps
 * (test/helpers/fake-steps.ts, through test/helpers/cli-entry.ts): resume after a failure, after SIGKILL mid-step and after Ctrl-C, the lock,
 * config-change detection, and secrets kept out of the state and log files.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { readState } from '../src/runner/state.js';
import { join } from 'node:path';
import { FAKE_SECRET, buildSteps } from './helpers/fake-steps.js';
import { TOKEN_SECRET, fakeStepsPath, runCliProcess, spawnCli, tempDir, waitFor, writeConfig } from './helpers/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function setup() {
  const t = tempDir();
  const markers = join(t.dir, 'markers');
  const stateDir = join(t.dir, 'state');
  const config = writeConfig(t.dir);
  const env = { FAKE_STEPS_DIR: markers };
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  const runs = () =>
    existsSync(join(markers, 'runs.log')) ? readFileSync(join(markers, 'runs.log'), 'utf8').trim().split('\n').filter(Boolean) : [];
  const state = () => readState(clusterDir)!; // snapshot + journal
  const up = (extraEnv: Record<string, string> = {}, extraArgs: string[] = []) =>
    runCliProcess(['up', '--config', config, '--yes', '--state-dir', stateDir, ...extraArgs], {
      cwd: t.dir,
      steps: fakeStepsPath,
      env: { ...env, ...extraEnv },
    });
  return { ...t, markers, stateDir, config, env, clusterDir, runs, state, up };
}

describe('usage and exit codes', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('--version prints the package version', async () => {
    const r = await runCliProcess(['--version'], { cwd: t.dir });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  test('--help lists the commands and exit codes; "up --help" shows up\'s options', async () => {
    const r = await runCliProcess(['--help'], { cwd: t.dir });
    assert.equal(r.code, 0);
    for (const c of ['up', 'plan', 'status', 'validate']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
    assert.match(r.stdout, /130 interrupted/);
    const u = await runCliProcess(['up', '--help'], { cwd: t.dir });
    assert.equal(u.code, 0);
    assert.match(u.stdout, /--parallel N/);
    assert.match(u.stdout, /--no-merge-kubeconfig/);
  });

  test('an unknown command or flag is a usage error (exit 2) with the usage', async () => {
    const a = await runCliProcess(['frobnicate'], { cwd: t.dir });
    assert.equal(a.code, 2);
    assert.match(a.stderr, /Unknown command "frobnicate"/);
    const b = await runCliProcess(['plan', '--config', 'x.yaml', '--bogus'], { cwd: t.dir });
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--bogus/);
    assert.match(b.stderr, /Usage: flatcar-k3s plan/);
    const c = await runCliProcess(['up', '--parallel', 'zero', '--config', 'x.yaml', '--yes'], { cwd: t.dir });
    assert.equal(c.code, 2);
    assert.match(c.stderr, /--parallel must be a whole number/);
  });

  test('no arguments without a terminal refuses and points at "up --config"', async () => {
    const r = await runCliProcess([], { cwd: t.dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /up --config FILE/);
  });

  test('up without --yes and no terminal on stdin refuses before touching anything', async () => {
    const config = writeConfig(t.dir);
    const stateDir = join(t.dir, 'state-noyes');
    const r = await runCliProcess(['up', '--config', config, '--state-dir', stateDir], {
      cwd: t.dir,
      steps: fakeStepsPath,
      env: { FAKE_STEPS_DIR: join(t.dir, 'm') },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--yes/);
    assert.equal(existsSync(stateDir), false);
    assert.equal(existsSync(join(t.dir, 'm')), false);
  });
});

describe('validate', () => {
  const t = tempDir();
  after(() => t.cleanup());

  test('a valid config prints the resolved summary without secrets', async () => {
    const config = writeConfig(t.dir);
    const r = await runCliProcess(['validate', '--config', config], { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /homelab-server-1\s+server\s+vmid 9001/);
    assert.match(r.stdout, /homelab-agent-2\s+agent\s+vmid 9003/);
    assert.match(r.stdout, /API token root@pam!flatcar/);
    assert.ok(!r.stdout.includes(TOKEN_SECRET));
  });

  test('an invalid config lists every problem and exits 2, secrets redacted', async () => {
    const file = join(t.dir, 'bad.yaml');
    writeFileSync(
      file,
      `cluster: { name: Bad_Name }
proxmox: { url: "https://pve:8006", tokenId: "root@pam!x", tokenSecret: "not-a-uuid-SECRETVALUE" }
nodes: { servers: { count: 2 } }
`,
    );
    const r = await runCliProcess(['validate', '--config', file], { cwd: t.dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cluster\.name/);
    assert.match(r.stderr, /nodes\.servers\.count/);
    assert.match(r.stderr, /proxmox\.tokenSecret/);
    assert.ok(!r.stderr.includes('SECRETVALUE'), r.stderr);
  });

  test('a missing file is exit 2 with a fix', async () => {
    const r = await runCliProcess(['validate', '--config', join(t.dir, 'nope.yaml')], { cwd: t.dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /does not exist/);
  });
});

describe('up with fake steps', () => {
  test('a full run does every step once in dependency order; a second run only checks', async () => {
    const s = setup();
    try {
      const r = await s.up();
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const order = s.runs();
      assert.deepEqual([...order].sort(), ['a', 'b', 'c', 'd', 'e']);
      const pos = (id: string) => order.indexOf(id);
      assert.ok(pos('a') < pos('b') && pos('b') < pos('c') && pos('c') < pos('e') && pos('d') < pos('e'), order.join(','));
      for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal(s.state().steps[id]!.status, 'done');
      assert.match(r.stdout, /running\s+c\s+Fake step c/);
      assert.match(r.stdout, /is ready/);

      const again = await s.up();
      assert.equal(again.code, 0, again.stderr);
      assert.equal(s.runs().length, 5, 'nothing ran again');
      assert.match(again.stdout, /done\s+a\s+Fake step a \(already done\)/);
      for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal(s.state().steps[id]!.via, 'check');

      const plan = await runCliProcess(['plan', '--config', s.config, '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: s.env,
        steps: fakeStepsPath,
      });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /1\. \[done\s*\] a\s+do fake thing a for homelab/);
      assert.match(plan.stdout, /5\. \[done\s*\] e/);
    } finally {
      s.cleanup();
    }
  });

  test('the shipped binary runs the product steps: no environment variable swaps them (the old test door is shut)', async () => {
    const s = setup();
    try {
      const env = { ...s.env, FLATCAR_K3S_TEST_STEPS: fakeStepsPath };
      const plan = await runCliProcess(['plan', '--config', s.config, '--state-dir', s.stateDir], { cwd: s.dir, env });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /proxmox:connect/);
      assert.doesNotMatch(plan.stdout, /do fake thing/);
      const withSteps = await runCliProcess(['plan', '--config', s.config, '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: s.env,
        steps: fakeStepsPath,
      });
      assert.match(withSteps.stdout, /: 5 steps/);
    } finally {
      s.cleanup();
    }
  });

  test('a failed step: exit 1 with the resume command; the independent branch finishes; resume redoes nothing done', async () => {
    const s = setup();
    try {
      const r = await s.up({ FAKE_STEPS_FAIL: 'c' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Step c \(Fake step c\) failed: fake failure in c/);
      assert.ok(r.stderr.includes(`flatcar-k3s up --config ${s.config} --yes --state-dir ${s.stateDir}`), r.stderr);
      const st = s.state();
      assert.equal(st.steps.c!.status, 'failed');
      assert.equal(st.steps.c!.error!.message, 'fake failure in c');
      assert.equal(st.steps.d!.status, 'done', 'd does not need c');
      assert.equal(st.steps.e, undefined, 'e needs c: never started');

      const status = await runCliProcess(['status', '--state-dir', s.stateDir], { cwd: s.dir });
      assert.equal(status.code, 0);
      assert.match(status.stdout, /failed\s+c/);
      assert.match(status.stdout, /error: fake failure in c/);

      const before = s.runs();
      const again = await s.up();
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(s.runs().slice(before.length), ['c', 'e']);
    } finally {
      s.cleanup();
    }
  });

  test('SIGKILL mid-step: the next up takes over the stale lock and redoes only the cut-off step', async () => {
    const s = setup();
    try {
      const p = spawnCli(['up', '--config', s.config, '--yes', '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: { ...s.env, FAKE_STEPS_HANG: 'c' },
        steps: fakeStepsPath,
      });
      await waitFor(() => existsSync(join(s.markers, 'c.started')), 60000, 'step c to start');
      p.child.kill('SIGKILL');
      const killed = await p.done;
      assert.equal(killed.signal, 'SIGKILL');
      assert.equal(s.state().steps.c!.status, 'running', 'the transition to running was saved before run()');
      assert.ok(existsSync(join(s.clusterDir, 'lock')));
      const before = s.runs();
      assert.ok(before.includes('a') && before.includes('b'));

      const again = await s.up();
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /stale lock/);
      const redone = s.runs().slice(before.length);
      assert.ok(!redone.includes('a') && !redone.includes('b'), `a and b were not redone: ${redone.join(',')}`);
      assert.ok(redone.includes('c') && redone.includes('e'));
      assert.equal(existsSync(join(s.clusterDir, 'lock')), false, 'lock released');
    } finally {
      s.cleanup();
    }
  });

  test('Ctrl-C: exit 130, the running step goes back to pending, the lock is released, and up resumes', async () => {
    const s = setup();
    try {
      const p = spawnCli(['up', '--config', s.config, '--yes', '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: { ...s.env, FAKE_STEPS_HANG: 'c' },
        steps: fakeStepsPath,
      });
      await waitFor(() => existsSync(join(s.markers, 'c.started')), 60000, 'step c to start');
      p.child.kill('SIGINT');
      const r = await p.done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /resume with:\n\s+flatcar-k3s up --config/);
      assert.equal(s.state().steps.c!.status, 'pending');
      assert.equal(existsSync(join(s.clusterDir, 'lock')), false);
      const before = s.runs();
      const again = await s.up();
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(s.runs().slice(before.length).sort(), ['c', 'e']);
    } finally {
      s.cleanup();
    }
  });

  test('a second run on the same cluster is refused while the first holds the lock', async () => {
    const s = setup();
    try {
      const p = spawnCli(['up', '--config', s.config, '--yes', '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: { ...s.env, FAKE_STEPS_HANG: 'c' },
        steps: fakeStepsPath,
      });
      try {
        await waitFor(() => existsSync(join(s.markers, 'c.started')), 60000, 'step c to start');
        const second = await s.up();
        assert.equal(second.code, 2);
        assert.match(second.stderr, new RegExp(`pid ${p.child.pid}`));
      } finally {
        p.child.kill('SIGTERM');
        const r = await p.done;
        assert.equal(r.code, 130);
      }
    } finally {
      s.cleanup();
    }
  });

  test('a changed config lists the changed settings and the steps it re-opens', async () => {
    const s = setup();
    try {
      assert.equal((await s.up()).code, 0);
      writeConfig(s.dir, 'nodes:\n  agents: { count: 3 }\n');
      const plan = await runCliProcess(['plan', '--config', s.config, '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: s.env,
        steps: fakeStepsPath,
      });
      assert.match(plan.stdout, /nodes\.agents\.count: 2 → 3/);
      assert.match(plan.stdout, /\[re-check\] d/);
      const r = await s.up();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Settings changed since the last run:\n\s+nodes\.agents\.count: 2 → 3/);
      assert.match(r.stdout, /Steps this re-opens[^\n]*\n\s+d\s+Fake step d/);
      assert.ok(!/Steps this re-opens[^\n]*\n(\s+\S+\s+Fake step \S+\n)*\s+a\s/.test(r.stdout), 'a does not depend on the agent count');
      const again = await s.up();
      assert.doesNotMatch(again.stdout, /Settings changed/);
    } finally {
      s.cleanup();
    }
  });

  test('secrets stay out of the state and log files; files holding state are 0600', async () => {
    const s = setup();
    try {
      const r = await s.up();
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes(FAKE_SECRET) && !r.stdout.includes(TOKEN_SECRET), 'screen output redacted');
      assert.match(r.stdout, /joining with token \*\*\* and proxmox secret \*\*\*/);
      const stateText = ['state.json', 'state.journal']
        .map((f) => (existsSync(join(s.clusterDir, f)) ? readFileSync(join(s.clusterDir, f), 'utf8') : ''))
        .join('\n');
      const logText = readFileSync(join(s.clusterDir, 'run.log'), 'utf8');
      for (const secret of [FAKE_SECRET, TOKEN_SECRET]) {
        assert.ok(!stateText.includes(secret), 'state file holds no secret');
        assert.ok(!logText.includes(secret), 'log file holds no secret');
      }
      assert.match(logText, /joining with token \*\*\*/);
      assert.ok(readFileSync(join(s.clusterDir, 'secrets.json'), 'utf8').includes(FAKE_SECRET));
      for (const f of ['state.json', 'state.journal', 'secrets.json', 'run.log'])
        assert.equal(statSync(join(s.clusterDir, f)).mode & 0o777, 0o600, f);
      assert.deepEqual(
        readdirSync(s.clusterDir).filter((f) => f.endsWith('.tmp')),
        [],
      );
    } finally {
      s.cleanup();
    }
  });

  test('--log-file writes the log elsewhere; status lists several clusters', async () => {
    const s = setup();
    try {
      const log = join(s.dir, 'custom.log');
      const r = await s.up({}, ['--log-file', log]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(log, 'utf8'), /done\s+e\s+Fake step e/);
      const other = writeConfig(s.dir, 'cluster: { name: other }\n', 'other.yaml');
      const r2 = await runCliProcess(['up', '--config', other, '--yes', '--state-dir', s.stateDir], {
        cwd: s.dir,
        env: { ...s.env, FAKE_STEPS_DIR: join(s.dir, 'm2') },
        steps: fakeStepsPath,
      });
      assert.equal(r2.code, 0, r2.stderr);
      const st = await runCliProcess(['status', '--state-dir', s.stateDir], { cwd: s.dir });
      assert.match(st.stdout, /homelab\s+last run succeeded/);
      assert.match(st.stdout, /other\s+last run succeeded/);
      const one = await runCliProcess(['status', '--cluster', 'other', '--state-dir', s.stateDir], { cwd: s.dir });
      assert.match(one.stdout, /Cluster other/);
      const none = await runCliProcess(['status', '--cluster', 'nope', '--state-dir', s.stateDir], { cwd: s.dir });
      assert.equal(none.code, 2);
    } finally {
      s.cleanup();
    }
  });
});

describe('up asks before changing anything (in-process, stdin a terminal)', () => {
  async function upWithAnswer(answer: string) {
    const { runCli } = await import('../src/cli/main.js');
    const { PassThrough } = await import('node:stream');
    const s = setup();
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('(y/N)') && !stdin.writableEnded) stdin.end(answer);
    });
    let err = '';
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    // The fake steps read their marker dir from process.env (they run in this process here).
    process.env.FAKE_STEPS_DIR = s.markers;
    const code = await runCli(['up', '--config', s.config, '--state-dir', s.stateDir], {
      stdin,
      stdout,
      stderr,
      env: { CI: 'true', ...s.env },
      cwd: s.dir,
      buildSteps,
    }).finally(() => delete process.env.FAKE_STEPS_DIR);
    if (code !== 0) s.cleanup();
    assert.equal(code, 0, err);
    return { s, code, out };
  }

  test('"n" changes nothing and releases the lock', async () => {
    const { s, code, out } = await upWithAnswer('n\n');
    try {
      assert.equal(code, 0);
      assert.match(out, /Plan \(5 steps/);
      assert.match(out, /Proceed\? \(y\/N\)/);
      assert.match(out, /Nothing changed/);
      assert.deepEqual(s.runs(), []);
      assert.equal(existsSync(join(s.clusterDir, 'lock')), false);
    } finally {
      s.cleanup();
    }
  });

  test('"y" runs every step', async () => {
    const { s, code } = await upWithAnswer('y\n');
    try {
      assert.equal(code, 0);
      assert.equal(s.runs().length, 5);
    } finally {
      s.cleanup();
    }
  });
});
