#!/usr/bin/env node
/**
 * postinstall: make ssh2's optional native crypto binding (and cpu-features, which ssh2 uses to order
 * ciphers) load under the Node that runs flatcar-k3s. Without it ssh2 falls back to creating a
 * JavaScript cipher per packet, which costs a third of the CPU of a 200-node install.
 *
 * Why a script of our own: npm only runs a dependency's install script when package.json's
 * `allowScripts` approves it (ssh2 and cpu-features are approved there); and node-gyp builds against
 * the headers of `nodedir` when one is configured (e.g. a system Node's /usr), which may not be the
 * Node running npm, so the binding "did not self-register". This script checks that each binding
 * loads in this Node; when it does not, it rebuilds it with node-gyp against this Node's own headers
 * (next to its executable when present, else node-gyp's download for this version). Failure is not
 * fatal: ssh2 works without it, more slowly, and the run log says whether native crypto is active.
 *
 *   node scripts/ssh2-native.cjs [--check]
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { dirname, join } = require('node:path');

const checkOnly = process.argv.includes('--check');
const root = join(__dirname, '..');
const resolveDir = (pkg) => {
  try {
    return dirname(require.resolve(`${pkg}/package.json`, { paths: [root] }));
  } catch {
    return undefined;
  }
};

const targets = [
  { name: 'cpu-features', dir: resolveDir('cpu-features'), cwd: '.', binding: 'build/Release/cpufeatures.node', pre: 'buildcheck' },
  { name: 'ssh2', dir: resolveDir('ssh2'), cwd: 'lib/protocol/crypto', binding: 'lib/protocol/crypto/build/Release/sshcrypto.node' },
];

/** Loads `file` in a fresh Node (a failed dlopen stays cached in this process): undefined, or why not. */
function loads(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr.split('\n').find((l) => /Error|error:/.test(l)) || `exit ${r.status}`).trim();
}

/** This Node's headers: <prefix>/include/node of the running executable, when they match its version. */
function ownNodedir() {
  const prefix = dirname(dirname(process.execPath));
  const header = join(prefix, 'include', 'node', 'node_version.h');
  return existsSync(header) ? prefix : undefined;
}

function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, [fromNpm]];
  for (const p of [
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ]) {
    if (existsSync(p)) return [process.execPath, [p]];
  }
  return ['node-gyp', []];
}

let failed = 0;
for (const t of targets) {
  if (!t.dir) continue; // an optional dependency that is not installed
  const file = join(t.dir, t.binding);
  const why = existsSync(file) ? loads(file) : 'not built';
  if (!why) {
    console.log(`${t.name}: native binding loads in Node ${process.version}`);
    continue;
  }
  if (checkOnly) {
    console.log(`${t.name}: native binding does not load in Node ${process.version}: ${why}`);
    failed++;
    continue;
  }
  console.log(`${t.name}: native binding does not load in Node ${process.version} (${why}); rebuilding it`);
  const nodedir = ownNodedir();
  const env = { ...process.env };
  // A configured nodedir (npm_config_nodedir) that belongs to another Node is what broke it.
  delete env.npm_config_nodedir;
  delete env.NPM_CONFIG_NODEDIR;
  if (t.pre === 'buildcheck') {
    const r = spawnSync(process.execPath, ['buildcheck.js'], { cwd: t.dir, env, encoding: 'utf8' });
    if (r.status === 0) require('node:fs').writeFileSync(join(t.dir, 'buildcheck.gypi'), r.stdout);
  }
  const [cmd, pre] = nodeGyp();
  const args = [
    ...pre,
    'rebuild',
    `--target=${process.version}`,
    ...(nodedir ? [`--nodedir=${nodedir}`] : []),
    `--real_openssl_major=${/^\d+/.exec(process.versions.openssl)[0]}`,
  ];
  const r = spawnSync(cmd, args, { cwd: join(t.dir, t.cwd), env, stdio: ['ignore', 'ignore', 'inherit'] });
  const after = r.status === 0 ? loads(file) : `node-gyp exited with ${r.status ?? r.signal}`;
  if (after) {
    failed++;
    console.log(`${t.name}: could not build the native binding (${after}); ssh2 uses its JavaScript crypto (slower)`);
  } else console.log(`${t.name}: native binding rebuilt for Node ${process.version}`);
}
// Not fatal for an install (ssh2 works without it); --check reports through the exit code.
process.exit(checkOnly && failed ? 1 : 0);
