/**
 * The demo's k3s "internet": a channel server that redirects `stable`/`latest` to a release tag (as
 * update.k3s.io does) and a release with a fake k3s binary plus its correct sha256sum-amd64.txt, all
 * served by the simulator's mirror on 127.0.0.1. Returns the config overrides pointing at it.
 * A mirror without redirects gets the release files only, and the overrides pin the version.
 */
import { createHash } from 'node:crypto';

export const DEMO_K3S_VERSION = 'v1.33.4+k3s1';

export interface MirrorLike {
  url: string;
  put(path: string, data: string | Buffer, contentType?: string): void;
  redirect?(path: string, location: string): void;
}

export interface K3sMirrorOverrides {
  cluster: { k3sChannelUrl: string; k3sReleaseUrl: string; k3sVersion?: string };
}

export function demoK3sBinary(version = DEMO_K3S_VERSION): Buffer {
  return Buffer.from(`#!/bin/sh\n# flatcar-k3s demo: stands in for the k3s ${version} binary\necho "k3s version ${version} (demo)"\n`);
}

export function fillK3sMirror(mirror: MirrorLike, version = DEMO_K3S_VERSION): K3sMirrorOverrides {
  const base = mirror.url.replace(/\/+$/, '');
  const bin = demoK3sBinary(version);
  const sum = createHash('sha256').update(bin).digest('hex');
  // The mirror matches decoded paths: "+" is stored as is, requested as %2B.
  const tagPath = `/k3s-io/k3s/releases/tag/${version}`;
  mirror.put(tagPath, `<html><body>k3s ${version} (demo mirror)</body></html>\n`, 'text/html');
  const dl = `/k3s-io/k3s/releases/download/${version}`;
  mirror.put(`${dl}/k3s`, bin);
  mirror.put(`${dl}/sha256sum-amd64.txt`, `${sum}  k3s\n${createHash('sha256').update('airgap-images').digest('hex')}  k3s-airgap-images-amd64.tar.zst\n`);
  const cluster: K3sMirrorOverrides['cluster'] = { k3sChannelUrl: `${base}/k3s-channels`, k3sReleaseUrl: `${base}/k3s-io/k3s/releases` };
  if (mirror.redirect) {
    for (const channel of ['stable', 'latest']) mirror.redirect(`/k3s-channels/${channel}`, `${base}/k3s-io/k3s/releases/tag/${encodeURIComponent(version)}`);
  } else {
    cluster.k3sVersion = version;
  }
  return { cluster };
}
