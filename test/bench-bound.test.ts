/**
 * The bench's lower bound (scripts/bench-lib/bound.ts) comes from the simulator's model and recorded
 * timings only: it must not read the tool's own settings (lane limits, Ready waits before joins,
 * --parallel), or a slow policy would look fast against a bound it set itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { honestBound, type RunRecord } from '../scripts/bench-lib/bound.js';
import { LANE_LIMITS } from '../src/runner/driver.js';

const boundSource = new URL('../scripts/bench-lib/bound.ts', import.meta.url);

test('the bound module imports nothing of the tool (no src/, no steps/)', () => {
  const text = readFileSync(boundSource, 'utf8');
  const imports = [
    ...text.matchAll(/^\s*import\s[^;]*?from\s+['"]([^'"]+)['"]/gm),
    ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  const tool = imports.filter((i) => /(^|\/)(src|steps)\//.test(i) || /runner|driver|steps/.test(i));
  assert.deepEqual(tool, []);
  assert.doesNotMatch(text, /LANE_LIMITS|laneLimits|parallel\s*[:=]/);
});

// first server: ready for k3s at T0 + clone + tail = 1 + 2 + 10 = 13 s; API up 7 s later (20), Ready at 13 + 10 = 23.
const record = (): RunRecord => ({
  templateMs: 1000,
  apiDelayMs: 7000,
  clones: Array.from({ length: 4 }, () => ({ holds: [{ storage: 'ceph', ms: 500 }], workMs: 2000 })),
  nodes: [
    { name: 's1', role: 'server', first: true, tailMs: 10_000, k3sMs: 10_000 },
    { name: 's2', role: 'server', tailMs: 10_000, k3sMs: 8000 },
    { name: 'a1', role: 'agent', tailMs: 10_000, k3sMs: 4000 },
    { name: 'a2', role: 'agent', tailMs: 12_000, k3sMs: 4000 },
  ],
});

test('joins start when the first server API is up, not when it is Ready', () => {
  const b = honestBound(record());
  // s2 joins at 20 s (API up), Ready at 28 s; agents from 20 s: a1 24 s, a2 max(20, 15) + 4 = 24 s.
  assert.equal(b.ms, 28_000);
  assert.ok(b.derivation.some((l) => /API up/.test(l)));
  assert.match(b.derivation.at(-1)!, /bound = .*28\.00 s/);
});

test('clones are limited by the storage-lock holds only, not by a lane of clones', () => {
  const r = record();
  // 40 clones, each 1.5 s of exclusive storage-lock hold: the last hold ends 60 s after the template.
  r.clones = Array.from({ length: 40 }, () => ({ holds: [{ storage: 'ceph', ms: 1500 }], workMs: 2000 }));
  r.nodes = Array.from({ length: 40 }, (_, i) => ({
    name: `n${i}`,
    role: i === 0 ? 'server' : 'agent',
    first: i === 0,
    tailMs: 1000,
    k3sMs: 1000,
  }));
  r.apiDelayMs = 500;
  const b = honestBound(r);
  // 1 s template + 40 x 1.5 s holds + 0.5 s unlocked part + 1 s tail + 1 s k3s
  assert.equal(b.ms, 1000 + 60_000 + 500 + 2000);
  assert.match(b.derivation.join('\n'), /40 serial lock holds/);
});

test("the bound does not change with the tool's lane limits", () => {
  const before = honestBound(record()).ms;
  const lanes = LANE_LIMITS as Record<string, number>;
  const saved = { ...lanes };
  try {
    lanes['pve-clone'] = 1;
    lanes['k3s-server-join'] = 10;
    assert.equal(honestBound(record()).ms, before);
  } finally {
    Object.assign(lanes, saved);
  }
});
