/**
 * `npm run bench [-- NAME…] [-- --json]`: runs every bench module in scripts/bench/*.ts (alphabetical),
 * each in its own process so one cannot warm the caches of another. Names filter the modules (e.g.
 * "startup"). Bench modules print their own figures; tests never assert on speed.
 * --json: the modules also print `BENCH_JSON {...}` lines; their figures are merged and printed as the
 * last line, one JSON object: ha_0_2, ha_0_02, n200 (wall / honest bound), growth_200_over_100,
 * state_bytes_per_node, first_frame and plan (x `node -e 0`), ui_cores (CPU-s per wall-s under the flood).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'bench');
const args = process.argv.slice(2);
const json = args.includes('--json');
const wanted = args.filter((a) => !a.startsWith('--'));
const modules = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .sort()
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.replace(/\.ts$/, '') === w));

if (modules.length === 0) {
  console.error(`no bench modules${wanted.length ? ` named ${wanted.join(', ')}` : ''} in ${dir}`);
  process.exit(2);
}
const KEYS = ['ha_0_2', 'ha_0_02', 'n200', 'growth_200_over_100', 'state_bytes_per_node', 'first_frame', 'plan', 'ui_cores'] as const;
const figures: Record<string, unknown> = {};
let failed = 0;
for (const m of modules) {
  console.log(`\n=== bench ${m.replace(/\.ts$/, '')}`);
  const child = spawn(process.execPath, ['--import', 'tsx', join(dir, m), ...(json ? ['--json'] : [])], {
    stdio: ['inherit', 'pipe', 'inherit'],
  });
  for await (const line of createInterface({ input: child.stdout })) {
    const j = /^BENCH_JSON (.*)$/.exec(line);
    if (j) Object.assign(figures, JSON.parse(j[1]!));
    else console.log(line);
  }
  const code: number | null = child.exitCode ?? (await new Promise((r) => child.once('exit', (c) => r(c))));
  if (code !== 0) {
    failed++;
    console.error(`bench ${m} exited with ${code}`);
  }
}
if (json) console.log(JSON.stringify(Object.fromEntries(KEYS.map((k) => [k, figures[k] ?? null]))));
process.exit(failed ? 1 : 0);
