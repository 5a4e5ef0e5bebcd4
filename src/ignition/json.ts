/** Serialising Ignition configs deterministically, hashing them, and the cloud-init drive's size limits. */
import { sha256Hex } from '../sha256.js';
import { UserError } from '../errors.js';
import type { IgnitionConfig } from './types.js';

/** Ignition first, the other keys sorted at every level: the same config always gives the same bytes. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort((a, b) => (a === 'ignition' ? -1 : b === 'ignition' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = canonical(obj[k]);
  return out;
}

/** Compact by default (what is uploaded and hashed); `pretty` indents by 2 spaces for people. */
export function ignitionJson(cfg: IgnitionConfig, opts: { pretty?: boolean } = {}): string {
  return JSON.stringify(canonical(cfg), null, opts.pretty ? 2 : undefined);
}

/** sha256 hex of the JSON text. Names use the first 12 characters (`shortHash`). */
export function ignitionHash(json: string): string {
  return sha256Hex(json);
}

export const shortHash = (hash: string): string => hash.slice(0, 12);

/** Proxmox's cloud-init drive: each snippet at most 1 MiB, the whole drive at most 3 MiB. */
export const SNIPPET_MAX_BYTES = 1024 * 1024;
export const CLOUDINIT_MAX_BYTES = 3 * 1024 * 1024;

/** Throws a UserError when one snippet, or all parts of one drive together, are too big. */
export function checkCloudInitSize(parts: Array<{ label: string; data: string | Buffer }>): void {
  let total = 0;
  for (const p of parts) {
    const size = typeof p.data === 'string' ? Buffer.byteLength(p.data, 'utf8') : p.data.length;
    total += size;
    if (size > SNIPPET_MAX_BYTES) {
      throw new UserError(
        `The Ignition config ${p.label} is ${formatBytes(size)}; Proxmox puts at most ${formatBytes(SNIPPET_MAX_BYTES)} per file on the cloud-init drive`,
        {
          field: 'flatcar.ignition.files',
          fix: 'Make the extra files in flatcar.ignition.files smaller, or fetch big files at boot from a URL instead of inlining them.',
        },
      );
    }
  }
  if (total > CLOUDINIT_MAX_BYTES) {
    throw new UserError(
      `The cloud-init drive would hold ${formatBytes(total)} (${parts.map((p) => p.label).join(', ')}); Proxmox allows at most ${formatBytes(CLOUDINIT_MAX_BYTES)}`,
      {
        field: 'flatcar.ignition.files',
        fix: 'Make the extra files in flatcar.ignition.files smaller.',
      },
    );
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(2)} MiB (${n} bytes)`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB (${n} bytes)`;
  return `${n} bytes`;
}
