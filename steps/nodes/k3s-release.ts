/**
 * k3s:release: pin the k3s version. "stable"/"latest" is resolved once (the channel server's redirect,
 * last path segment, as install.sh does) and recorded, so every node and every later run installs the
 * same release. The release's sha256 for the binary comes from its sha256sum-<arch>.txt. Air-gapped
 * (cluster.airgap): the binary is downloaded once to this machine, verified, and uploaded to each node.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../../src/config/schema.js';
import { downloadK3sBinary, fetchK3sSha256, k3sDownloadUrl, resolveK3sVersion, sha256Hex } from '../../src/k3s/release.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, type K3sReleaseOutputs } from './common.js';
import { k3sBinaryFile } from '../../src/store/layout.js';
import { checkAirgapImages } from '../../src/k3s/airgap-images.js';

export function k3sReleaseStep(config: Config, _options: RunOptions): Step {
  const c = config.cluster;
  const arch = config.flatcar.arch;
  const pinned = /^v/.test(c.k3sVersion) ? c.k3sVersion : undefined;
  return {
    id: NODES_STEP.k3sRelease,
    title: 'Pin the k3s release',
    group: 'k3s',
    needs: [],
    inputs: { version: c.k3sVersion, channelUrl: c.k3sChannelUrl, releaseUrl: c.k3sReleaseUrl, airgap: c.airgap, arch },
    describe: (ctx) => {
      const rec = ctx.outputs<K3sReleaseOutputs>(NODES_STEP.k3sRelease);
      const v = rec?.version ?? pinned;
      const what = v ? `k3s ${v}` : `the k3s "${c.k3sVersion}" channel (resolved once, then recorded)`;
      return `Use ${what}${c.airgap ? ', downloaded once here, verified and uploaded to each node (air-gapped)' : ', verified by sha256 on each node'}`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      checkAirgapImages(config);
      const rec = ctx.outputs<K3sReleaseOutputs>(NODES_STEP.k3sRelease);
      if (!rec?.version || !rec.sha256 || rec.requested !== c.k3sVersion || rec.arch !== arch) return { done: false };
      if (pinned && rec.version !== pinned) return { done: false };
      if (rec.downloadUrl !== k3sDownloadUrl(c.k3sReleaseUrl, rec.version, arch)) return { done: false };
      if (c.airgap) {
        if (!rec.binaryPath || !existsSync(rec.binaryPath) || sha256Hex(readFileSync(rec.binaryPath)) !== rec.sha256)
          return { done: false, reason: 'the air-gap binary is missing here' };
      } else if (rec.binaryPath) {
        return { done: true, outputs: { ...rec, binaryPath: undefined }, reason: `k3s ${rec.version}` };
      }
      return { done: true, outputs: rec, reason: `k3s ${rec.version} (recorded)` };
    },
    async run(ctx: StepContext): Promise<K3sReleaseOutputs> {
      checkAirgapImages(config);
      const rec = ctx.outputs<K3sReleaseOutputs>(NODES_STEP.k3sRelease);
      let version = pinned ?? (rec?.requested === c.k3sVersion && rec.arch === arch ? rec.version : undefined);
      if (!version) {
        ctx.progress(`resolving the k3s ${c.k3sVersion} channel`);
        version = await resolveK3sVersion(c.k3sChannelUrl, c.k3sVersion, { signal: ctx.signal });
        ctx.log(`k3s channel "${c.k3sVersion}" is ${version}; pinned for this cluster`);
      }
      ctx.progress(`reading the sha256 of k3s ${version}`);
      const sha256 = await fetchK3sSha256(c.k3sReleaseUrl, version, arch, { signal: ctx.signal });
      const downloadUrl = k3sDownloadUrl(c.k3sReleaseUrl, version, arch);
      const out: K3sReleaseOutputs = { requested: c.k3sVersion, version, arch, sha256, downloadUrl };
      if (c.airgap) {
        const dest = k3sBinaryFile(ctx.clusterDir, version, arch);
        ctx.progress(`downloading k3s ${version} for the air-gapped install`);
        await downloadK3sBinary(downloadUrl, sha256, dest, { signal: ctx.signal });
        ctx.log(`Downloaded and verified ${downloadUrl} → ${dest} (sha256 ${sha256})`);
        out.binaryPath = dest;
      }
      return out;
    },
  };
}
