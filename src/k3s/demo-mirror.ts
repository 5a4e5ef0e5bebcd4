/**
 * The demo's k3s "internet": a channel server that redirects `stable`/`latest` to a release tag (as
 * update.k3s.io does) and a release with a fake k3s binary plus its correct sha256sum-amd64.txt, all
 * served by the simulator's mirror on 127.0.0.1. Returns the config overrides pointing at it.
 */
import { createHash } from 'node:crypto';

export const DEMO_K3S_VERSION = 'v1.33.4+k3s1';

export interface MirrorLike {
  url: string;
  put(path: string, data: string | Buffer, opts?: { redirect?: string; contentType?: string }): void;
}

export function demoK3sBinary(version = DEMO_K3S_VERSION): Buffer {
  return Buffer.from(`#!/bin/sh\n# flatcar-k3s demo: stands in for the k3s ${version} binary\necho "k3s version ${version} (demo)"\n`);
}

export function fillK3sMirror(mirror: MirrorLike, version = DEMO_K3S_VERSION): { cluster: { k3sChannelUrl: string; k3sReleaseUrl: string } } {
  const base = mirror.url.replace(/\/+$/, '');
  const bin = demoK3sBinary(version);
  const sum = createHash('sha256').update(bin).digest('hex');
  const tagPath = `/k3s-io/k3s/releases/tag/${encodeURIComponent(version)}`;
  for (const channel of ['stable', 'latest', 'v1.33']) mirror.put(`/k3s-channels/${channel}`, '', { redirect: `${base}${tagPath}` });
  mirror.put(tagPath, `<html><body>k3s ${version} (demo mirror)</body></html>\n`, { contentType: 'text/html' });
  const dl = `/k3s-io/k3s/releases/download/${encodeURIComponent(version)}`;
  mirror.put(`${dl}/k3s`, bin);
  mirror.put(`${dl}/sha256sum-amd64.txt`, `${sum}  k3s\n${createHash('sha256').update('airgap').digest('hex')}  k3s-airgap-images-amd64.tar.zst\n`);
  return { cluster: { k3sChannelUrl: `${base}/k3s-channels`, k3sReleaseUrl: `${base}/k3s-io/k3s/releases` } };
}
