/**
 * Air-gapped image archives: k3s imports every archive in /var/lib/rancher/k3s/agent/images/ into its
 * containerd when it starts, so images that no registry can serve are put there before k3s starts. Each
 * archive comes from this machine (cluster.airgapImages: the image, the file, its sha256), is checked
 * against its sha256 here and again on the node, and kube-vip's is required when the cluster has a VIP
 * (without it the VIP never comes up).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { KUBE_VIP_IMAGE } from './kube-vip.js';
import { sha256Hex } from './release.js';

export const AIRGAP_IMAGES_DIR = '/var/lib/rancher/k3s/agent/images';

export interface AirgapImage {
  image: string;
  file: string;
  sha256: string;
}

/** The images an air-gapped cluster must carry, each with why (the ones flatcar-k3s itself deploys). */
export function neededAirgapImages(config: Config): Array<{ image: string; why: string }> {
  if (!config.cluster.airgap) return [];
  return config.nodes.vip ? [{ image: KUBE_VIP_IMAGE, why: `kube-vip announces the VIP ${config.nodes.vip}` }] : [];
}

/** The archive's name on the node: the image reference made file-safe, so each image has one file. */
export function airgapImageName(image: string): string {
  return `flatcar-k3s-${image.replace(/[^A-Za-z0-9._-]+/g, '_')}.tar`;
}

/** How to make an archive of an image on a machine with registry access (for error messages and docs). */
export function archiveCommand(image: string): string {
  const file = `${image
    .split('/')
    .pop()!
    .replace(/[:@].*$/, '')}.tar`;
  return `skopeo copy docker://${image} docker-archive:${file}:${image} && sha256sum ${file}`;
}

/** Refuse an air-gapped config that lacks a needed image archive, naming the image and how to make it. */
export function checkAirgapImages(config: Config): void {
  for (const need of neededAirgapImages(config)) {
    if (config.cluster.airgapImages.some((i) => i.image === need.image)) continue;
    throw new UserError(
      `cluster.airgapImages has no archive of ${need.image}, which this air-gapped cluster needs (${need.why}): no registry can serve it`,
      {
        field: 'cluster.airgapImages',
        fix: `Where a registry is reachable: ${archiveCommand(need.image)}; then add { image: ${need.image}, file: <the .tar>, sha256: <its sha256> } to cluster.airgapImages.`,
      },
    );
  }
}

/** Read an archive and check it against its sha256 (here, before it goes anywhere). */
export function readAirgapImage(i: AirgapImage): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(i.file);
  } catch (err) {
    throw new UserError(
      `Cannot read the image archive ${i.file} of ${i.image}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        field: 'cluster.airgapImages',
        fix: `Check the path, or make it again: ${archiveCommand(i.image)}`,
      },
    );
  }
  const sum = sha256Hex(data);
  if (sum !== i.sha256) {
    throw new UserError(`The image archive ${i.file} of ${i.image} has sha256 ${sum}, not the ${i.sha256} the config names`, {
      field: 'cluster.airgapImages',
      fix: 'Use the archive you checked (sha256sum FILE), or correct the sha256 if you replaced it on purpose.',
    });
  }
  return data;
}
