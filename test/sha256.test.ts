/** src/sha256.ts (@noble/hashes) gives node:crypto's digests for the UTF-8 bytes of a string, at padding edges and across blocks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sha256, sha256Hex } from '../src/sha256.js';

const reference = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

test('sha256Hex matches node:crypto at the padding edges, across blocks and on UTF-8 text', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const text = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + ((i * 7) % 95))).join('');
    assert.equal(sha256Hex(text), reference(text), `length ${n}`);
  }
  for (const text of ['homelab/homelab-server-1', 'Grüße → 日本語 🙂']) assert.equal(sha256Hex(text), reference(text));
  assert.deepEqual(Buffer.from(sha256('abc')), createHash('sha256').update('abc').digest());
});
