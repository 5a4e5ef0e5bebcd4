/** Spawn the real CLI (bin/flatcar-k3s.ts through tsx) in a temp dir, and small test utilities. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const binPath = join(repoRoot, 'bin', 'flatcar-k3s.ts');
export const fakeStepsPath = join(repoRoot, 'test', 'helpers', 'fake-steps.ts');
/** The CLI with injected steps (test/helpers/cli-entry.ts): spawnCli's `steps` option. */
const entryWithSteps = join(repoRoot, 'test', 'helpers', 'cli-entry.ts');
const tsxLoader = import.meta.resolve('tsx');

/** A valid token secret (lower-case UUID): must never appear in state or log files. */
export const TOKEN_SECRET = '0d5c7a4e-9f1b-4c2d-8e3f-a1b2c3d4e5f6';

export function tempDir(prefix = 'fk3s-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeConfig(dir: string, extra = '', name = 'config.yaml'): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `preset: homelab
proxmox:
  url: https://127.0.0.1:8006
  tokenId: root@pam!flatcar
  tokenSecret: ${TOKEN_SECRET}
  fingerprint: ${Array.from({ length: 32 }, () => 'AB').join(':')}
${extra}`,
  );
  return file;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<CliResult>;
}

/** `steps`: a module exporting buildSteps, run instead of the product's steps (through the test entry, not bin/). */
export function spawnCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; input?: string; steps?: string }): Spawned {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1', ...opts.env };
  for (const k of [
    'PROXMOX_VE_API_TOKEN',
    'PROXMOX_VE_ENDPOINT',
    'PROXMOX_VE_USERNAME',
    'PROXMOX_VE_PASSWORD',
    'PROXMOX_VE_FINGERPRINT',
    'FLATCAR_K3S_STATE_DIR',
  ])
    if (!(opts.env && k in opts.env)) delete env[k];
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const entry = opts.steps ? [entryWithSteps, opts.steps] : [binPath];
  const child = spawn(process.execPath, ['--import', tsxLoader, ...entry, ...args], {
    cwd: opts.cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  else child.stdin!.end();
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err })),
  );
  return { child, stdout: () => out, stderr: () => err, done };
}

export function runCliProcess(
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; input?: string; steps?: string },
): Promise<CliResult> {
  return spawnCli(args, opts).done;
}

/** Poll until `fn` is true (or fail after timeoutMs). */
export async function waitFor(fn: () => boolean, timeoutMs = 30000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

export const fileExists = existsSync;
