import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInteractive } from '../src/app/main.js';
import { RunScreen } from '../screens/RunScreen.js';
import { RunStore } from '../src/ui/run-store.js';
import { ThemeContext, themeFor } from '../src/ui/theme.js';
import { render } from './helpers/ink.js';
import chalk from 'chalk';

function streams(tty: boolean) {
  const mk = () => Object.assign(new PassThrough(), { isTTY: tty });
  const stderr = mk();
  let err = '';
  stderr.on('data', (d) => (err += String(d)));
  return {
    stdin: mk() as unknown as NodeJS.ReadStream,
    stdout: mk() as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
    err: () => err,
  };
}

test('runInteractive refuses without a terminal and points to up --config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-main-'));
  try {
    const s = streams(false);
    const code = await runInteractive({ stateDir: dir, stdin: s.stdin, stdout: s.stdout, stderr: s.stderr, env: {} });
    assert.equal(code, 2);
    assert.match(s.err(), /needs a terminal/);
    assert.match(s.err(), /flatcar-k3s up --config FILE/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runInteractive refuses under CI even on a terminal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-main-'));
  try {
    const s = streams(true);
    const code = await runInteractive({ stateDir: dir, stdin: s.stdin, stdout: s.stdout, stderr: s.stderr, env: { CI: 'true' } });
    assert.equal(code, 2);
    assert.match(s.err(), /CI not set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('NO_COLOR: no colour escape codes in any frame; colours otherwise', async () => {
  const T0 = 1_700_000_000_000;
  const frames = async (env: NodeJS.ProcessEnv) => {
    const store = new RunStore({ frameMs: 0 });
    const r = render(
      <ThemeContext.Provider value={themeFor(env)}>
        <RunScreen store={store} cluster="c" now={() => T0} onSubmit={() => {}} />
      </ThemeContext.Provider>,
    );
    try {
      for (const e of [
        { type: 'run', status: 'started', at: T0 },
        { type: 'step', id: 'a', title: 'A', group: 'g', status: 'running', at: T0 },
        { type: 'step', id: 'a', title: 'A', group: 'g', status: 'done', via: 'run', at: T0 },
        { type: 'step', id: 'b', title: 'B', group: 'g', status: 'failed', at: T0, error: { message: 'boom', fix: 'do this' } },
        { type: 'run', status: 'failed', at: T0 },
      ] as const)
        store.ingest(e);
      store.flush();
      await r.waitFor('Fix:');
      return r.stdout.frames.join('');
    } finally {
      r.unmount();
      store.close();
    }
  };
  // Ink's chalk (the same hoisted instance) colours as on a colour terminal, whatever runs the test.
  const level = chalk.level;
  chalk.level = 1;
  try {
    // eslint-disable-next-line no-control-regex
    const colour = /\x1b\[(3[0-7]|9[0-7])m/;
    assert.ok(!colour.test(await frames({ NO_COLOR: '1' })), 'no foreground colour codes with NO_COLOR');
    assert.ok(colour.test(await frames({})), 'colours without NO_COLOR');
  } finally {
    chalk.level = level;
  }
});

test('runInteractive --demo refuses a FLATCAR_K3S_DEMO_SPEED that is not a number, naming the variable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-main-'));
  try {
    const s = streams(true);
    await assert.rejects(
      runInteractive({
        stateDir: dir,
        demo: true,
        stdin: s.stdin,
        stdout: s.stdout,
        stderr: s.stderr,
        env: { FLATCAR_K3S_DEMO_SPEED: 'fast' },
      }),
      (err: unknown) => err instanceof Error && /FLATCAR_K3S_DEMO_SPEED must be a number/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
