/**
 * Start-up time of the built CLI: median wall time of `--version`, `--help`, `plan` (homelab preset
 * with a proxmox block) and `status`, against bare `node -e 0`, printed as ms and as ratios; and the
 * interactive UI's first frame in a pseudo-terminal (script(1)) against `node -e` through the same.
 * Builds dist/ first when it is missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'dist', 'bin', 'flatcar-k3s.js');
if (!existsSync(bin)) {
  console.log('dist/ is missing: npm run build');
  const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
}

const runs = Number(process.env.BENCH_RUNS ?? 15);
const tmp = mkdtempSync(join(tmpdir(), 'fk3s-bench-'));
const config = join(tmp, 'config.yaml');
writeFileSync(
  config,
  `preset: homelab
proxmox:
  url: https://pve.example.lan:8006
  tokenId: root@pam!bench
  tokenSecret: 0d5c7a4e-9f1b-4c2d-8e3f-a1b2c3d4e5f6
`,
);
const env = { ...process.env, CI: 'true', FLATCAR_K3S_STATE_DIR: join(tmp, 'state') };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function time(args: string[]): number {
  const once = () => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { cwd: tmp, env, stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
    return ms;
  };
  once(); // warm the file cache
  return median(Array.from({ length: runs }, once));
}

async function sequence(n: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  await f(); // warm the file cache
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

/** ms from spawning `cmd` in a pseudo-terminal until `marker` appears on it. */
function frameMs(cmd: string, marker: string): Promise<number> {
  const ffEnv = { ...Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'CI')), TERM: 'xterm-256color' };
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: tmp, env: ffEnv, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`no "${marker}" within 30 s from ${cmd}`));
    }, 30_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes(marker)) return;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      p.stdout.removeAllListeners('data');
      p.kill('SIGTERM'); // script hangs up its terminal: the UI gets SIGHUP and exits
      p.once('exit', () => resolve(ms));
    });
  });
}

/** Heavy packages a command loads (they should load only when a step needs them). */
const HEAVY = ['@pulumi/pulumi', '@pulumi/kubernetes', 'ssh2', 'proxmox-api', 'undici', 'ink', 'react'];
const tracer = join(tmp, 'trace.mjs');
writeFileSync(
  tracer,
  `import { registerHooks } from 'node:module';
const seen = new Set();
registerHooks({ resolve(s, c, n) { const r = n(s, c); const m = /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(r.url); if (m && c.parentURL && !c.parentURL.includes('node_modules')) seen.add(m[1]); return r; } });
process.on('exit', () => process.stderr.write('\\nLOADED ' + [...seen].join(',') + '\\n'));
`,
);
function heavyLoaded(args: string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', tracer, ...args], { cwd: tmp, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const line = /LOADED (.*)/.exec(r.stderr.toString())?.[1] ?? '';
  return line.split(',').filter((p) => HEAVY.includes(p));
}

try {
  const base = time(['-e', '0']);
  const cases: Array<[string, string[]]> = [
    ['--version', [bin, '--version']],
    ['--help', [bin, '--help']],
    ['plan --config homelab', [bin, 'plan', '--config', config]],
    ['status', [bin, 'status']],
  ];
  console.log(`median of ${runs} runs each (node ${process.version})`);
  console.log(`${'node -e 0'.padEnd(24)} ${base.toFixed(1).padStart(7)} ms   1.00x`);
  const ratios: Record<string, number> = {};
  for (const [name, args] of cases) {
    const ms = time(args);
    ratios[name] = Number((ms / base).toFixed(3));
    const heavy = heavyLoaded(args);
    console.log(
      `${name.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms   ${(ms / base).toFixed(2)}x  (+${(ms - base).toFixed(1)} ms)${heavy.length ? `  loads ${heavy.join(', ')}` : ''}`,
    );
  }
  // The interactive first frame, in a pseudo-terminal (script(1)): from spawn to the Start screen's
  // question on the terminal, against `node -e` writing one word through the same pseudo-terminal.
  let firstFrame: number | undefined;
  if (spawnSync('script', ['--version']).status === 0) {
    const ffRuns = Math.max(5, Math.floor(runs / 2));
    const baseFf = median(await sequence(ffRuns, () => frameMs(`${process.execPath} -e "process.stdout.write('READY')"`, 'READY')));
    const uiFf = median(await sequence(ffRuns, () => frameMs(`${process.execPath} ${bin}`, 'Choose a starting point')));
    firstFrame = Number((uiFf / baseFf).toFixed(3));
    console.log(
      `${'first frame (UI)'.padEnd(24)} ${uiFf.toFixed(1).padStart(7)} ms   ${firstFrame.toFixed(2)}x  (node -e through the same pty: ${baseFf.toFixed(1)} ms; median of ${ffRuns})`,
    );
  } else console.log('first frame: script(1) not found, not measured');
  if (process.argv.includes('--json'))
    console.log(`BENCH_JSON ${JSON.stringify({ plan: ratios['plan --config homelab'], first_frame: firstFrame ?? null })}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
