/**
 * SHA-256 of a string's UTF-8 bytes, for the hashes `plan` computes (node MACs, the template's Ignition,
 * the config's change hash). node:crypto is fetched on the first call with process.getBuiltinModule (a
 * CommonJS built-in: well under a millisecond), not imported at start-up, where its ES module facade
 * would be loaded by every command.
 */
import { createRequire } from 'node:module';

type Crypto = typeof import('node:crypto');
let crypto: Crypto | undefined;

function nodeCrypto(): Crypto {
  // getBuiltinModule is Node 22.3+; 22.0–22.2 take the CommonJS require
  crypto ??=
    ((process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:crypto') as Crypto | undefined) ??
    (createRequire(import.meta.url)('node:crypto') as Crypto);
  return crypto;
}

export function sha256(text: string): Uint8Array {
  return new Uint8Array(nodeCrypto().createHash('sha256').update(text, 'utf8').digest());
}

export function sha256Hex(text: string): string {
  return nodeCrypto().createHash('sha256').update(text, 'utf8').digest('hex');
}
