/**
 * k3s releases: resolve a channel to a version (the way install.sh does: follow the channel's redirect,
 * take the last path segment), the release asset URLs (`+` encoded as %2B), the published sha256, and
 * the air-gapped download (fetched once here, verified, then uploaded to every node).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { RemoteError, UserError } from '../errors.js';
import { writeFileAtomicAsync } from '../store/atomic.js';

export const K3S_VERSION_RE = /^v\d+\.\d+\.\d+\+k3s\d+$/;

export type FetchFn = typeof fetch;

export function k3sAssetName(arch: 'amd64' | 'arm64'): string {
  return arch === 'amd64' ? 'k3s' : 'k3s-arm64';
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

export function k3sDownloadUrl(releaseUrl: string, version: string, arch: 'amd64' | 'arm64'): string {
  return `${trimSlash(releaseUrl)}/download/${encodeURIComponent(version)}/${k3sAssetName(arch)}`;
}

export function k3sChecksumsUrl(releaseUrl: string, version: string, arch: 'amd64' | 'arm64'): string {
  return `${trimSlash(releaseUrl)}/download/${encodeURIComponent(version)}/sha256sum-${arch}.txt`;
}

/** Resolve "stable"/"latest" via `<channelUrl>/<channel>` → redirect → last path segment. */
export async function resolveK3sVersion(
  channelUrl: string,
  channel: string,
  opts: { fetch?: FetchFn; signal?: AbortSignal } = {},
): Promise<string> {
  const f = opts.fetch ?? fetch;
  const url = `${trimSlash(channelUrl)}/${channel}`;
  let location: string | null = null;
  let current = url;
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await f(current, { redirect: 'manual', signal: opts.signal });
    } catch (err) {
      throw new RemoteError(`Cannot reach the k3s channel server at ${current}: ${(err as Error).message}`, {
        field: 'cluster.k3sChannelUrl',
        fix: 'Check the network from this machine, or pin a version with cluster.k3sVersion: v1.33.4+k3s1.',
        cause: err,
      });
    }
    await res.body?.cancel().catch(() => undefined);
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      location = new URL(loc, current).toString();
      const seg = decodeURIComponent(new URL(location).pathname.split('/').filter(Boolean).pop() ?? '');
      if (K3S_VERSION_RE.test(seg)) return seg;
      current = location;
      continue;
    }
    break;
  }
  throw new RemoteError(
    `The k3s channel "${channel}" at ${url} did not redirect to a release${location ? ` (last redirect: ${location})` : ''}`,
    {
      field: 'cluster.k3sVersion',
      fix: 'Pin a version with cluster.k3sVersion: v1.33.4+k3s1, or check cluster.k3sChannelUrl.',
    },
  );
}

/** Parse a sha256sum file and return the hash of `asset`. */
export function sha256FromChecksums(text: string, asset: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)\s*$/.exec(line.trim());
    if (m && m[2] === asset) return m[1];
  }
  return undefined;
}

export async function fetchK3sSha256(
  releaseUrl: string,
  version: string,
  arch: 'amd64' | 'arm64',
  opts: { fetch?: FetchFn; signal?: AbortSignal } = {},
): Promise<string> {
  const f = opts.fetch ?? fetch;
  const url = k3sChecksumsUrl(releaseUrl, version, arch);
  let res: Response;
  try {
    res = await f(url, { signal: opts.signal });
  } catch (err) {
    throw new RemoteError(`Cannot download ${url}: ${(err as Error).message}`, {
      field: 'cluster.k3sReleaseUrl',
      cause: err,
      fix: 'Check the network or cluster.k3sReleaseUrl.',
    });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new RemoteError(`k3s ${version}: ${url} answered HTTP ${res.status}`, {
      field: res.status === 404 ? 'cluster.k3sVersion' : 'cluster.k3sReleaseUrl',
      fix: res.status === 404 ? `Check that ${version} is a published k3s release.` : 'Check cluster.k3sReleaseUrl.',
    });
  }
  const sum = sha256FromChecksums(await res.text(), k3sAssetName(arch));
  if (!sum)
    throw new RemoteError(`k3s ${version}: ${url} lists no checksum for ${k3sAssetName(arch)}`, {
      fix: 'Check cluster.k3sReleaseUrl points at k3s releases.',
    });
  return sum;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Air-gap: download the binary once to `dest`, verify it, keep it (0755). Re-uses a verified file. */
export async function downloadK3sBinary(
  url: string,
  sha256: string,
  dest: string,
  opts: { fetch?: FetchFn; signal?: AbortSignal } = {},
): Promise<void> {
  try {
    if (sha256Hex(await readFile(dest)) === sha256) return;
  } catch {
    /* not there yet */
  }
  const f = opts.fetch ?? fetch;
  const res = await f(url, { signal: opts.signal }).catch((err: Error) => {
    throw new RemoteError(`Cannot download ${url}: ${err.message}`, { cause: err, fix: 'Check the network or cluster.k3sReleaseUrl.' });
  });
  if (!res.ok) throw new RemoteError(`${url} answered HTTP ${res.status}`, { fix: 'Check cluster.k3sVersion and cluster.k3sReleaseUrl.' });
  const data = Buffer.from(await res.arrayBuffer());
  const got = sha256Hex(data);
  if (got !== sha256) {
    throw new UserError(
      `The k3s binary from ${url} does not match its published sha256 (expected ${sha256}, got ${got}); it was not used`,
      {
        field: 'cluster.k3sReleaseUrl',
        fix: 'Check the mirror or proxy serving k3s releases; the download may be corrupted or tampered with.',
      },
    );
  }
  await writeFileAtomicAsync(dest, data, 0o755);
}
