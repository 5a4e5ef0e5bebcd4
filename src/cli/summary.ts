/** The resolved-config summary printed by `validate` and before a run. Secrets never appear. */
import { APP_KEYS, type Config } from '../config/schema.js';
import { planNodes, templateVmid } from '../config/layout.js';

export function configSummary(c: Config): string[] {
  const p = c.proxmox;
  const auth = p.tokenId ? `API token ${p.tokenId}` : p.username ? `user ${p.username} (password)` : 'no credentials';
  const apps = APP_KEYS.filter((k) => c.apps[k].enabled);
  const net = c.nodes.network;
  const lines = [
    `cluster    ${c.cluster.name}: k3s ${c.cluster.k3sVersion}, ${c.nodes.servers.count} server(s), ${c.nodes.agents.count} agent(s)${c.nodes.vip ? `, VIP ${c.nodes.vip}` : ''}`,
    `proxmox    ${p.url} with ${auth}; TLS ${p.fingerprint ? `pinned ${p.fingerprint.slice(0, 17)}…` : p.caFile ? `CA ${p.caFile}` : 'trust on first use'}`,
    `           nodes: ${p.nodes.length ? p.nodes.join(', ') : 'every online node'}; storage disks=${p.storage.disks} images=${p.storage.images} snippets=${p.storage.snippets}; bridge ${p.bridge}`,
    `flatcar    ${c.flatcar.channel} ${c.flatcar.version} (${c.flatcar.arch}), template VMID ${templateVmid(c)}`,
    `network    ${net.mode === 'dhcp' ? 'DHCP (fixed MACs)' : `static ${net.cidr} via ${net.gateway}`}`,
    `apps       ${apps.length ? `${apps.join(', ')} (${c.apps.mode === 'operator' ? 'kept applied by the Pulumi operator' : 'applied from this machine'})` : 'none'}`,
    'nodes:',
  ];
  for (const n of planNodes(c))
    lines.push(
      `  ${n.name.padEnd(24)} ${n.role.padEnd(6)} vmid ${n.vmid}  ${n.cores} cores ${n.memory} MiB ${n.disk} GiB  mac ${n.mac}${n.address ? `  ${n.address}` : ''}`,
    );
  return lines;
}
