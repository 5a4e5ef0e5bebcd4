/**
 * Where the Flatcar Proxmox VE image lives, how its `.DIGESTS` file reads, and what it is called on
 * the Proxmox storage. The image is qcow2 despite its `.img` name and is published uncompressed.
 */
import { RemoteError } from '../errors.js';
import { defaultFetch, fetchText, type FetchFn } from './fetch.js';

export const PROXMOXVE_IMAGE_FILE = 'flatcar_production_proxmoxve_image.img';

export interface ImageLocation {
  channel: string;
  version: string;
  arch: string;
}

/** `<imageBaseUrl with {channel}>/<arch>-usr/<version>` */
export function releaseDirUrl(imageBaseUrl: string, loc: ImageLocation): string {
  return `${imageBaseUrl.replaceAll('{channel}', loc.channel).replace(/\/+$/, '')}/${loc.arch}-usr/${loc.version}`;
}

export function imageUrl(imageBaseUrl: string, loc: ImageLocation): string {
  return `${releaseDirUrl(imageBaseUrl, loc)}/${PROXMOXVE_IMAGE_FILE}`;
}

export function digestsUrl(imageBaseUrl: string, loc: ImageLocation): string {
  return `${imageUrl(imageBaseUrl, loc)}.DIGESTS`;
}

/** The name on the Proxmox storage: `import` content accepts only .qcow2/.raw/.vmdk/.ova names. */
export function importFileName(channel: string, version: string): string {
  return `flatcar-${channel}-${version}-proxmoxve.qcow2`;
}

/** PVE < 8.4 fallback: `iso` content accepts `.img`. */
export function isoFileName(channel: string, version: string): string {
  return `flatcar-${channel}-${version}-proxmoxve.img`;
}

export type DigestAlgorithm = 'md5' | 'sha1' | 'sha512';
const HEX_LENGTH: Record<DigestAlgorithm, number> = { md5: 32, sha1: 40, sha512: 128 };

export interface DigestEntry {
  algorithm: DigestAlgorithm;
  hex: string;
  file: string;
}

/**
 * Parse a Flatcar `.DIGESTS` file: blocks headed `# MD5 HASH`, `# SHA1 HASH`, `# SHA512 HASH`, each
 * followed by `<hex>  <file>` lines (also accepts `<hex> *<file>`, CRLF, blank lines, other blocks).
 */
export function parseDigests(text: string): DigestEntry[] {
  const entries: DigestEntry[] = [];
  let algo: DigestAlgorithm | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const header = /^#+\s*([A-Za-z0-9-]+)\s+HASH\b/i.exec(line);
    if (header) {
      const name = header[1]!.toLowerCase().replace('-', '');
      algo = name === 'md5' || name === 'sha1' || name === 'sha512' ? name : undefined;
      continue;
    }
    if (line.startsWith('#') || !algo) continue;
    const m = /^([0-9A-Fa-f]+)\s+\*?(.+)$/.exec(line);
    if (!m || m[1]!.length !== HEX_LENGTH[algo]) continue;
    entries.push({ algorithm: algo, hex: m[1]!.toLowerCase(), file: m[2]!.trim() });
  }
  return entries;
}

/** The digest of one file (matched by base name); undefined when the file lists none. */
export function digestFor(entries: DigestEntry[], file: string, algorithm: DigestAlgorithm): string | undefined {
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return entries.find((e) => e.algorithm === algorithm && base(e.file) === base(file))?.hex;
}

/** Fetch the release's `.DIGESTS` and return the image's SHA-512. */
export async function fetchImageSha512(opts: {
  imageBaseUrl: string;
  location: ImageLocation;
  fetch?: FetchFn;
  signal?: AbortSignal;
}): Promise<{ sha512: string; url: string }> {
  const url = digestsUrl(opts.imageBaseUrl, opts.location);
  const text = await fetchText(opts.fetch ?? defaultFetch, url, {
    signal: opts.signal,
    what: `the image digests of Flatcar ${opts.location.version}`,
  });
  const sha512 = digestFor(parseDigests(text), PROXMOXVE_IMAGE_FILE, 'sha512');
  if (!sha512) {
    throw new RemoteError(`${url} has no SHA512 digest for ${PROXMOXVE_IMAGE_FILE}`, {
      fix: 'The release may not publish a Proxmox VE image for this architecture: pick another flatcar.version (flatcar-k3s versions).',
      detail: text.slice(0, 800),
    });
  }
  return { sha512, url };
}
