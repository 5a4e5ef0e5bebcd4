/**
 * Issue #2: `plan` and `--help` must not load the heavy packages (ssh2, proxmox-api, undici, the Pulumi
 * SDKs, Ink, React). A fresh process (so nothing is cached from other tests) builds the steps of both
 * presets and describes them offline, as `plan` does, then loads every command module, as `--help`
 * does, and reports which heavy packages got loaded. A control then loads some on purpose, which
 * proves the detection sees both require() and import().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HEAVY = ['ssh2', 'proxmox-api', 'undici', '@pulumi/pulumi', '@pulumi/kubernetes', 'ink', 'react'];
const src = (p: string) => new URL(`../${p}`, import.meta.url).href;

const PROBE = `
import { createRequire, registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
const HEAVY = ${JSON.stringify(HEAVY)};
const seen = new Set();
const pkgOf = (s) => /node_modules[\\\\/]((?:@[^/\\\\]+[\\\\/])?[^/\\\\]+)[\\\\/]/.exec(s)?.[1]?.replace('\\\\', '/');
// Every resolution, by import() or require(), passes through a synchronous resolve hook.
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); const p = pkgOf(r.url); if (p) seen.add(p); return r; } });
const require = createRequire(import.meta.url);
const heavyLoaded = () => {
  for (const f of Object.keys(require.cache)) { const p = pkgOf(f); if (p) seen.add(p); }
  return HEAVY.filter((p) => seen.has(p));
};
const out = {};

const { resolveConfig } = await import(${JSON.stringify(src('src/config/load.ts'))});
const { buildSteps } = await import(${JSON.stringify(src('steps/index.ts'))});
const { planRun } = await import(${JSON.stringify(src('src/runner/session.ts'))});
const proxmox = { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!probe', tokenSecret: '0d5c7a4e-9f1b-4c2d-8e3f-a1b2c3d4e5f6' };
out.lines = {};
for (const preset of ['homelab', 'ha']) {
  const config = resolveConfig({ preset, proxmox }, { env: {} });
  const view = await planRun({ config, stateDir: process.env.PROBE_STATE, options: { parallel: 2, recreateTemplate: false }, buildSteps });
  out.lines[preset] = view.lines.length;
}
out.plan = heavyLoaded();

const { commands } = await import(${JSON.stringify(src('src/cli/commands/index.ts'))});
out.summaries = [];
for (const load of Object.values(commands)) out.summaries.push((await load()).summary);
out.help = heavyLoaded();

// Resolved from the project (the probe file lives in a temp dir).
const fromProject = createRequire(${JSON.stringify(src('package.json'))});
fromProject('ssh2');
await import(pathToFileURL(fromProject.resolve('undici')).href);
out.control = heavyLoaded();
process.stdout.write('PROBE ' + JSON.stringify(out) + '\\n');
`;

test('building and describing the steps (plan) and loading every command module (--help) load no heavy package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-startup-'));
  try {
    const probe = join(dir, 'probe.mjs');
    writeFileSync(probe, PROBE);
    const r = spawnSync(process.execPath, ['--import', 'tsx', probe], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { ...process.env, PROBE_STATE: join(dir, 'state') },
      encoding: 'utf8',
      timeout: 120_000,
    });
    const line = /^PROBE (.*)$/m.exec(r.stdout)?.[1];
    assert.ok(line, `probe failed (exit ${r.status}): ${r.stderr}`);
    const out = JSON.parse(line) as {
      lines: Record<string, number>;
      plan: string[];
      summaries: string[];
      help: string[];
      control: string[];
    };
    // The probe really planned both presets and listed every command.
    assert.ok(out.lines.homelab! > 5 && out.lines.ha! > out.lines.homelab!, JSON.stringify(out.lines));
    assert.ok(out.summaries.length >= 5 && out.summaries.every((s) => typeof s === 'string' && s.length > 0));
    assert.deepEqual(out.plan, [], 'plan (build steps + describe) loaded heavy packages');
    assert.deepEqual(out.help, [], '--help (every command module) loaded heavy packages');
    // The detection works: what the probe loads on purpose shows up.
    assert.ok(out.control.includes('ssh2') && out.control.includes('undici'), JSON.stringify(out.control));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
