/**
 * The demo's k3s "internet": a channel server that redirects `stable` and `latest` to two different
 * release tags (as update.k3s.io does: latest is the newer), and both releases with a fake k3s binary
 * plus its correct sha256sum-amd64.txt, all served by the simulator's mirror on 127.0.0.1, so an
 * upgrade from one to the other can be tried. Returns the config overrides pointing at it. A mirror
 * without redirects gets the release files only, and the overrides pin the stable version.
 */
import { createHash } from 'node:crypto';

/** The demo's `stable` channel. */
export const DEMO_K3S_VERSION = 'v1.33.4+k3s1';
/** The demo's `latest` channel: a newer release, to upgrade to. */
export const DEMO_K3S_LATEST = 'v1.34.1+k3s1';

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

function putRelease(mirror: MirrorLike, version: string): void {
  const bin = demoK3sBinary(version);
  const sum = createHash('sha256').update(bin).digest('hex');
  // The mirror matches decoded paths: "+" is stored as is, requested as %2B.
  mirror.put(`/k3s-io/k3s/releases/tag/${version}`, `<html><body>k3s ${version} (demo mirror)</body></html>\n`, 'text/html');
  const dl = `/k3s-io/k3s/releases/download/${version}`;
  mirror.put(`${dl}/k3s`, bin);
  mirror.put(
    `${dl}/sha256sum-amd64.txt`,
    `${sum}  k3s\n${createHash('sha256').update('airgap-images').digest('hex')}  k3s-airgap-images-amd64.tar.zst\n`,
  );
}

/** `version` is what `stable` points at; `latest` points at DEMO_K3S_LATEST (or `version` when newer). */
export function fillK3sMirror(mirror: MirrorLike, version = DEMO_K3S_VERSION): K3sMirrorOverrides {
  const base = mirror.url.replace(/\/+$/, '');
  const latest = version === DEMO_K3S_VERSION ? DEMO_K3S_LATEST : version;
  for (const v of new Set([version, latest])) putRelease(mirror, v);
  const cluster: K3sMirrorOverrides['cluster'] = { k3sChannelUrl: `${base}/k3s-channels`, k3sReleaseUrl: `${base}/k3s-io/k3s/releases` };
  if (mirror.redirect) {
    const tag = (v: string) => `${base}/k3s-io/k3s/releases/tag/${encodeURIComponent(v)}`;
    mirror.redirect('/k3s-channels/stable', tag(version));
    mirror.redirect('/k3s-channels/latest', tag(latest));
  } else {
    cluster.k3sVersion = version;
  }
  return { cluster };
}
