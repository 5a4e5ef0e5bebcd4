/** src/sha256.ts gives node:crypto's digests: padding edges (55/56/63/64 bytes), multi-block and UTF-8 input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sha256, sha256Hex } from '../src/sha256.js';

const reference = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

test('sha256Hex matches node:crypto at every padding edge and across blocks', () => {
  for (const n of [0, 1, 3, 23, 24, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 1750, 70_000]) {
    const text = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + ((i * 7) % 95))).join('');
    assert.equal(sha256Hex(text), reference(text), `length ${n}`);
  }
});

test('sha256 hashes UTF-8 bytes, not UTF-16 code units', () => {
  for (const text of ['homelab/k3s-server-1', 'Grüße → 日本語 🙂', '\u0000\uffff']) assert.equal(sha256Hex(text), reference(text));
  assert.deepEqual(Buffer.from(sha256('abc')), createHash('sha256').update('abc').digest());
});

test('the FIPS 180-4 example digest', () => {
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
