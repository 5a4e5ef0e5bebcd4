/**
 * Load a heavy CommonJS package (ssh2, undici, proxmox-api, @pulumi/*) on first use instead of at
 * import time, so `plan` and `--help` (which only build step lists and describe them) start fast.
 * Types stay exact: pass `typeof import('pkg')` as T. Node caches the module after the first call.
 */
import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

export function lazyRequire<T>(specifier: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= requireFromHere(specifier) as T);
}
