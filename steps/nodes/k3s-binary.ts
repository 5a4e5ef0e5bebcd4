/**
 * node:<name>:k3s-binary: the verified k3s binary in /opt/bin (+ kubectl/crictl/ctr links), installed on
 * every node as soon as it is reachable, in parallel: the ordered part (first server, joins one at a
 * time) then only writes the config and starts k3s. Air-gapped, the binary is uploaded from here.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { installK3sBinary } from '../../src/k3s/install.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, withNode, type K3sReleaseOutputs } from './common.js';
import { recorded } from '../shared.js';
import { AIRGAP_IMAGES_DIR, airgapImageName, readAirgapImage } from '../../src/k3s/airgap-images.js';
import { RemoteError } from '../../src/errors.js';
import { sh } from '../../src/shell/quote.js';
import type { SshSession } from '../../src/ssh/types.js';
import { installedK3s, isNewer, newerFix, unitActive } from './upgrade.js';
import { unitName } from '../../src/k3s/install-script.js';

export function k3sBinaryStep(config: Config, node: PlannedNode, _options: RunOptions): Step {
  const c = config.cluster;
  const images = c.airgap ? c.airgapImages : [];

  /** Each archive, checked here, staged in core's home, moved into k3s's images dir, checked again there. */
  async function uploadImages(ctx: StepContext, s: SshSession): Promise<void> {
    for (const i of images) {
      const data = readAirgapImage(i);
      const name = airgapImageName(i.image);
      const staged = `/home/core/.${name}.part`;
      const target = `${AIRGAP_IMAGES_DIR}/${name}`;
      ctx.progress(`uploading the archive of ${i.image} (${Math.round(data.length / 1024)} KiB)`);
      await s.writeFile(staged, data, 0o600);
      await s.run(sh`sudo install -D -m 0600 ${staged} ${target}`, { signal: ctx.signal });
      await s.remove(staged);
      const have = (await s.exec(sh`sudo sha256sum ${target}`, { signal: ctx.signal })).stdout.split(/\s+/)[0];
      if (have !== i.sha256) {
        throw new RemoteError(
          `The archive of ${i.image} on ${node.name} has sha256 ${have || '(unreadable)'} after the upload, not ${i.sha256}`,
          {
            fix: 'Run "up" again (the upload is repeated); if it persists, check the disk of the node.',
          },
        );
      }
      ctx.log(`${i.image} is in ${target} on ${node.name} (sha256 ${i.sha256}); k3s imports it when it starts`);
    }
  }
  return {
    id: NODES_STEP.k3sBinary(node.name),
    title: 'Install the k3s binary',
    group: node.name,
    needs: [NODES_STEP.ssh(node.name), NODES_STEP.k3sRelease],
    inputs: { version: c.k3sVersion, airgap: c.airgap, images: images.map((i) => [i.image, i.sha256]) },
    describe: (ctx) => {
      const v = ctx.outputs<K3sReleaseOutputs>(NODES_STEP.k3sRelease)?.version ?? c.k3sVersion;
      const imgs = images.length
        ? `; image archives into ${AIRGAP_IMAGES_DIR}: ${images.map((i) => i.image).join(', ')} (sha256-checked)`
        : '';
      return `Put k3s ${v} in /opt/bin on ${node.name}${c.airgap ? ' (uploaded from here)' : ''}, checked against the release's sha256${imgs}`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const rel = recorded<K3sReleaseOutputs>(ctx, NODES_STEP.k3sRelease, 'k3s release');
      return withNode(ctx, node.name, async (s) => {
        const r = await s.exec('sha256sum /opt/bin/k3s', { signal: ctx.signal });
        const sum = r.code === 0 ? r.stdout.split(/\s+/)[0] : undefined;
        if (sum === rel.sha256) {
          for (const i of images) {
            const have = await s.exec(sh`sudo sha256sum ${`${AIRGAP_IMAGES_DIR}/${airgapImageName(i.image)}`}`, { signal: ctx.signal });
            if (have.code !== 0 || have.stdout.split(/\s+/)[0] !== i.sha256)
              return { done: false, reason: `the archive of ${i.image} is not on ${node.name}` };
          }
          return { done: true, outputs: { version: rel.version, sha256: rel.sha256 }, reason: `/opt/bin/k3s is k3s ${rel.version}` };
        }
        if (!sum) return { done: false };
        // Another k3s is in place: a newer one stays (never downgraded); an older one that runs is
        // replaced by the rolling upgrade (node:<name>:k3s-roll), after a drain, not here under it.
        const have = await installedK3s(s, ctx.signal);
        if (have && isNewer(have, rel.version)) {
          ctx.log(newerFix(node.name, have, rel.version), 'warn');
          return { done: true, outputs: { version: have, sha256: sum }, reason: `k3s ${have} is newer: left alone` };
        }
        if (have && (await unitActive(s, unitName(node.role), ctx.signal))) {
          return {
            done: true,
            outputs: { version: have, sha256: sum },
            reason: `k3s ${have} runs here: the rolling upgrade puts ${rel.version} in place`,
          };
        }
        return { done: false };
      });
    },
    async run(ctx: StepContext) {
      const rel = recorded<K3sReleaseOutputs>(ctx, NODES_STEP.k3sRelease, 'k3s release');
      await withNode(ctx, node.name, (s) =>
        installK3sBinary({
          session: s,
          label: node.name,
          version: rel.version,
          sha256: rel.sha256,
          url: rel.downloadUrl,
          ...(c.airgap ? { binary: readFileSync(rel.binaryPath!) } : {}),
          signal: ctx.signal,
          onLine: (line, stream) => (/^RESULT /.test(line) ? undefined : ctx.log(line, stream === 'stderr' ? 'warn' : 'info')),
        }),
      );
      if (images.length) await withNode(ctx, node.name, (s) => uploadImages(ctx, s));
      return { version: rel.version, sha256: rel.sha256 };
    },
  };
}
