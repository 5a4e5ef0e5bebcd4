/**
 * esbuild plugin for scripts/build.ts: Node's built-in modules through process.getBuiltinModule()
 * instead of `import`. An ESM import of a built-in builds its ESM facade, which reads every export:
 * node:fs's lazy getters load all of streams and fs/promises, node:crypto its whole tree, a few ms each
 * at start-up. Here each built-in becomes a small module exporting only the names the code uses
 * (found by reading its imports: `import { a, b as c }`, and `N.name` for `import * as N` or a default
 * import). require() from bundled CommonJS (yaml's Node build) gets the module object itself.
 * Dynamic import('node:x') stays a real import (it is not on a start-up path).
 */
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plugin } from 'esbuild';

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** builtin ('node:fs') → the names the product's sources take from it. */
export function usedBuiltinNames(root: string, dirs: string[]): Map<string, Set<string>> {
  const used = new Map<string, Set<string>>();
  const add = (id: string, name: string) => {
    const key = id.startsWith('node:') ? id : `node:${id}`;
    if (!used.has(key)) used.set(key, new Set());
    if (IDENT.test(name) && name !== 'default') used.get(key)!.add(name);
  };
  const scan = (text: string) => {
    for (const m of text.matchAll(/import\s+(type\s+)?([\s\S]*?)\s+from\s+['"]((?:node:)?[a-z_/]+)['"]/g)) {
      const [, typeOnly, clause, id] = m as unknown as [string, string | undefined, string, string];
      if (typeOnly || !builtinModules.includes(id.replace(/^node:/, ''))) continue;
      const named = /\{([\s\S]*)\}/.exec(clause)?.[1];
      for (const part of named?.split(',') ?? []) {
        const name = part
          .trim()
          .replace(/^type\s+/, '')
          .split(/\s+as\s+/)[0]!;
        if (name && !part.trim().startsWith('type ')) add(id, name);
      }
      const local = /^(?:\*\s+as\s+)?([A-Za-z_$][\w$]*)/.exec(clause.replace(/\{[\s\S]*\}/, '').trim())?.[1];
      if (local) for (const u of text.matchAll(new RegExp(`\\b${local.replace(/\$/g, '\\$')}\\.([A-Za-z_$][\\w$]*)`, 'g'))) add(id, u[1]!);
      if (!named && !local) add(id, 'default');
    }
  };
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) scan(readFileSync(join(root, rel), 'utf8'));
    }
  };
  for (const d of dirs) walk(d);
  return used;
}

/**
 * The module standing for one built-in. Plain functions are wrappers that load the built-in on their
 * first call (node:net, node:fs/promises and what they pull in load only when a step connects or writes);
 * classes and values are read when the module loads, and so is the default export.
 */
function builtinModuleText(id: string, names: Set<string> = new Set()): string {
  const real = process.getBuiltinModule(id) as Record<string, unknown>;
  const lazy = (k: string) => typeof real[k] === 'function' && /^[a-z]/.test(k) && Object.keys(real[k] as object).length === 0;
  const sorted = [...names].sort();
  const lines = ["import { load } from 'builtin-loader';", 'let m;', `const get = () => (m ??= load(${JSON.stringify(id)}));`];
  for (const k of sorted)
    lines.push(lazy(k) ? `export function ${k}(...a) { return get().${k}(...a); }` : `export const ${k} = get().${k};`);
  lines.push('export default /* @__PURE__ */ get();');
  return lines.join('\n');
}

export function builtinsDirect(root: string, dirs: string[], entry: string): Plugin {
  const used = usedBuiltinNames(root, dirs);
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  return {
    name: 'builtins-direct',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
        if (!builtins.has(args.path) || args.namespace !== 'file' || args.importer.endsWith(entry)) return undefined;
        if (args.kind === 'dynamic-import') return undefined;
        const id = args.path.startsWith('node:') ? args.path : `node:${args.path}`;
        return { path: id, namespace: args.kind === 'require-call' ? 'builtin-cjs' : 'builtin' };
      });
      // Node 22.0–22.2 lack process.getBuiltinModule: one shared module falls back to require().
      b.onResolve({ filter: /^builtin-loader$/ }, () => ({ path: 'builtin-loader', namespace: 'builtin-loader' }));
      b.onLoad({ filter: /.*/, namespace: 'builtin-loader' }, () => ({
        contents: [
          "import { createRequire } from 'node:module';",
          'const req = createRequire(import.meta.url);',
          'export const load = (id) => process.getBuiltinModule?.(id) ?? req(id);',
        ].join('\n'),
        loader: 'js',
      }));
      b.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, (args) => ({
        contents: `module.exports = require('builtin-loader').load(${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
      b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
        contents: builtinModuleText(args.path, used.get(args.path)),
        loader: 'js',
      }));
    },
  };
}
