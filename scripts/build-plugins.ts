/**
 * esbuild plugins for scripts/build.ts: Node's built-in modules, and yaml.
 *
 * lazyBuiltins: node:crypto, node:net and node:fs/promises load (with what they pull in: all of
 * crypto's internals, streams, readline) only when a function of theirs is first called. Their
 * importers go through one small module per built-in whose exports are wrappers of the built-in's plain
 * functions; `plan` imports steps that hash, connect or write, and calls none of them. An importer that
 * takes a class or a value from one of them imports the real module.
 *
 * builtinRequire: require() of a built-in from bundled CommonJS. ESM chunks have no require():
 * 'process' and 'buffer' come from process.getBuiltinModule(), any other fails the build (it would
 * fail only when run). Nothing bundled needs it today; it keeps a CommonJS package safe to bundle.
 *
 * yamlEsm: see below.
 */
import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

const LAZY = ['node:crypto', 'node:net', 'node:fs/promises'];
const IDENT = /^[A-Za-z_$][\w$]*$/;

/** A plain function (not a class, no own properties): a wrapper that forwards the call is the same to callers. */
function wrappable(real: Record<string, unknown>, k: string): boolean {
  return typeof real[k] === 'function' && /^[a-z]/.test(k) && Object.keys(real[k] as object).length === 0;
}

/**
 * The names a source file takes from the built-in `id`: `import { a, b as c }`, and `N.x` for
 * `import * as N`; undefined for a default import (the whole module object).
 */
export function namesImported(text: string, id: string): string[] | undefined {
  const bare = id.replace(/^node:/, '');
  const names = new Set<string>();
  for (const [, typeOnly, clause, spec] of text.matchAll(/\bimport\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]/g)) {
    if (typeOnly || spec!.replace(/^node:/, '') !== bare) continue;
    for (const part of /\{([^}]*)\}/.exec(clause!)?.[1]?.split(',') ?? []) {
      const p = part.trim();
      if (p && !p.startsWith('type ')) names.add(p.split(/\s+as\s+/)[0]!);
    }
    const rest = clause!
      .replace(/\{[^}]*\}/, '')
      .replace(/,\s*$/, '')
      .trim();
    if (/^[A-Za-z_$]/.test(rest)) return undefined;
    const local = /^\*\s+as\s+([A-Za-z_$][\w$]*)/.exec(rest)?.[1];
    if (local)
      for (const u of text.matchAll(new RegExp(`(?<![\\w$.])${local.replace(/\$/g, '\\$')}\\.([A-Za-z_$][\\w$]*)`, 'g'))) names.add(u[1]!);
  }
  return [...names].filter((n) => IDENT.test(n)).sort();
}

function lazyModuleText(id: string): string {
  const real = process.getBuiltinModule(id) as Record<string, unknown>;
  // process.getBuiltinModule is Node 22.3+; on 22.0–22.2 createRequire loads the same module.
  const lines = [
    "import { createRequire } from 'node:module';",
    'let m;',
    `const get = () => (m ??= process.getBuiltinModule?.(${JSON.stringify(id)}) ?? createRequire(import.meta.url)(${JSON.stringify(id)}));`,
  ];
  for (const k of Object.keys(real).filter((k) => IDENT.test(k) && wrappable(real, k)))
    lines.push(`export function ${k}(...a) { return get().${k}(...a); }`);
  return lines.join('\n');
}

export function lazyBuiltins(): Plugin {
  const texts = new Map<string, string>();
  const textOf = (file: string) => texts.get(file) ?? texts.set(file, readFileSync(file, 'utf8')).get(file)!;
  return {
    name: 'lazy-builtins',
    setup(b) {
      b.onResolve({ filter: /^(node:)?(crypto|net|fs\/promises)$/ }, (args) => {
        const id = args.path.replace(/^(node:)?/, 'node:');
        if (args.kind !== 'import-statement' || args.namespace !== 'file' || !LAZY.includes(id)) return undefined;
        const real = process.getBuiltinModule(id) as Record<string, unknown>;
        const names = namesImported(textOf(args.importer), id);
        if (names === undefined || !names.every((k) => wrappable(real, k))) return undefined;
        return { path: id, namespace: 'lazy-builtin' };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: lazyModuleText(args.path), loader: 'js' }));
    },
  };
}

const FALLBACK: Record<string, string> = { 'node:process': 'process', 'node:buffer': '{ Buffer }' };

export function builtinRequire(): Plugin {
  return {
    name: 'builtin-require',
    setup(b) {
      b.onResolve({ filter: /^(node:)?(process|buffer)$/ }, (args) =>
        args.kind === 'require-call' ? { path: args.path.replace(/^(node:)?/, 'node:'), namespace: 'builtin-require' } : undefined,
      );
      // Any other built-in required from bundled CommonJS would fail only when run: fail the build instead.
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) =>
        args.kind === 'require-call' && builtinModules.includes(args.path.replace(/^node:/, ''))
          ? { errors: [{ text: `bundled CommonJS requires ${args.path}: add it to scripts/build-plugins.ts` }] }
          : undefined,
      );
      // Node 22.0–22.2 lack process.getBuiltinModule: there the globals stand in.
      b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({
        contents: `module.exports = process.getBuiltinModule ? process.getBuiltinModule(${JSON.stringify(args.path)}) : ${FALLBACK[args.path]};`,
        loader: 'js',
      }));
    },
  };
}

/**
 * yaml's ES module build (the one it ships for browsers) instead of its CommonJS Node build: the same
 * code, but ES modules let esbuild drop what the product does not use and load the rest without
 * CommonJS wrappers (several ms of `plan`). The two builds differ only where Node is at hand, and those
 * places get the Node build's behaviour back: warnings go through process.emitWarning, !!binary is a
 * Buffer. (The Node build's LOG_TOKENS/LOG_STREAM debug output of yaml's own lexer is not kept.)
 */
export function yamlEsm(): Plugin {
  const patches: Array<[RegExp, Array<[string, string]>]> = [
    [
      /yaml[\\/]browser[\\/]dist[\\/]log\.js$/,
      [
        [
          'console.warn(warning);',
          "if (typeof process.emitWarning === 'function') process.emitWarning(warning); else console.warn(warning);",
        ],
      ],
    ],
    [
      /yaml[\\/]browser[\\/]dist[\\/]schema[\\/]yaml-1\.1[\\/]binary\.js$/,
      [
        [
          "if (typeof atob === 'function') {",
          "if (typeof Buffer === 'function') { return Buffer.from(src, 'base64'); } else if (typeof atob === 'function') {",
        ],
        [
          "if (typeof btoa === 'function') {",
          "if (typeof Buffer === 'function') { str = buf instanceof Buffer ? buf.toString('base64') : Buffer.from(buf.buffer).toString('base64'); } else if (typeof btoa === 'function') {",
        ],
      ],
    ],
  ];
  return {
    name: 'yaml-esm',
    setup(b) {
      const index = join(dirname(fileURLToPath(import.meta.resolve('yaml/package.json'))), 'browser', 'dist', 'index.js');
      b.onResolve({ filter: /^yaml$/ }, () => ({ path: index }));
      for (const [file, edits] of patches) {
        b.onLoad({ filter: file }, (args) => {
          let text = readFileSync(args.path, 'utf8');
          for (const [from, to] of edits) {
            if (!text.includes(from))
              return { errors: [{ text: `yaml changed: "${from}" not found in ${args.path} (scripts/build-plugins.ts)` }] };
            text = text.replace(from, to);
          }
          return { contents: text, loader: 'js' };
        });
      }
    },
  };
}
