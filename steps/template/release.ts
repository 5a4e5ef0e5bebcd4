/**
 * template:release: resolve the Flatcar version (a pinned one, or "current" once, then recorded) from
 * the releases feed (cached in the state dir for offline runs) and read the image's SHA-512 from the
 * release's DIGESTS file.
 */
import type { Config } from '../../src/config/schema.js';
import { describeFeedSource, loadReleases } from '../../src/flatcar/feed.js';
import type { FetchFn } from '../../src/flatcar/fetch.js';
import { digestsUrl, fetchImageSha512, imageUrl } from '../../src/flatcar/image.js';
import { resolveRelease } from '../../src/flatcar/releases.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { TEMPLATE_STEP, type ReleaseOutputs } from './common.js';

export interface TemplateDeps {
  /** HTTP for the feed and DIGESTS (tests inject; default global fetch). */
  fetch?: FetchFn;
}

export function releaseStep(config: Config, options: RunOptions, deps: TemplateDeps = {}): Step {
  const f = config.flatcar;
  return {
    id: TEMPLATE_STEP.release,
    title: 'Choose the Flatcar release',
    group: 'template',
    needs: [STEP.proxmoxConnect],
    inputs: { channel: f.channel, version: f.version, arch: f.arch, feedBaseUrl: f.feedBaseUrl, imageBaseUrl: f.imageBaseUrl },
    describe: (ctx) => {
      const what = `Flatcar ${f.channel} ${f.version === 'current' ? 'current (newest with a Proxmox VE image)' : f.version} for ${f.arch}, image checksum from its DIGESTS`;
      const prev = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
      if (!prev?.version || prev.requested === f.version) return what;
      // a new release: a new template next to the old one (docs/day2.md "Flatcar versions")
      return `${what}. The cluster's template is Flatcar ${prev.version}: the new release gets a new template next to it; the nodes that exist keep running (Flatcar updates them in place, kured reboots them) and new nodes are cloned from the new template`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const prev = ctx.outputs<ReleaseOutputs>(TEMPLATE_STEP.release);
      const same =
        prev?.sha512 &&
        prev.channel === f.channel &&
        prev.arch === f.arch &&
        prev.requested === f.version &&
        prev.imageUrl === imageUrl(f.imageBaseUrl, { channel: f.channel, version: prev.version, arch: f.arch });
      if (same && options.recreateTemplate && f.version === 'current')
        return { done: false, reason: '--recreate-template: resolving "current" again' };
      if (same) return { done: true, outputs: prev, reason: `Flatcar ${prev.version} (recorded)` };
      return { done: false };
    },
    async run(ctx: StepContext): Promise<ReleaseOutputs> {
      ctx.progress(`Reading the Flatcar ${f.channel} releases`);
      const feed = await loadReleases({
        channel: f.channel,
        feedBaseUrl: f.feedBaseUrl,
        stateDir: ctx.stateDir,
        fetch: deps.fetch,
        signal: ctx.signal,
        now: () => ctx.services.now(),
      });
      ctx.log(describeFeedSource(feed), feed.source === 'cache' ? 'warn' : 'info');
      const rel = resolveRelease(feed.releases, f.version, { channel: f.channel, arch: f.arch });
      const location = { channel: f.channel, version: rel.version, arch: f.arch };
      ctx.log(
        `Flatcar ${rel.version} (${f.channel}, released ${rel.releaseDate.slice(0, 10)}): kernel ${rel.kernel ?? '?'}, systemd ${rel.systemd ?? '?'}, Ignition ${rel.ignition ?? '?'}`,
      );
      ctx.progress(`Reading the checksum of Flatcar ${rel.version}`);
      const { sha512 } = await fetchImageSha512({ imageBaseUrl: f.imageBaseUrl, location, fetch: deps.fetch, signal: ctx.signal });
      ctx.log(`Image SHA-512 ${sha512.slice(0, 16)}… from ${digestsUrl(f.imageBaseUrl, location)}`);
      return {
        channel: f.channel,
        arch: f.arch,
        requested: f.version,
        version: rel.version,
        releaseDate: rel.releaseDate,
        kernel: rel.kernel,
        systemd: rel.systemd,
        ignition: rel.ignition,
        imageUrl: imageUrl(f.imageBaseUrl, location),
        digestsUrl: digestsUrl(f.imageBaseUrl, location),
        sha512,
      };
    },
  };
}
