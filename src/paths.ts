import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/** The package root (where package.json, presets/ and vendor/ live), from source or from dist/. */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'presets'))) return (cachedRoot = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('flatcar-k3s: cannot find the package root (package.json with presets/)');
    dir = up;
  }
}

export const presetsDir = (): string => join(packageRoot(), 'presets');
export const vendorDir = (): string => join(packageRoot(), 'vendor');
