/**
 * Issue #15: on a Node.js older than 22 the CLI and `npm test` stop with exit 2 and the version message,
 * instead of a dependency's TypeError reported as our bug. The bin entry is compiled the way `npm run
 * build` compiles it and run with the machine's Node 20 (/usr/bin/node) when there is one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { MIN_NODE_MAJOR, nodeVersionProblem } from '../src/cli/node-version.js';
import { repoRoot, tempDir } from './helpers/cli.js';

const OLD_NODE = '/usr/bin/node';
const oldNodeVersion = (): string | undefined => {
  if (!existsSync(OLD_NODE)) return undefined;
  const v = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
  return Number(/^v(\d+)/.exec(v)?.[1]) < MIN_NODE_MAJOR ? v : undefined;
};
const oldNode = oldNodeVersion();
const skipOld = oldNode ? false : `no Node.js older than ${MIN_NODE_MAJOR} at ${OLD_NODE} on this machine`;

test('nodeVersionProblem: names the version and how to get a new one; none for 22 and later', () => {
  const msg = nodeVersionProblem('20.11.1');
  assert.match(msg ?? '', /^flatcar-k3s needs Node\.js >= 22 \(this is v20\.11\.1\)/);
  assert.match(msg ?? '', /nodejs\.org/);
  assert.match(nodeVersionProblem('v18.0.0') ?? '', /this is v18\.0\.0/);
  assert.equal(nodeVersionProblem('22.0.0'), undefined);
  assert.equal(nodeVersionProblem('24.3.1'), undefined);
  assert.ok(nodeVersionProblem('garbage'), 'an unreadable version is not taken as new enough');
});

/** Compile the bin entry and the version check as `npm run build` does (the rest of the CLI is left out on purpose). */
function compileEntry(dir: string): string {
  const cfg = ts.readConfigFile(join(repoRoot, 'tsconfig.json'), ts.sys.readFile).config as { compilerOptions: object };
  const { options } = ts.convertCompilerOptionsFromJson(cfg.compilerOptions, repoRoot);
  for (const rel of ['bin/flatcar-k3s.ts', 'src/cli/node-version.ts']) {
    const out = ts.transpileModule(readFileSync(join(repoRoot, rel), 'utf8'), {
      // The package is "type": "module", so NodeNext emits ES modules, as ESNext does here.
      compilerOptions: { ...options, noEmit: false, module: ts.ModuleKind.ESNext },
      fileName: rel,
    });
    const target = join(dir, rel.replace(/\.ts$/, '.js'));
    mkdirSync(join(target, '..'), { recursive: true });
    writeFileSync(target, out.outputText);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  return join(dir, 'bin', 'flatcar-k3s.js');
}

test('the built bin entry on Node 20 exits 2 with the version message before loading the CLI', { skip: skipOld }, () => {
  const t = tempDir('fk3s-node20-');
  try {
    const bin = compileEntry(t.dir);
    // The CLI modules are absent from the temp dir: loading any of them would fail with another message and exit 1.
    const r = spawnSync(OLD_NODE, [bin, 'up', '--demo', '--yes'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`flatcar-k3s needs Node\\.js >= 22 \\(this is ${oldNode!.replace(/\./g, '\\.')}\\)`));
    assert.doesNotMatch(r.stderr, /hit a bug|TypeError|Cannot find/);
    // Control: the same compiled entry on this Node passes the check and goes on to load the CLI (absent here).
    const ok = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.notEqual(ok.status, 2);
    assert.match(ok.stderr, /Cannot find module|ERR_MODULE_NOT_FOUND/);
  } finally {
    t.cleanup();
  }
});

test('npm test on Node 20 stops at its first step with the version message', { skip: skipOld }, () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const pretest = pkg.scripts.pretest;
  assert.ok(pretest, 'package.json has a pretest script');
  const argv = pretest.split(' ');
  assert.equal(argv[0], 'node');
  const r = spawnSync(OLD_NODE, argv.slice(1), { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /flatcar-k3s needs Node\.js >= 22 \(this is v20/);
  const ok = spawnSync(process.execPath, argv.slice(1), { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
});
