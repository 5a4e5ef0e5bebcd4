/**
 * src/store: the one atomic writer (exact mode despite the umask, whole file or old file, no temp
 * left behind) and the one owner of the state directory's layout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isAtomicTemp, prepareFileAtomic, writeFileAtomic, writeFileAtomicAsync } from '../src/store/atomic.js';
import { clusterDirFor, clusterFiles, clusterNames, demoFiles, feedCacheFile, globalLogFile, k3sBinaryFile } from '../src/store/layout.js';

const withDir = async (fn: (dir: string) => void | Promise<void>) => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-store-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test('writeFileAtomic: creates parents 0700, writes exactly the mode despite a loose umask, replaces, leaves no temp file', () =>
  withDir((dir) => {
    const file = join(dir, 'a', 'b', 'secret.env');
    const old = process.umask(0);
    try {
      writeFileAtomic(file, 'one');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
      writeFileAtomic(file, Buffer.from('two'), 0o644);
      assert.equal(statSync(file).mode & 0o777, 0o644);
    } finally {
      process.umask(old);
    }
    assert.equal(readFileSync(file, 'utf8'), 'two');
    assert.deepEqual(readdirSync(join(dir, 'a', 'b')), ['secret.env']);
  }));

test('writeFileAtomic: a failed write leaves the old file and no temp file', () =>
  withDir((dir) => {
    const file = join(dir, 'f');
    writeFileAtomic(file, 'old');
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'x'), '');
    // rename of a file over a non-empty directory fails
    assert.throws(() => writeFileAtomic(join(dir, 'd'), 'new'));
    assert.equal(readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir).sort(), ['d', 'f']);
  }));

test('prepareFileAtomic: nothing changes until commit; discard drops the temp file', () =>
  withDir(async (dir) => {
    const file = join(dir, 'state.json');
    writeFileAtomic(file, 'v1');
    const p = await prepareFileAtomic(file, 'v2');
    assert.equal(readFileSync(file, 'utf8'), 'v1');
    const temp = readdirSync(dir).find((n) => n !== 'state.json')!;
    assert.ok(isAtomicTemp(temp, 'state.json'), temp);
    assert.ok(!isAtomicTemp(temp, 'sim.json'));
    await p.commit();
    assert.equal(readFileSync(file, 'utf8'), 'v2');
    (await prepareFileAtomic(file, 'v3')).discard();
    assert.deepEqual(readdirSync(dir), ['state.json']);
    await writeFileAtomicAsync(file, 'v4', 0o600);
    assert.equal(readFileSync(file, 'utf8'), 'v4');
    assert.equal(statSync(file).mode & 0o777, 0o600);
  }));

test('the layout: every path of the state dir, under it', () =>
  withDir((stateDir) => {
    const c = clusterDirFor(stateDir, 'lab');
    assert.equal(relative(stateDir, c), join('clusters', 'lab'));
    const f = clusterFiles(c);
    assert.deepEqual(Object.fromEntries(Object.entries(f).map(([k, v]) => [k, relative(c, v)])), {
      state: 'state.json',
      stateJournal: 'state.journal',
      secrets: 'secrets.json',
      lock: 'lock',
      runLog: 'run.log',
      config: 'cluster.yaml',
      proxmoxEnv: 'proxmox.env',
      kubeconfig: 'kubeconfig',
      pulumi: 'pulumi',
      k3s: 'k3s',
    });
    assert.equal(relative(c, k3sBinaryFile(c, 'v1.31.4+k3s1', 'arm64')), join('k3s', 'v1.31.4_k3s1', 'k3s-arm64'));
    assert.equal(relative(stateDir, globalLogFile(stateDir)), 'flatcar-k3s.log');
    assert.equal(relative(stateDir, feedCacheFile(stateDir, 'beta')), join('cache', 'flatcar-releases-beta.json'));
    for (const p of Object.values(demoFiles(stateDir))) assert.ok(relative(stateDir, p).startsWith('demo'), p);
    assert.deepEqual(clusterNames(stateDir), []);
    writeFileAtomic(f.state, '{}');
    writeFileSync(join(stateDir, 'clusters', 'not-a-dir'), '');
    assert.deepEqual(clusterNames(stateDir), ['lab']);
    assert.ok(existsSync(f.state));
  }));

test('one writer: no product module renames files into place but src/store (and the lock and the simulated hosts)', () => {
  const root = new URL('..', import.meta.url).pathname;
  const allowed = new Set(['src/store/atomic.ts', 'src/runner/lock.ts']);
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.tsx?$/.test(e.name) && !allowed.has(rel) && !rel.startsWith('src/sim/')) {
        const text = readFileSync(join(root, rel), 'utf8');
        if (
          /\brename(Sync)?\b[^\n]*from 'node:fs(\/promises)?'/.test(text) ||
          /import \{[^}]*\brename(Sync)?\b[^}]*\} from 'node:fs/.test(text)
        )
          offenders.push(rel);
      }
    }
  };
  for (const d of ['src', 'steps', 'screens', 'bin']) walk(d);
  assert.deepEqual(offenders, []);
});
