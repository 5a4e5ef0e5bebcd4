/**
 * The README stays a one-page entry point and the docs it links to stay whole: every relative link
 * resolves (file and heading), and the config reference in docs/config.md is the one the schema
 * generates (`npm run docs:config` rewrites it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { referenceRows } from '../scripts/config-reference.js';

const root = join(import.meta.dirname, '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const markdown = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (m)
      out.add(
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      );
  }
  return out;
}

describe('README and docs/', () => {
  it('the README fits on a page (at most 200 lines) and links every docs/ page', () => {
    const readme = read('README.md');
    assert.ok(readme.split('\n').length <= 200, `README.md has ${readme.split('\n').length} lines`);
    for (const f of markdown.filter((m) => m.startsWith('docs/'))) assert.ok(readme.includes(`](${f})`), `README.md does not link ${f}`);
  });

  it('every relative link in the README and docs/ points at an existing file and heading', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      const text = read(file);
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, hash] = target.split('#') as [string, string | undefined];
        const resolved = path ? join(dirname(file), path) : file;
        if (!existsSync(join(root, resolved))) broken.push(`${file}: ${target} (no ${resolved})`);
        else if (hash && resolved.endsWith('.md') && !anchors(read(resolved)).has(hash))
          broken.push(`${file}: ${target} (no heading #${hash})`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('docs/config.md holds the config reference the schema generates', () => {
    const text = read('docs/config.md');
    const start = text.indexOf('<!-- config-reference:start');
    const end = text.indexOf('<!-- config-reference:end -->');
    assert.ok(start >= 0 && end > start, 'docs/config.md lacks the config-reference markers');
    const table = text.slice(text.indexOf('\n', start) + 1, end).trim();
    assert.equal(table, referenceRows().join('\n'), 'the table is stale: run `npm run docs:config`');
  });
});
