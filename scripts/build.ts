/**
 * `npm run build`: dist/ as a bundle (esbuild), so a command loads a few files instead of hundreds of
 * modules. dist/bin/flatcar-k3s.js is the entry: the Node version check and the compile cache, then a
 * dynamic import of the CLI. Every `import()` in the code becomes its own chunk (dist/chunks/), so what
 * loads lazily from source loads lazily from dist too (`plan` never loads the UI, Pulumi or ssh2).
 * zod, yaml and @noble/hashes are bundled (tree-shaken: no zod locales, yaml's ES module build, sha256 alone);
 * the other packages stay in node_modules
 * (native code, Pulumi's own module loading, React's single copy). Types are checked by
 * `npm run typecheck`, not here.
 */
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { builtinRequire, lazyBuiltins, yamlEsm } from './build-plugins.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLED = new Set(['zod', 'yaml', '@noble/hashes']);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const external = Object.keys(pkg.dependencies)
  .filter((d) => !BUNDLED.has(d))
  .flatMap((d) => [d, `${d}/*`]);

rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['bin/flatcar-k3s.ts'],
  outdir: 'dist',
  entryNames: 'bin/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  // .mjs: Node knows a chunk is ESM from its name, without looking for the package.json above it.
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  tsconfig: 'tsconfig.json',
  external,
  plugins: [lazyBuiltins(), builtinRequire(), yamlEsm()],
  logLevel: 'warning',
});
// The published bin keeps its name (package.json "bin"); only the chunks it imports are .mjs.
renameSync(join(root, 'dist', 'bin', 'flatcar-k3s.mjs'), join(root, 'dist', 'bin', 'flatcar-k3s.js'));
