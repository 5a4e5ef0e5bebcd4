/**
 * `flatcar-k3s versions [--channel C] [--config FILE]`: the Flatcar releases that have a Proxmox VE
 * image, newest first, from Flatcar's feed (or, offline, the cache in the state dir with its age).
 */
import type { CliIo } from '../io.js';
import { writeLine } from '../io.js';

export const name = 'versions';
export const summary = 'list Flatcar releases that have a Proxmox VE image';
export const usage = `Usage: flatcar-k3s versions [--channel stable|beta|alpha|lts] [--config FILE] [--json]

Lists the Flatcar releases of a channel that publish a Proxmox VE image (4152 and newer), newest
first, with release date and kernel, systemd and Ignition versions. "current" is the first line.
The feed is cached in the state dir; offline the cache is shown with its age.

Options:
  --channel C     stable (default), beta, alpha or lts; default from the config when given
  --config FILE   take the channel, architecture and feed URL (a mirror) from this config
  --json          print JSON instead of a table`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { parseCommandArgs, resolveGlobals, UsageError, abs } = await import('../args.js');
  const { FlatcarSchema } = await import('../../config/schema.js');
  const { loadConfigFile } = await import('../../config/load.js');
  const { CHANNELS, proxmoxReleases } = await import('../../flatcar/releases.js');
  const { loadReleases, describeFeedSource } = await import('../../flatcar/feed.js');
  const { values } = parseCommandArgs(argv, { channel: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } }, usage);
  const globals = await resolveGlobals(values, io);
  const flatcar =
    typeof values.config === 'string' ? loadConfigFile(abs(values.config, io.cwd), { env: io.env }).flatcar : FlatcarSchema.parse({});
  const channel = typeof values.channel === 'string' ? values.channel : flatcar.channel;
  if (!(CHANNELS as readonly string[]).includes(channel))
    throw new UsageError(`Unknown channel "${channel}" (channels: ${CHANNELS.join(', ')})`, usage);

  const { RemoteError, EXIT } = await import('../../errors.js');
  let feed;
  try {
    feed = await loadReleases({ channel, feedBaseUrl: flatcar.feedBaseUrl, stateDir: globals.stateDir });
  } catch (err) {
    if (!(err instanceof RemoteError)) throw err;
    writeLine(
      io.stderr,
      `flatcar-k3s: ${err.message}${err.fix ? `\nFix: ${err.fix}` : ''}\nNo cached list of the ${channel} channel exists yet either.`,
    );
    return EXIT.failed;
  }
  const releases = proxmoxReleases(feed.releases, flatcar.arch);
  if (values.json) {
    writeLine(
      io.stdout,
      JSON.stringify(
        {
          channel,
          arch: flatcar.arch,
          source: feed.source,
          url: feed.url,
          fetchedAt: new Date(feed.fetchedAt).toISOString(),
          current: releases[0]?.version ?? null,
          releases,
        },
        null,
        2,
      ),
    );
  } else {
    writeLine(io.stderr, describeFeedSource(feed));
    if (releases.length === 0) {
      writeLine(io.stdout, `No ${channel} release has a Proxmox VE image for ${flatcar.arch} yet.`);
    } else {
      const rows = [['VERSION', 'RELEASED', 'KERNEL', 'SYSTEMD', 'IGNITION', '']];
      releases.forEach((r, i) =>
        rows.push([
          r.version,
          r.releaseDate.slice(0, 10),
          r.kernel ?? '-',
          r.systemd ?? '-',
          r.ignition ?? '-',
          i === 0 ? '(current)' : '',
        ]),
      );
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
      for (const row of rows)
        writeLine(
          io.stdout,
          row
            .map((cell, c) => cell.padEnd(widths[c]!))
            .join('  ')
            .trimEnd(),
        );
    }
  }
  if (feed.source === 'cache') writeLine(io.stderr, 'Warning: showing cached data; run again when online for the latest releases.');
  return 0;
}
