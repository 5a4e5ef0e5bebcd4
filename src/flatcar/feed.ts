/**
 * Fetching the releases feed with a cache in the state dir: `<stateDir>/cache/flatcar-releases-<channel>.json`
 * holds the raw feed and its fetch time. Offline, the cache answers and says how old it is.
 */
import { readFileSync } from 'node:fs';
import { RemoteError, UserError } from '../errors.js';
import { writeFileAtomic } from '../store/atomic.js';
import { feedCacheFile } from '../store/layout.js';
import { defaultFetch, fetchText, type FetchFn } from './fetch.js';
import { parseReleasesFeed, type FlatcarRelease } from './releases.js';

export interface FeedResult {
  channel: string;
  url: string;
  /** Every release in the feed, newest first. */
  releases: FlatcarRelease[];
  source: 'network' | 'cache';
  /** Epoch ms of the fetch that produced these data. */
  fetchedAt: number;
  /** How old the data are (0 when just fetched). */
  ageMs: number;
  /** Why the network was not used (only for source "cache"). */
  offlineReason?: string;
}

export interface FeedOptions {
  channel: string;
  feedBaseUrl: string;
  /** Cache directory root; no caching when undefined. */
  stateDir?: string;
  fetch?: FetchFn;
  signal?: AbortSignal;
  now?: () => number;
  timeoutMs?: number;
}

interface CacheFile {
  fetchedAt: number;
  url: string;
  feed: unknown;
}

export function feedUrl(feedBaseUrl: string, channel: string): string {
  return `${feedBaseUrl.replace(/\/+$/, '')}/releases-${channel}.json`;
}

export async function loadReleases(opts: FeedOptions): Promise<FeedResult> {
  const now = opts.now ?? Date.now;
  const url = feedUrl(opts.feedBaseUrl, opts.channel);
  let text: string;
  try {
    text = await fetchText(opts.fetch ?? defaultFetch, url, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      what: `the Flatcar ${opts.channel} releases feed`,
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    const cached = opts.stateDir ? readCache(opts.stateDir, opts.channel) : undefined;
    if (!cached) throw err;
    const t = now();
    return {
      channel: opts.channel,
      url: cached.url,
      releases: parseReleasesFeed(cached.feed, `The cached ${opts.channel} feed`),
      source: 'cache',
      fetchedAt: cached.fetchedAt,
      ageMs: Math.max(0, t - cached.fetchedAt),
      offlineReason: err instanceof Error ? err.message : String(err),
    };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RemoteError(`The releases feed at ${url} is not JSON`, {
      fix: 'Check flatcar.feedBaseUrl (a proxy or captive portal may have answered instead).',
    });
  }
  const releases = parseReleasesFeed(doc, `The feed at ${url}`);
  const fetchedAt = now();
  if (opts.stateDir) writeCache(opts.stateDir, opts.channel, { fetchedAt, url, feed: doc });
  return { channel: opts.channel, url, releases, source: 'network', fetchedAt, ageMs: 0 };
}

function readCache(stateDir: string, channel: string): CacheFile | undefined {
  try {
    const c = JSON.parse(readFileSync(feedCacheFile(stateDir, channel), 'utf8')) as Partial<CacheFile>;
    if (typeof c.fetchedAt !== 'number' || typeof c.url !== 'string' || c.feed === undefined) return undefined;
    return c as CacheFile;
  } catch {
    return undefined;
  }
}

function writeCache(stateDir: string, channel: string, data: CacheFile): void {
  const file = feedCacheFile(stateDir, channel);
  try {
    writeFileAtomic(file, JSON.stringify(data), 0o644);
  } catch (err) {
    throw new UserError(`Cannot write the releases cache ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      fix: 'Make the state directory writable.',
      cause: err,
    });
  }
}

/** "3 h", "2 days", "5 min", "40 s". */
export function formatAge(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}

/** One line for logs: where the list came from and, offline, how old it is. */
export function describeFeedSource(r: FeedResult): string {
  if (r.source === 'network') return `Flatcar ${r.channel} releases from ${r.url}`;
  return `Flatcar ${r.channel} releases from the cache (fetched ${formatAge(r.ageMs)} ago, ${new Date(r.fetchedAt).toISOString()}): the feed could not be fetched: ${r.offlineReason ?? 'offline'}`;
}
