/**
 * End to end: the built binary in a real terminal (tmux), against --demo. Goes through every screen
 * with the homelab preset to the Done screen and checks the kubeconfig; then quits mid-run and
 * resumes from the Start screen. Builds dist/ first when it is older than the sources.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist', 'bin', 'flatcar-k3s.js');
const tmp = mkdtempSync(join(tmpdir(), 'fk3s-tui-'));
const sessions: string[] = [];

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestMtime(p));
    else if (/\.tsx?$/.test(e.name)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

before(() => {
  const src = Math.max(...['src', 'screens', 'steps', 'bin'].map((d) => newestMtime(join(root, d))));
  if (!existsSync(bin) || statSync(bin).mtimeMs < src) {
    // Others' work in progress may not typecheck; tsc still emits, so only a missing binary is fatal.
    spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore', timeout: 240_000 });
  }
  assert.ok(existsSync(bin), `npm run build did not produce ${bin}`);
});

after(() => {
  for (const s of sessions) spawnSync('tmux', ['kill-session', '-t', s]);
  rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Term {
  readonly name: string;
  readonly exitFile: string;
  constructor(label: string, stateDir: string) {
    this.name = `fk3s-${process.pid}-${label}`;
    this.exitFile = join(tmp, `${label}.exit`);
    rmSync(this.exitFile, { force: true });
    sessions.push(this.name);
    const cmd = `cd ${root} && env -u CI HOME=${tmp} NO_COLOR=1 FLATCAR_K3S_DEMO_SPEED=0.05 node ${bin} --demo --state-dir ${stateDir}; echo $? > ${this.exitFile}; sleep 120`;
    execFileSync('tmux', ['new-session', '-d', '-s', this.name, '-x', '100', '-y', '30', cmd]);
  }
  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-t', this.name], { encoding: 'utf8' });
  }
  async waitFor(text: string | RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (typeof text === 'string' ? s.includes(text) : text.test(s)) {
        await sleep(250); // let the screen's input handlers attach
        return s;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(text)} in tmux; screen:\n${s}`);
      await sleep(200);
    }
  }
  async keys(...keys: string[]): Promise<void> {
    for (const k of keys) {
      execFileSync('tmux', ['send-keys', '-t', this.name, k]);
      await sleep(k === 'Escape' ? 150 : 60);
    }
  }
  async exitCode(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.exitFile) || readFileSync(this.exitFile, 'utf8').trim() === '') {
      if (Date.now() > deadline) throw new Error(`the program did not exit; screen:\n${this.screen()}`);
      await sleep(200);
    }
    return Number(readFileSync(this.exitFile, 'utf8').trim());
  }
}

/** Start screen → homelab → every wizard screen → Review → Enter (the run starts). */
async function wizard(t: Term): Promise<void> {
  await t.waitFor('Choose a starting point', 60_000);
  await t.keys('Enter');
  await t.waitFor('Token secret');
  const s = t.screen();
  assert.match(s, /URL\s+https:\/\/127\.0\.0\.1:\d+/, 'the demo pre-fills the connection');
  assert.match(s, /•{36}/, 'the token secret is masked');
  await t.keys('Enter');
  for (const title of ['Storage for VM disks', 'Flatcar image download', 'Ignition snippets', 'Network bridge']) {
    await t.waitFor(title);
    await t.keys('Enter');
  }
  await t.waitFor('release channel');
  // Esc goes back to the connection, keeping it; then forward again.
  await t.keys('Escape');
  await t.waitFor('Token secret');
  await t.keys('Enter');
  for (const title of ['Storage for VM disks', 'Flatcar image download', 'Ignition snippets', 'Network bridge']) {
    await t.waitFor(title);
    await t.keys('Enter');
  }
  await t.waitFor('release channel');
  await t.keys('Enter');
  await t.waitFor(/current — always the newest stable/);
  await t.keys('Enter');
  await t.waitFor('Placement preview');
  assert.match(t.screen(), /homelab-agent-2/);
  await t.keys('Enter');
  await t.waitFor('Apps to install');
  await t.keys('Enter');
  await t.waitFor(/Plan \(\d+ steps/, 60_000);
  await t.keys('Enter');
}

test('tmux: homelab preset against --demo through every screen to Done; the kubeconfig exists', { timeout: 300_000 }, async () => {
  const state = join(tmp, 'state-a');
  const t = new Term('a', state);
  await wizard(t);
  await t.waitFor('Building homelab');
  const done = await t.waitFor(/Cluster homelab is ready/, 180_000);
  const m = /Kubeconfig: (\S+)/.exec(done);
  assert.ok(m, `kubeconfig path on the Done screen:\n${done}`);
  assert.ok(existsSync(m[1]!), `${m[1]} exists`);
  assert.match(done, /kubectl --kubeconfig/);
  await t.keys('Enter');
  assert.equal(await t.exitCode(), 0);
  assert.ok(existsSync(join(state, 'clusters', 'homelab', 'cluster.yaml')));
});

test('tmux: quit mid-run (state saved), then resume from the Start screen to Done', { timeout: 300_000 }, async () => {
  const state = join(tmp, 'state-b');
  const first = new Term('b1', state);
  await wizard(first);
  await first.waitFor(/Building homelab .* [1-9]\d*\/\d+/, 120_000);
  await first.keys('q');
  assert.equal(await first.exitCode(), 130);
  const second = new Term('b2', state);
  const start = await second.waitFor('An unfinished run was found', 60_000);
  assert.match(start, /Resume homelab/);
  assert.match(start, /interrupted/);
  await second.keys('Enter');
  const done = await second.waitFor(/Cluster homelab is ready/, 180_000);
  assert.match(done, /Kubeconfig: /);
  await second.keys('Enter');
  assert.equal(await second.exitCode(), 0);
});
