/**
 * The first screen drawn before ink loads (src/app/first-frame.ts) is the Start screen's: its header,
 * question and the presets in the order the UI lists them, cut to the terminal width.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstFrameText } from '../src/app/first-frame.js';
import { listPresets } from '../src/config/load.js';

test('the first frame shows the Start screen with every preset, homelab first and selected', () => {
  const text = firstFrameText({ columns: 200, color: false });
  const lines = text.split('\r\n');
  assert.match(lines[0]!, /^Start › Proxmox › Flatcar › Nodes › Apps › Review › Build$/);
  assert.match(text, /Choose a starting point/);
  const items = lines.filter((l) => /^(❯ | {2})\S/.test(l)).map((l) => l.slice(2).split(' ')[0]);
  assert.deepEqual(items.slice(0, 2), ['homelab', 'ha']);
  for (const p of listPresets()) assert.ok(items.includes(p), p);
  assert.ok(items.includes('custom'));
  assert.ok(lines.some((l) => l.startsWith('❯ homelab — ')));
});

test('lines are cut to the terminal width; with clusters in the state dir only the header is drawn early', () => {
  for (const l of firstFrameText({ columns: 40, color: false }).split('\r\n')) assert.ok(l.length <= 39, l);
  const d = mkdtempSync(join(tmpdir(), 'fk3s-ff-'));
  try {
    mkdirSync(join(d, 'lab'));
    const text = firstFrameText({ columns: 100, color: false, clustersDir: d });
    assert.match(text, /flatcar-k3s — k3s on Flatcar/);
    assert.doesNotMatch(text, /Choose a starting point/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
