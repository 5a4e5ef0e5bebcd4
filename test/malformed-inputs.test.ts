/**
 * Issue #15: every malformed config, state or secrets file is bad input (exit 2, what is wrong and the
 * fix), never "hit a bug". The corpus is test/fixtures/malformed/{config,state,secrets}; each file is fed
 * to the commands that read it, in process (runCli with captured streams).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../src/cli/main.js';
import { repoRoot, tempDir, writeConfig, TOKEN_SECRET } from './helpers/cli.js';

const corpus = (kind: string) => {
  const dir = join(repoRoot, 'test', 'fixtures', 'malformed', kind);
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f));
};

async function cli(args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end();
  const code = await runCli(args, { stdin, stdout, stderr, env: { CI: 'true', NO_COLOR: '1' }, cwd });
  return { code, out, err };
}

function assertBadInput(r: { code: number; err: string }, file: string, what: string): void {
  assert.equal(r.code, 2, `${what}: exit 2 expected, got ${r.code}:\n${r.err}`);
  assert.doesNotMatch(r.err, /hit a bug|TypeError|ReferenceError|\n\s+at /, `${what}: reported as a bug:\n${r.err}`);
  assert.ok(r.err.includes(file), `${what}: the message names the file:\n${r.err}`);
  assert.match(r.err, /Fix|Correct the fields|Restore it/, `${what}: the message carries a fix:\n${r.err}`);
}

describe('malformed config files', () => {
  for (const file of corpus('config')) {
    const name = file.split('/').pop()!;
    test(name, async () => {
      const t = tempDir();
      try {
        for (const command of ['validate', 'plan', 'status']) {
          const r = await cli([command, '--config', file, '--state-dir', t.dir], t.dir);
          // status reads only cluster.name, which some files get right: then it looks for that cluster's state
          if (command === 'status' && (r.code === 0 || /No saved state for cluster "homelab"/.test(r.err))) continue;
          assertBadInput(r, name === 'preset-path.yaml' ? 'preset' : file, `${command} ${name}`);
        }
      } finally {
        t.cleanup();
      }
    });
  }
});

/** A cluster dir for the homelab config with one file replaced by a fixture. */
function clusterWith(dir: string, fileName: string, fixture: string): string {
  const clusterDir = join(dir, 'state', 'clusters', 'homelab');
  mkdirSync(clusterDir, { recursive: true });
  copyFileSync(fixture, join(clusterDir, fileName));
  return join(clusterDir, fileName);
}

describe('malformed state files', () => {
  for (const fixture of corpus('state')) {
    const name = fixture.split('/').pop()!;
    test(name, async () => {
      const t = tempDir();
      try {
        const file = clusterWith(t.dir, 'state.json', fixture);
        // No Proxmox answers at this URL: the state must be refused before any connection is tried.
        const config = writeConfig(t.dir).replace(/$/, '');
        const state = join(t.dir, 'state');
        for (const args of [
          ['status', '--cluster', 'homelab'],
          ['status'],
          ['status', '--config', config],
          ['plan', '--config', config],
          ['up', '--yes', '--config', config],
        ]) {
          const r = await cli([...args, '--state-dir', state], t.dir);
          assertBadInput(r, file, `${args.join(' ')} ${name}`);
        }
      } finally {
        t.cleanup();
      }
    });
  }

  test('{"version":1} is not called a format from another version', async () => {
    const t = tempDir();
    try {
      clusterWith(t.dir, 'state.json', join(repoRoot, 'test/fixtures/malformed/state/version-only.json'));
      const r = await cli(['status', '--state-dir', join(t.dir, 'state')], t.dir);
      assert.match(r.err, /"cluster" is missing/);
      assert.match(r.err, /"steps" is missing/);
      assert.doesNotMatch(r.err, /version that wrote it|unknown format/);
    } finally {
      t.cleanup();
    }
  });
});

describe('malformed secrets files', () => {
  for (const fixture of corpus('secrets')) {
    const name = fixture.split('/').pop()!;
    test(name, async () => {
      const t = tempDir();
      try {
        const file = clusterWith(t.dir, 'secrets.json', fixture);
        const r = await cli(['up', '--yes', '--config', writeConfig(t.dir), '--state-dir', join(t.dir, 'state')], t.dir);
        assertBadInput(r, file, `up ${name}`);
        assert.ok(!r.err.includes(TOKEN_SECRET));
      } finally {
        t.cleanup();
      }
    });
  }
});

test('status --config FILE shows the cluster the file names', async () => {
  const t = tempDir();
  try {
    const config = writeConfig(t.dir, 'cluster: { name: lab2 }\n');
    const dir = join(t.dir, 'state', 'clusters', 'lab2');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({ version: 1, cluster: 'lab2', createdAt: 1, updatedAt: 2, steps: {}, pins: {} }),
    );
    const r = await cli(['status', '--config', config, '--state-dir', join(t.dir, 'state')], t.dir);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Cluster lab2 /m);
    const other = await cli(['status', '--config', config, '--cluster', 'homelab', '--state-dir', join(t.dir, 'state')], t.dir);
    assert.equal(other.code, 2);
    assert.match(other.err, /name different clusters/);
  } finally {
    t.cleanup();
  }
});
