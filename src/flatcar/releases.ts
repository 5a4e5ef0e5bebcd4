/**
 * Flatcar's releases feed (`releases-<channel>.json`): an object keyed by version plus alias keys
 * ("current", "current-2024", …). Parsing is pure: aliases dropped, versions sorted newest first,
 * and only releases that publish a Proxmox VE image are offered.
 */
import { UserError } from '../errors.js';

export const CHANNELS = ['stable', 'beta', 'alpha', 'lts'] as const;
export type FlatcarChannel = (typeof CHANNELS)[number];

/** The first major with the `proxmoxve` image (Alpha 4152.0.0, Stable 4152.2.0). */
export const FIRST_PROXMOXVE_MAJOR = 4152;

export interface FlatcarRelease {
  version: string;
  channel: string;
  /** ISO 8601 (UTC) from the feed's "YYYY-MM-DD hh:mm:ss +0000". */
  releaseDate: string;
  architectures: string[];
  kernel?: string;
  systemd?: string;
  ignition?: string;
  /** True when this release publishes flatcar_production_proxmoxve_image.img. */
  proxmoxImage: boolean;
}

const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;

export function isVersion(key: string): boolean {
  return VERSION.test(key);
}

export function parseVersion(v: string): [number, number, number] {
  const m = VERSION.exec(v);
  if (!m)
    throw new UserError(`"${v}" is not a Flatcar version`, {
      field: 'flatcar.version',
      fix: 'Use "current" or a version like "4593.2.5" (flatcar-k3s versions lists them).',
    });
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Numeric comparison: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

export function hasProxmoxImage(version: string): boolean {
  return parseVersion(version)[0] >= FIRST_PROXMOXVE_MAJOR;
}

/** "2026-08-13 15:48:35 +0000" → "2026-08-13T15:48:35Z"; other shapes are kept as given. */
export function normalizeReleaseDate(s: unknown): string {
  if (typeof s !== 'string') return '';
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s.trim());
  if (!m) return s;
  const t = Date.parse(`${m[1]}T${m[2]}${m[3]}${m[4]}:${m[5]}`);
  return Number.isNaN(t) ? s : new Date(t).toISOString().replace('.000Z', 'Z');
}

const first = (v: unknown): string | undefined => (Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined);

/**
 * Parse a feed document. Every release (including pre-Proxmox ones) is returned, newest first;
 * use `proxmoxReleases` for the ones that can be installed.
 */
export function parseReleasesFeed(doc: unknown, source = 'the releases feed'): FlatcarRelease[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UserError(`${source} is not a Flatcar releases feed (expected a JSON object keyed by version)`, {
      fix: 'Check flatcar.feedBaseUrl: it must point at a directory serving releases-<channel>.json (default https://www.flatcar.org/releases-json).',
    });
  }
  const out: FlatcarRelease[] = [];
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (!isVersion(key)) continue; // "current", "current-2024", …
    const e = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const sw = (typeof e.major_software === 'object' && e.major_software !== null ? e.major_software : {}) as Record<string, unknown>;
    out.push({
      version: key,
      channel: typeof e.channel === 'string' ? e.channel : '',
      releaseDate: normalizeReleaseDate(e.release_date),
      architectures: Array.isArray(e.architectures) ? e.architectures.filter((a): a is string => typeof a === 'string') : [],
      kernel: first(sw.kernel),
      systemd: first(sw.systemd),
      ignition: first(sw.ignition),
      proxmoxImage: hasProxmoxImage(key),
    });
  }
  if (out.length === 0) {
    throw new UserError(`${source} lists no Flatcar versions`, { fix: 'Check flatcar.feedBaseUrl and flatcar.channel.' });
  }
  return out.sort((a, b) => compareVersions(b.version, a.version));
}

/** Releases that publish the Proxmox VE image for `arch`, newest first. */
export function proxmoxReleases(releases: FlatcarRelease[], arch = 'amd64'): FlatcarRelease[] {
  return releases.filter((r) => r.proxmoxImage && (r.architectures.length === 0 || r.architectures.includes(arch)));
}

/**
 * "current" → the newest release with a Proxmox image; a version → that release, which must exist
 * in the channel and have the Proxmox image.
 */
export function resolveRelease(releases: FlatcarRelease[], requested: string, opts: { channel: string; arch?: string }): FlatcarRelease {
  const arch = opts.arch ?? 'amd64';
  const usable = proxmoxReleases(releases, arch);
  if (requested === 'current') {
    const newest = usable[0];
    if (!newest) {
      throw new UserError(`The ${opts.channel} channel has no release with a Proxmox VE image for ${arch}`, {
        field: 'flatcar.channel',
        fix: `Use a channel whose releases are ${FIRST_PROXMOXVE_MAJOR} or newer (stable, beta, alpha).`,
      });
    }
    return newest;
  }
  parseVersion(requested);
  const found = releases.find((r) => r.version === requested);
  const offer = usable
    .slice(0, 5)
    .map((r) => r.version)
    .join(', ');
  if (!found) {
    throw new UserError(`Flatcar ${requested} is not in the ${opts.channel} channel`, {
      field: 'flatcar.version',
      fix: `Pick one of the ${opts.channel} releases (newest: ${offer || 'none'}) or "current"; flatcar-k3s versions --channel ${opts.channel} lists them all.`,
    });
  }
  if (!found.proxmoxImage) {
    throw new UserError(`Flatcar ${requested} has no Proxmox VE image (it first shipped in ${FIRST_PROXMOXVE_MAJOR}.x)`, {
      field: 'flatcar.version',
      fix: `Use "current" or a release ${FIRST_PROXMOXVE_MAJOR}.0.0 or newer (newest: ${offer || 'none'}).`,
    });
  }
  if (found.architectures.length && !found.architectures.includes(arch)) {
    throw new UserError(`Flatcar ${requested} is not published for ${arch} (only ${found.architectures.join(', ')})`, {
      field: 'flatcar.arch',
      fix: 'Change flatcar.arch or flatcar.version.',
    });
  }
  return found;
}
