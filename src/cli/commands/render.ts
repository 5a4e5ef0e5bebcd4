/**
 * `flatcar-k3s render ignition --config FILE [--node NAME]`: print the Ignition config the template
 * (or one node) boots with, exactly as it is uploaded as a snippet.
 */
import type { CliIo } from '../io.js';
import { writeLine } from '../io.js';

export const name = 'render';
export const summary = 'print the Ignition config of the template or of one node';
export const usage = `Usage: flatcar-k3s render ignition --config FILE [--node NAME] [--compact]

Prints the Ignition (spec 3.3.0) JSON the Flatcar template, or the node NAME, is given through the
Proxmox cloud-init drive. Its sha256 (which names the snippet file) goes to stderr.

Options:
  --config FILE   the cluster config (YAML)
  --node NAME     a node of the layout, e.g. homelab-server-1 (default: the template's config)
  --compact       one line, exactly the uploaded bytes (default: indented by 2 spaces)`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const { parseCommandArgs, UsageError, abs } = await import('../args.js');
  const { loadConfigFile } = await import('../../config/load.js');
  const { planNodes } = await import('../../config/layout.js');
  const { templateIgnition, nodeIgnition, ignitionJson, ignitionHash, shortHash, checkCloudInitSize } = await import(
    '../../ignition/index.js'
  );
  const { values, positionals } = parseCommandArgs(
    argv,
    { config: { type: 'string' }, node: { type: 'string' }, compact: { type: 'boolean' } },
    usage,
    { positionals: 1 },
  );
  if (positionals[0] !== 'ignition')
    throw new UsageError(
      positionals[0] ? `Unknown render target "${positionals[0]}" (only "ignition")` : 'Say what to render: "render ignition"',
      usage,
    );
  if (typeof values.config !== 'string') throw new UsageError('--config FILE is required', usage);
  const config = loadConfigFile(abs(values.config, io.cwd), { env: io.env });
  const hostDns = await recordedHostDns(values, io, config.cluster.name);
  let cfg;
  let label = 'template';
  if (typeof values.node === 'string') {
    const nodes = planNodes(config);
    const node = nodes.find((n) => n.name === values.node);
    if (!node)
      throw new UsageError(`No node "${values.node}" in this config's layout (nodes: ${nodes.map((n) => n.name).join(', ')})`, usage);
    try {
      cfg = nodeIgnition(config, node, { hostDns });
    } catch (err) {
      const e = err as { field?: string; fix?: string };
      if (e.field !== 'nodes.network.dns') throw err;
      const { UserError } = await import('../../errors.js');
      throw new UserError(
        `${(err as Error).message}: render works offline and no DNS of the Proxmox host is recorded for cluster ${config.cluster.name} yet`,
        {
          field: 'nodes.network.dns',
          fix: `${e.fix ?? ''} "up" records the host's DNS when it connects (proxmox:connect); pass the --state-dir it used.`,
        },
      );
    }
    label = node.name;
  } else {
    cfg = templateIgnition(config);
  }
  const compact = ignitionJson(cfg);
  checkCloudInitSize([{ label, data: compact }]);
  writeLine(io.stdout, values.compact ? compact : ignitionJson(cfg, { pretty: true }));
  const hash = ignitionHash(compact);
  writeLine(io.stderr, `# ${label}: sha256 ${hash} (${Buffer.byteLength(compact)} bytes compact; snippet name part ${shortHash(hash)})`);
  return 0;
}

/** The Proxmox host's DNS servers as the last run's proxmox:connect recorded them (render connects to nothing). */
async function recordedHostDns(
  values: { 'state-dir'?: string | boolean; 'log-file'?: string | boolean },
  io: CliIo,
  cluster: string,
): Promise<string[] | undefined> {
  const [{ resolveGlobals }, { readState }, { clusterDirFor }] = await Promise.all([
    import('../args.js'),
    import('../../runner/state.js'),
    import('../../store/layout.js'),
  ]);
  const { stateDir } = await resolveGlobals(values, io);
  const dns = readState(clusterDirFor(stateDir, cluster))?.steps['proxmox:connect']?.outputs?.hostDns;
  return Array.isArray(dns) && dns.every((d) => typeof d === 'string') ? (dns as string[]) : undefined;
}
