/**
 * `npm run bench [-- NAME…]`: runs every bench module in scripts/bench/*.ts (alphabetical), each in
 * its own process so one cannot warm the caches of another. Names filter the modules (e.g. "startup").
 * Bench modules print their own figures; tests never assert on speed.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'bench');
const wanted = process.argv.slice(2);
const modules = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .sort()
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.replace(/\.ts$/, '') === w));

if (modules.length === 0) {
  console.error(`no bench modules${wanted.length ? ` named ${wanted.join(', ')}` : ''} in ${dir}`);
  process.exit(2);
}
let failed = 0;
for (const m of modules) {
  console.log(`\n=== bench ${m.replace(/\.ts$/, '')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, m)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench ${m} exited with ${r.status ?? r.signal}`);
  }
}
process.exit(failed ? 1 : 0);
