import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseReleasesFeed, resolveRelease, compareVersions, proxmoxReleases } from '../src/flatcar/releases.js';
import { loadReleases, describeFeedSource, formatAge } from '../src/flatcar/feed.js';
import { feedCacheFile } from '../src/store/layout.js';
import {
  parseDigests,
  digestFor,
  imageUrl,
  digestsUrl,
  importFileName,
  isoFileName,
  fetchImageSha512,
  PROXMOXVE_IMAGE_FILE,
} from '../src/flatcar/image.js';
import { fillFlatcarMirror } from '../src/flatcar/demo-mirror.js';
import { RemoteError, UserError } from '../src/errors.js';

const SAMPLE = readFileSync(new URL('./fixtures/flatcar-releases-sample.json', import.meta.url), 'utf8');
const FULL = readFileSync(new URL('../../shared/reference/flatcar-releases-stable.json', import.meta.url), 'utf8');

/** Loopback server: path → body; records every request path. */
let server: Server;
let base = '';
const files = new Map<string, string | Buffer>();
const hits: string[] = [];
let tmp = '';

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'flatcar-test-'));
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  files.set('/releases-json/releases-stable.json', SAMPLE);
  files.set('/full/releases-stable.json', FULL);
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(tmp, { recursive: true, force: true });
});

test('sample feed: aliases dropped, old 1688.5.3 shape parsed, newest first, current resolves to the newest', () => {
  const releases = parseReleasesFeed(JSON.parse(SAMPLE));
  assert.deepEqual(
    releases.map((r) => r.version),
    ['4593.2.5', '4593.2.4', '4593.2.3', '1688.5.3'],
  );
  const old = releases.find((r) => r.version === '1688.5.3')!;
  assert.deepEqual(old.architectures, ['amd64']);
  assert.equal(old.kernel, '4.14.32');
  assert.equal(old.systemd, '237');
  assert.equal(old.ignition, '0.22.0');
  assert.equal(old.releaseDate, '2018-04-25T14:36:41Z');
  assert.equal(old.proxmoxImage, false);
  const newest = releases[0]!;
  assert.equal(newest.kernel, '6.12.102');
  assert.equal(newest.ignition, '2.24.0');
  assert.equal(newest.systemd, '257');
  assert.equal(newest.proxmoxImage, true);
  const current = JSON.parse(SAMPLE).current as { release_date: string };
  assert.equal(resolveRelease(releases, 'current', { channel: 'stable' }).version, '4593.2.5');
  assert.equal(
    newest.releaseDate,
    new Date(current.release_date.replace(' +0000', 'Z').replace(' ', 'T')).toISOString().replace('.000Z', 'Z'),
  );
  assert.deepEqual(
    proxmoxReleases(releases).map((r) => r.version),
    ['4593.2.5', '4593.2.4', '4593.2.3'],
  );
});

test('LTS-style alias keys ("current-2024") are not versions', () => {
  const doc = JSON.parse(SAMPLE) as Record<string, unknown>;
  const lts = {
    'current-2023': doc['1688.5.3'],
    '4593.2.4': doc['4593.2.4'],
    'current-2024': doc['4593.2.4'],
    current: doc['4593.2.4'],
    '4152.2.10': doc['4593.2.3'],
  };
  const releases = parseReleasesFeed(lts);
  assert.deepEqual(
    releases.map((r) => r.version),
    ['4593.2.4', '4152.2.10'],
  );
  assert.equal(compareVersions('4152.2.10', '4152.2.9') > 0, true); // numeric, not lexical
});

test('resolveRelease: pinned versions must exist and have the Proxmox image', () => {
  const releases = parseReleasesFeed(JSON.parse(SAMPLE));
  assert.equal(resolveRelease(releases, '4593.2.3', { channel: 'stable' }).version, '4593.2.3');
  assert.throws(
    () => resolveRelease(releases, '1688.5.3', { channel: 'stable' }),
    (e: unknown) => e instanceof UserError && /no Proxmox VE image/.test(e.message) && /4593\.2\.5/.test(e.fix ?? ''),
  );
  assert.throws(
    () => resolveRelease(releases, '9999.0.0', { channel: 'stable' }),
    (e: unknown) => e instanceof UserError && e.field === 'flatcar.version',
  );
  assert.throws(() => resolveRelease(releases, 'current', { channel: 'stable', arch: 'riscv' }), UserError);
});

test('the full stable feed over loopback HTTP: every key but "current" is a version, sorted numerically', async () => {
  const r = await loadReleases({ channel: 'stable', feedBaseUrl: `${base}/full/`, stateDir: undefined });
  const doc = JSON.parse(FULL) as Record<string, unknown>;
  assert.equal(r.releases.length, Object.keys(doc).length - 1);
  for (let i = 1; i < r.releases.length; i++) assert.ok(compareVersions(r.releases[i - 1]!.version, r.releases[i]!.version) > 0);
  assert.equal(r.releases.at(-1)!.version, '1688.5.3');
  const usable = proxmoxReleases(r.releases);
  assert.ok(usable.length > 0 && usable.every((x) => Number(x.version.split('.')[0]) >= 4152));
  assert.equal(usable.at(-1)!.version.split('.')[0], '4152');
  assert.equal(resolveRelease(r.releases, 'current', { channel: 'stable' }).version, '4593.2.5');
});

test('feed cache: written with the fetch time, used offline with its age, network error without cache fails clearly', async () => {
  const stateDir = join(tmp, 'state');
  let clock = Date.parse('2026-09-01T10:00:00Z');
  const now = () => clock;
  const online = await loadReleases({ channel: 'stable', feedBaseUrl: `${base}/releases-json`, stateDir, now });
  assert.equal(online.source, 'network');
  const cacheFile = feedCacheFile(stateDir, 'stable');
  assert.equal(cacheFile, join(stateDir, 'cache', 'flatcar-releases-stable.json'));
  const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { fetchedAt: number; url: string };
  assert.equal(cached.fetchedAt, clock);
  assert.equal(cached.url, `${base}/releases-json/releases-stable.json`);

  clock += 3 * 3600_000;
  const offlineFetch = async (): Promise<Response> => {
    throw new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND www.flatcar.org') });
  };
  const offline = await loadReleases({
    channel: 'stable',
    feedBaseUrl: 'https://www.flatcar.org/releases-json',
    stateDir,
    now,
    fetch: offlineFetch,
  });
  assert.equal(offline.source, 'cache');
  assert.equal(offline.ageMs, 3 * 3600_000);
  assert.deepEqual(
    offline.releases.map((r) => r.version),
    online.releases.map((r) => r.version),
  );
  const line = describeFeedSource(offline);
  assert.match(line, /from the cache \(fetched 3 h ago/);
  assert.match(line, /ENOTFOUND/);

  // HTTP 404 from a (wrong) mirror also falls back to the cache
  const via404 = await loadReleases({ channel: 'stable', feedBaseUrl: `${base}/nowhere`, stateDir, now });
  assert.equal(via404.source, 'cache');
  assert.match(via404.offlineReason ?? '', /HTTP 404/);

  await assert.rejects(
    loadReleases({ channel: 'beta', feedBaseUrl: `${base}/nowhere`, stateDir, now }),
    (e: unknown) => e instanceof RemoteError && /HTTP 404/.test(e.message) && !!e.fix,
  );
  assert.equal(existsSync(feedCacheFile(stateDir, 'beta')), false);
  assert.equal(formatAge(50_000), '50 s');
  assert.equal(formatAge(3 * 86400_000), '3 days');
});

test('a feed that is not JSON or not a feed is reported, not cached', async () => {
  files.set('/bad/releases-alpha.json', '<html>captive portal</html>');
  files.set('/bad/releases-beta.json', '[1,2]');
  const stateDir = join(tmp, 'state-bad');
  await assert.rejects(loadReleases({ channel: 'alpha', feedBaseUrl: `${base}/bad`, stateDir }), /not JSON/);
  await assert.rejects(loadReleases({ channel: 'beta', feedBaseUrl: `${base}/bad`, stateDir }), /not a Flatcar releases feed/);
  assert.equal(existsSync(join(stateDir, 'cache')), false);
});

const REAL_STYLE_DIGESTS = `# MD5 HASH
0f343b0931126a20f133d67c2b018a3b  flatcar_production_proxmoxve_image.img
# SHA1 HASH
da39a3ee5e6b4b0d3255bfef95601890afd80709  flatcar_production_proxmoxve_image.img
# SHA512 HASH
${'ab'.repeat(64)}  flatcar_production_proxmoxve_image.img
`;

test('DIGESTS parsing: the three blocks, CRLF, other files, malformed lines', () => {
  const entries = parseDigests(REAL_STYLE_DIGESTS);
  assert.equal(entries.length, 3);
  assert.equal(digestFor(entries, PROXMOXVE_IMAGE_FILE, 'sha512'), 'ab'.repeat(64));
  assert.equal(digestFor(entries, PROXMOXVE_IMAGE_FILE, 'md5'), '0f343b0931126a20f133d67c2b018a3b');
  const messy = [
    '# MD5 HASH',
    'zzzz  broken line',
    '0f343b0931126a20f133d67c2b018a3b  flatcar_production_proxmoxve_image.img.bz2',
    '',
    '# SHA512 HASH',
    `${'CD'.repeat(64)} *flatcar_production_proxmoxve_image.img.bz2`,
    `${'ef'.repeat(63)}  flatcar_production_proxmoxve_image.img`, // too short: ignored
    `${'EF'.repeat(64)}  ./flatcar_production_proxmoxve_image.img`,
    '# SOMETHING ELSE HASH',
    `${'11'.repeat(64)}  flatcar_production_proxmoxve_image.img`,
  ].join('\r\n');
  const m = parseDigests(messy);
  assert.equal(digestFor(m, PROXMOXVE_IMAGE_FILE, 'sha512'), 'ef'.repeat(64));
  assert.equal(digestFor(m, `${PROXMOXVE_IMAGE_FILE}.bz2`, 'sha512'), 'cd'.repeat(64));
  assert.equal(digestFor(m, PROXMOXVE_IMAGE_FILE, 'md5'), undefined);
});

test('image URL, digests URL and storage file names', () => {
  const loc = { channel: 'stable', version: '4593.2.5', arch: 'amd64' };
  assert.equal(
    imageUrl('https://{channel}.release.flatcar-linux.net', loc),
    'https://stable.release.flatcar-linux.net/amd64-usr/4593.2.5/flatcar_production_proxmoxve_image.img',
  );
  assert.equal(
    digestsUrl('https://mirror.lan/flatcar/{channel}/', { ...loc, channel: 'beta', arch: 'arm64' }),
    'https://mirror.lan/flatcar/beta/arm64-usr/4593.2.5/flatcar_production_proxmoxve_image.img.DIGESTS',
  );
  assert.equal(importFileName('stable', '4593.2.5'), 'flatcar-stable-4593.2.5-proxmoxve.qcow2');
  assert.match(importFileName('stable', '4593.2.5'), /^[A-Za-z0-9.+=_-]+\.(ova|qcow2|raw|vmdk)$/); // PVE's import filename pattern
  assert.equal(isoFileName('lts', '4081.3.6'), 'flatcar-lts-4081.3.6-proxmoxve.img');
});

test('fetchImageSha512 over loopback; a DIGESTS without the image fails with a fix', async () => {
  const loc = { channel: 'stable', version: '4593.2.5', arch: 'amd64' };
  files.set(`/img/stable/amd64-usr/4593.2.5/${PROXMOXVE_IMAGE_FILE}.DIGESTS`, REAL_STYLE_DIGESTS);
  const r = await fetchImageSha512({ imageBaseUrl: `${base}/img/{channel}`, location: loc });
  assert.equal(r.sha512, 'ab'.repeat(64));
  files.set(`/img/stable/amd64-usr/4593.2.4/${PROXMOXVE_IMAGE_FILE}.DIGESTS`, '# SHA512 HASH\n');
  await assert.rejects(
    fetchImageSha512({ imageBaseUrl: `${base}/img/{channel}`, location: { ...loc, version: '4593.2.4' } }),
    (e: unknown) => e instanceof RemoteError && /no SHA512 digest/.test(e.message) && !!e.fix,
  );
  await assert.rejects(fetchImageSha512({ imageBaseUrl: `${base}/img/{channel}`, location: { ...loc, version: '4593.2.3' } }), /HTTP 404/);
});

test('demo mirror: the sample feed, a fake qcow2 per version and correct DIGESTS', async () => {
  const put = new Map<string, string | Buffer>();
  const overrides = fillFlatcarMirror({ url: `${base}/mirror`, put: (p, d) => put.set(p, d) });
  for (const [p, d] of put) files.set(`/mirror/${p.replace(/^\/+/, '')}`, d);
  const feed = await loadReleases({ channel: 'stable', feedBaseUrl: overrides.flatcar.feedBaseUrl });
  assert.deepEqual(
    feed.releases.map((r) => r.version),
    parseReleasesFeed(JSON.parse(SAMPLE)).map((r) => r.version),
  );
  for (const rel of proxmoxReleases(feed.releases)) {
    const loc = { channel: 'stable', version: rel.version, arch: 'amd64' };
    const url = imageUrl(overrides.flatcar.imageBaseUrl, loc);
    const res = await fetch(url);
    assert.equal(res.status, 200, url);
    const img = Buffer.from(await res.arrayBuffer());
    assert.deepEqual([...img.subarray(0, 4)], [0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"
    assert.ok(img.length >= 1024 && img.length <= 64 * 1024);
    const { sha512 } = await fetchImageSha512({ imageBaseUrl: overrides.flatcar.imageBaseUrl, location: loc });
    assert.equal(sha512, createHash('sha512').update(img).digest('hex'));
    const digests = parseDigests(await (await fetch(`${url}.DIGESTS`)).text());
    assert.equal(digestFor(digests, PROXMOXVE_IMAGE_FILE, 'md5'), createHash('md5').update(img).digest('hex'));
    assert.equal(digestFor(digests, PROXMOXVE_IMAGE_FILE, 'sha1'), createHash('sha1').update(img).digest('hex'));
  }
  assert.ok(hits.some((h) => h === '/mirror/releases-json/releases-stable.json'));
});
