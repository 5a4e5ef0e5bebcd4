/**
 * template:image: Proxmox downloads the Flatcar image itself (download-url) and verifies its SHA-512.
 * PVE >= 8.4: into `import` content as flatcar-<channel>-<version>-proxmoxve.qcow2.
 * PVE < 8.4: `import` does not take downloads; with a root@pam password login the image goes to `iso`
 * content as .img and the VM imports it by absolute path; otherwise a clear refusal with the fallback.
 */
import type { Config } from '../../src/config/schema.js';
import { RemoteError, UserError } from '../../src/errors.js';
import { importFileName, isoFileName } from '../../src/flatcar/image.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import {
  IMPORT_CONTENT_SINCE,
  TEMPLATE_STEP,
  isRootPamTicket,
  missingContentError,
  progressFromLog,
  releaseOf,
  storageContentTypes,
  templateHost,
  versionAtLeast,
  type ImageOutputs,
  type ReleaseOutputs,
} from './common.js';
import { facts } from '../shared.js';

interface Plan {
  mode: 'import' | 'iso';
  content: 'import' | 'iso';
  file: string;
  volid: string;
}

function plan(config: Config, rel: ReleaseOutputs, pveVersion: string): Plan {
  const storage = config.proxmox.storage.images;
  if (versionAtLeast(pveVersion, IMPORT_CONTENT_SINCE)) {
    const file = importFileName(rel.channel, rel.version);
    return { mode: 'import', content: 'import', file, volid: `${storage}:import/${file}` };
  }
  const file = isoFileName(rel.channel, rel.version);
  return { mode: 'iso', content: 'iso', file, volid: `${storage}:iso/${file}` };
}

function oldPveRefusal(config: Config, rel: ReleaseOutputs, pveVersion: string): UserError {
  const iso = isoFileName(rel.channel, rel.version);
  return new UserError(
    `Proxmox VE ${pveVersion} cannot download the Flatcar image into 'import' content: that needs Proxmox VE ${IMPORT_CONTENT_SINCE} or newer. ` +
      `On older versions a VM can import a disk only from an absolute path, which Proxmox allows for root@pam logged in with its password (not for API tokens).`,
    {
      field: 'proxmox.url',
      fix:
        `Upgrade the PVE host to ${IMPORT_CONTENT_SINCE} or newer (apt update && apt full-upgrade), or run once with proxmox.username: root@pam and proxmox.password (PROXMOX_VE_USERNAME/PROXMOX_VE_PASSWORD) instead of the token. ` +
        `Manual fallback on the PVE host: wget -O /var/lib/vz/template/iso/${iso} ${rel.imageUrl}, check it with sha512sum against ${rel.digestsUrl}, then qm disk import <vmid> /var/lib/vz/template/iso/${iso} ${config.proxmox.storage.disks}.`,
    },
  );
}

export function imageStep(config: Config, _options: RunOptions): Step {
  const storage = config.proxmox.storage.images;
  return {
    id: TEMPLATE_STEP.image,
    title: 'Download the Flatcar image to Proxmox',
    group: 'template',
    needs: [STEP.proxmoxConnect, TEMPLATE_STEP.release],
    lane: 'pve-download',
    inputs: { storage, channel: config.flatcar.channel, version: config.flatcar.version, arch: config.flatcar.arch },
    describe: (ctx) => {
      const rel = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
      return `Proxmox downloads ${rel ? `Flatcar ${rel.version}` : 'the Flatcar Proxmox VE image'} into storage ${storage} and verifies its SHA-512 (skipped when present)`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const rel = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
      if (!rel?.sha512) return { done: false };
      const f = facts(ctx);
      const p = plan(config, rel, f.pveVersion);
      const pve = await ctx.services.proxmox();
      const node = templateHost(ctx);
      let volumes;
      try {
        volumes = await pve.storageContent(node, storage, p.content);
      } catch {
        return { done: false, reason: `cannot list ${storage} on ${node}` };
      }
      if (!volumes.some((v) => v.volid === p.volid)) return { done: false };
      const importFrom = p.mode === 'import' ? p.volid : await isoPath(ctx, p.file);
      return {
        done: true,
        outputs: { volid: p.volid, mode: p.mode, importFrom } satisfies ImageOutputs,
        reason: `${p.volid} is already on ${node}`,
      };
    },
    async run(ctx: StepContext): Promise<ImageOutputs> {
      const rel = releaseOf(ctx);
      const f = facts(ctx);
      const node = templateHost(ctx);
      const p = plan(config, rel, f.pveVersion);
      if (p.mode === 'iso') {
        if (!isRootPamTicket(config)) throw oldPveRefusal(config, rel, f.pveVersion);
        ctx.log(
          `Proxmox VE ${f.pveVersion} predates ${IMPORT_CONTENT_SINCE}: downloading to '${storage}' as ISO content and importing by absolute path (allowed for root@pam)`,
          'warn',
        );
      }
      const pve = await ctx.services.proxmox();
      const content = await storageContentTypes(pve, node, storage, 'proxmox.storage.images');
      if (!content.includes(p.content)) {
        throw missingContentError(
          storage,
          p.content,
          content,
          'proxmox.storage.images',
          p.mode === 'import'
            ? 'the Flatcar image is downloaded there as a disk image to import'
            : 'the Flatcar image is downloaded there on Proxmox VE before 8.4',
        );
      }
      const existing = await pve.storageContent(node, storage, p.content);
      if (!existing.some((v) => v.volid === p.volid)) {
        ctx.log(`Proxmox ${node} downloads ${rel.imageUrl} → ${p.volid} (SHA-512 verified by Proxmox)`);
        ctx.progress(`Downloading Flatcar ${rel.version}`, 0);
        const upid = await pve.downloadUrl(node, storage, {
          url: rel.imageUrl,
          content: p.content,
          filename: p.file,
          checksum: rel.sha512,
          'checksum-algorithm': 'sha512',
        });
        try {
          await pve.waitTask(node, upid, { signal: ctx.signal, onLog: progressFromLog(ctx, `Downloading Flatcar ${rel.version}`) });
        } catch (err) {
          throw explainDownloadFailure(err, rel, node);
        }
        const after = await pve.storageContent(node, storage, p.content);
        if (!after.some((v) => v.volid === p.volid)) {
          throw new RemoteError(`The download task finished but ${p.volid} is not listed on ${node}`, {
            fix: `Look at the download task in the Proxmox UI (${node} → Task History) and the storage ${storage}, then run again.`,
          });
        }
      }
      return { volid: p.volid, mode: p.mode, importFrom: p.mode === 'import' ? p.volid : await isoPath(ctx, p.file) };
    },
  };

  async function isoPath(ctx: StepContext, file: string): Promise<string> {
    const sc = await (await ctx.services.proxmox()).storageConfig(storage);
    if (!sc.path) {
      throw new UserError(
        `Storage '${storage}' has no filesystem path, so the image cannot be imported by path on Proxmox VE before ${IMPORT_CONTENT_SINCE}`,
        {
          field: 'proxmox.storage.images',
          fix: `Use a directory storage (e.g. local) for proxmox.storage.images, or upgrade Proxmox VE to ${IMPORT_CONTENT_SINCE}.`,
        },
      );
    }
    return `${sc.path.replace(/\/+$/, '')}/template/iso/${file}`;
  }
}

function explainDownloadFailure(err: unknown, rel: ReleaseOutputs, node: string): unknown {
  if (!(err instanceof RemoteError)) return err;
  const text = `${err.message}\n${err.detail ?? ''}`;
  if (/checksum/i.test(text)) {
    return new RemoteError(
      `The Flatcar ${rel.version} image Proxmox downloaded does not match its SHA-512 (checksum mismatch); Proxmox discarded it`,
      {
        fix: `The file at ${rel.imageUrl} differs from ${rel.digestsUrl}: a broken mirror, proxy or transfer. Run again; if it persists, check flatcar.imageBaseUrl or try another release.`,
        detail: err.detail,
        cause: err,
      },
    );
  }
  return new RemoteError(`Proxmox ${node} could not download ${rel.imageUrl}: ${err.message}`, {
    fix: `The PVE host itself fetches the image: check that ${node} reaches ${new URL(rel.imageUrl).host} (DNS, proxy, firewall), or set flatcar.imageBaseUrl to a mirror it can reach; then run again.`,
    detail: err.detail,
    cause: err,
  });
}
