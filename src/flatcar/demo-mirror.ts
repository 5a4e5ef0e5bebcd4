/**
 * Fills the demo's loopback mirror with what the template steps fetch: the real (sample) stable
 * feed, a small fake qcow2 for every version in it, and DIGESTS files with the fake image's real
 * md5/sha1/sha512, so the simulator's download-url verifies a true checksum.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vendorDir } from '../paths.js';
import { PROXMOXVE_IMAGE_FILE } from './image.js';
import { isVersion } from './releases.js';

export interface Mirror {
  url: string;
  put(path: string, data: string | Buffer): void;
}

/** The sample feed shipped with the package (a verbatim excerpt of flatcar.org's releases-stable.json). */
export function sampleFeedText(): string {
  return readFileSync(join(vendorDir(), 'flatcar', 'releases-stable-sample.json'), 'utf8');
}

const FAKE_IMAGE_BYTES = 4096;
/** What the real image reports as its virtual size (8.5 GiB). */
const VIRTUAL_SIZE = 8.5 * 1024 ** 3;

/** A qcow2 v3 header ('QFI\xfb', version 3, 64 KiB clusters, virtual size) padded to 4 KiB, unique per version. */
export function fakeQcow2(version: string): Buffer {
  const buf = Buffer.alloc(FAKE_IMAGE_BYTES);
  buf.write('QFI\xfb', 0, 'latin1');
  buf.writeUInt32BE(3, 4); // version
  buf.writeUInt32BE(16, 20); // cluster_bits
  buf.writeBigUInt64BE(BigInt(VIRTUAL_SIZE), 24); // size
  buf.writeUInt32BE(4, 96); // refcount_order
  buf.writeUInt32BE(104, 100); // header_length
  buf.write(`flatcar-k3s demo image for Flatcar ${version}\n`, 512, 'utf8');
  return buf;
}

export function digestsText(data: Buffer, file = PROXMOXVE_IMAGE_FILE): string {
  const h = (algo: string) => createHash(algo).update(data).digest('hex');
  return `# MD5 HASH\n${h('md5')}  ${file}\n# SHA1 HASH\n${h('sha1')}  ${file}\n# SHA512 HASH\n${h('sha512')}  ${file}\n`;
}

export function fillFlatcarMirror(mirror: Mirror): { flatcar: { feedBaseUrl: string; imageBaseUrl: string } } {
  const base = mirror.url.replace(/\/+$/, '');
  const feed = sampleFeedText();
  mirror.put('releases-json/releases-stable.json', feed);
  const versions = Object.keys(JSON.parse(feed) as Record<string, unknown>).filter(isVersion);
  for (const version of versions) {
    const dir = `flatcar/stable/amd64-usr/${version}`;
    const image = fakeQcow2(version);
    mirror.put(`${dir}/${PROXMOXVE_IMAGE_FILE}`, image);
    mirror.put(`${dir}/${PROXMOXVE_IMAGE_FILE}.DIGESTS`, digestsText(image));
    mirror.put(`${dir}/version.txt`, `FLATCAR_VERSION=${version}\n`);
  }
  return { flatcar: { feedBaseUrl: `${base}/releases-json`, imageBaseUrl: `${base}/flatcar/{channel}` } };
}
