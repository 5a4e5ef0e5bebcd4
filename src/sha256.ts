/**
 * SHA-256 of a string's UTF-8 bytes, for the hashes `plan` computes (node MACs, the template's Ignition,
 * the config's change hash): short texts. From @noble/hashes (audited, pure JavaScript, no dependency):
 * loading node:crypto costs `plan` about 4.5 ms of its start-up, hashing these texts in JavaScript a few
 * microseconds. Large data and anything secret use node:crypto.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

const encoder = new TextEncoder();

export function sha256(text: string): Uint8Array {
  return nobleSha256(encoder.encode(text));
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(text));
}
