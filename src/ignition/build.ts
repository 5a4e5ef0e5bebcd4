/**
 * The Ignition configs (spec 3.3.0) for the template and for each node, generated from the config.
 * No Butane: the objects are built here and validated in the tests by ignition-validate and the schema.
 *
 * Proxmox's `cicustom=user=…` replaces the user-data where Proxmox would put hostname and SSH keys,
 * so both are written here.
 *
 * Network: Flatcar's Proxmox VE image does apply the cloud-init network config (ipconfig0 and the DNS
 * Proxmox puts there): its initrd runs the metadata agent with --network-units, which writes
 * /run/systemd/network/*.network. Each node still gets exactly one unit of ours per NIC, matched by MAC
 * and named 00-… so it is the one networkd applies, with a resolver always: nodes.network.dns when
 * given, else (static) the DNS of the Proxmox host, which is what Proxmox's cloud-init would give, or
 * (DHCP) the lease's. ipconfig0/nameserver on the VM say the same, so nothing disagrees.
 *
 * Console: the image's GRUB config adds flatcar.autologin (a root-equivalent shell on the Proxmox
 * console); the kernelArguments section removes it unless flatcar.ignition.consoleAutologin is set.
 */
import type { Config } from '../config/schema.js';
import type { PlannedNode } from '../config/layout.js';
import { UserError } from '../errors.js';
import { IGNITION_VERSION, type IgnitionConfig, type IgnitionFile, type IgnitionUnit } from './types.js';

/** Units the tool itself relies on: masking them would leave nodes unreachable. */
const NEVER_MASK = ['qemu-guest-agent.service', 'sshd.service', 'sshd.socket', 'systemd-networkd.service'];

export const PATHS = {
  consoleLogLevel: '/etc/sysctl.d/10-console-log-level.conf',
  updateConf: '/etc/flatcar/update.conf',
  volatileJournal: '/etc/systemd/journald.conf.d/10-volatile.conf',
  optBin: '/opt/bin',
  optBinProfile: '/etc/profile.d/flatcar-k3s-opt-bin.sh',
  crictlConf: '/etc/crictl.yaml',
  hostname: '/etc/hostname',
  networkUnit: (name: string) => `/etc/systemd/network/00-${name}.network`,
  nodeIpScript: '/opt/bin/flatcar-k3s-node-ip',
} as const;

/** File contents as a data URL: URL-escaped text, or base64 when that is shorter. */
export function dataUrl(text: string): string {
  const escaped = `data:,${encodeURIComponent(text)}`;
  const b64 = `data:;base64,${Buffer.from(text, 'utf8').toString('base64')}`;
  return b64.length < escaped.length ? b64 : escaped;
}

function file(path: string, contents: string, mode = 0o644): IgnitionFile {
  return { path, overwrite: true, mode, contents: { source: dataUrl(contents) } };
}

/**
 * k3s and its kubectl/crictl/ctr links live in /opt/bin (/usr is read-only on Flatcar). Flatcar ships its
 * own crictl and ctr in /usr/bin, which talk to the system containerd, not k3s's: /opt/bin goes first
 * so the k3s copies win in login shells, and both crictl copies read /etc/crictl.yaml (k3s's socket).
 * sudo keeps its secure_path (/usr/bin first): there, use `sudo k3s crictl` / `sudo k3s ctr`.
 */
const OPT_BIN_PROFILE = `# flatcar-k3s: k3s, kubectl, crictl and ctr from /opt/bin (k3s) win over Flatcar's /usr/bin copies.
case ":$PATH:" in
  /opt/bin:*) ;;
  *) PATH="/opt/bin:$PATH"; export PATH ;;
esac
# Flatcar's /usr/bin/ctr talks to k3s's containerd too.
CONTAINERD_ADDRESS=/run/k3s/containerd/containerd.sock; export CONTAINERD_ADDRESS
`;
const CRICTL_CONF = `# flatcar-k3s: crictl (k3s's and Flatcar's) talks to k3s's containerd.
runtime-endpoint: unix:///run/k3s/containerd/containerd.sock
image-endpoint: unix:///run/k3s/containerd/containerd.sock
`;

/**
 * DHCP nodes: a lease may change across a reboot, and k3s would come up with the node-ip of the old one.
 * Before k3s starts, this sets node-ip in its config to the address the NIC (by MAC) has now; `up` does
 * the same when it finds a new address, restarting k3s only when the value changed.
 */
export const NODE_IP_SCRIPT = `#!/bin/sh
# flatcar-k3s: set node-ip in the k3s config to this boot's address of the NIC with MAC $2.
set -eu
config=$1
mac=$2
[ -f "$config" ] || exit 0
grep -q '^node-ip:' "$config" || exit 0
addr=
i=0
while [ -z "$addr" ] && [ "$i" -lt 60 ]; do
  iface=$(ip -o link | awk -v m="$mac" 'index(tolower($0), "link/ether " m) { sub(":$", "", $2); print $2; exit }')
  [ -n "$iface" ] && addr=$(ip -4 -o addr show dev "$iface" scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
  [ -n "$addr" ] && break
  i=$((i + 1))
  sleep 1
done
[ -n "$addr" ] || { echo "no IPv4 address on $mac yet; node-ip left as it is" >&2; exit 0; }
current=$(sed -n 's/^node-ip: *//p' "$config")
if [ "$current" != "$addr" ]; then
  sed -i "s/^node-ip: .*/node-ip: $addr/" "$config"
  echo "node-ip: $current -> $addr (the DHCP lease changed)"
fi
`;

/** The kernel argument Flatcar's Proxmox VE image sets to log `core` in on the console. */
export const AUTOLOGIN_ARG = 'flatcar.autologin';

/** Base config shared by the template and every node: no hostname, no static address. */
export function templateIgnition(config: Config): IgnitionConfig {
  const ign = config.flatcar.ignition;
  for (const u of ign.maskedUnits) {
    if (NEVER_MASK.includes(u)) {
      throw new UserError(`flatcar.ignition.maskedUnits lists ${u}, which the nodes need`, {
        field: 'flatcar.ignition.maskedUnits',
        fix: `Remove ${u} from the list: ${u === 'qemu-guest-agent.service' ? 'Proxmox finds the node addresses through the guest agent' : 'flatcar-k3s reaches the nodes over SSH and networkd'}.`,
      });
    }
  }

  const files: IgnitionFile[] = [
    file(PATHS.consoleLogLevel, `# flatcar-k3s: keep the serial console readable.\nkernel.printk = ${ign.kernelLogLevel} 4 1 7\n`),
    file(
      PATHS.updateConf,
      `# flatcar-k3s: update_engine downloads updates; ${ign.rebootStrategy === 'off' ? 'kured decides when to reboot' : 'locksmithd reboots'}.\nREBOOT_STRATEGY=${ign.rebootStrategy}\n`,
    ),
    file(PATHS.optBinProfile, OPT_BIN_PROFILE),
    file(PATHS.crictlConf, CRICTL_CONF),
  ];
  if (ign.volatileJournal)
    files.push(file(PATHS.volatileJournal, '# flatcar-k3s: keep the journal in memory only.\n[Journal]\nStorage=volatile\n'));

  const units: IgnitionUnit[] = ign.maskedUnits.map((name) => ({ name, mask: true }));
  for (const u of ign.units) {
    const unit: IgnitionUnit = { name: u.name, enabled: u.enabled };
    if (u.contents !== undefined) unit.contents = u.contents;
    replaceBy(units, unit, (x) => x.name);
  }
  for (const f of ign.files) replaceBy(files, file(f.path, f.contents, f.mode), (x) => x.path);

  const cfg: IgnitionConfig = {
    ignition: { version: IGNITION_VERSION },
    storage: { directories: [{ path: PATHS.optBin, overwrite: false, mode: 0o755 }], files },
    systemd: { units },
    kernelArguments: ign.consoleAutologin ? { shouldExist: [AUTOLOGIN_ARG] } : { shouldNotExist: [AUTOLOGIN_ARG] },
  };
  if (config.nodes.sshKeys.length) cfg.passwd = { users: [{ name: 'core', sshAuthorizedKeys: [...config.nodes.sshKeys] }] };
  return cfg;
}

/** What only the Proxmox host knows, read by proxmox:connect. */
export interface NodeIgnitionEnv {
  /** DNS servers of the Proxmox host (what Proxmox's cloud-init gives a VM without a nameserver). */
  hostDns?: string[];
}

/** The base plus what makes a clone this node: hostname, its network unit and SSH keys. */
export function nodeIgnition(config: Config, node: PlannedNode, env: NodeIgnitionEnv = {}): IgnitionConfig {
  const cfg = templateIgnition(config);
  const files = cfg.storage!.files!;
  replaceBy(files, file(PATHS.hostname, `${node.name}\n`), (x) => x.path);
  replaceBy(files, file(PATHS.networkUnit(node.name), nodeNetworkUnit(config, node, env)), (x) => x.path);
  if (!(config.nodes.network.mode === 'static' && node.address)) {
    replaceBy(files, file(PATHS.nodeIpScript, NODE_IP_SCRIPT, 0o755), (x) => x.path);
    const dropin = `# flatcar-k3s: node-ip follows the DHCP lease across reboots.\n[Service]\nExecStartPre=-${PATHS.nodeIpScript} /etc/rancher/k3s/config.yaml ${node.mac.toLowerCase()}\n`;
    const unit = node.role === 'server' ? 'k3s.service' : 'k3s-agent.service';
    replaceBy(cfg.systemd!.units!, { name: unit, dropins: [{ name: '10-flatcar-k3s-node-ip.conf', contents: dropin }] }, (x) => x.name);
  }
  if (config.nodes.sshKeys.length) cfg.passwd = { users: [{ name: 'core', sshAuthorizedKeys: [...config.nodes.sshKeys] }] };
  return cfg;
}

/** The resolvers a node gets besides DHCP's: nodes.network.dns, else (static only) the Proxmox host's. */
export function nodeResolvers(config: Config, env: NodeIgnitionEnv = {}): string[] {
  const net = config.nodes.network;
  if (net.dns.length) return [...net.dns];
  return net.mode === 'static' ? [...(env.hostDns ?? [])] : [];
}

/**
 * The node's one systemd-networkd unit, matched by MAC: its static address (or DHCP) and its resolvers.
 * A static node without a resolver cannot download k3s or pull images: that is refused here.
 */
export function nodeNetworkUnit(config: Config, node: PlannedNode, env: NodeIgnitionEnv = {}): string {
  const net = config.nodes.network;
  const dns = nodeResolvers(config, env);
  const isStatic = net.mode === 'static' && !!node.address;
  const lines = [
    `# flatcar-k3s: the network of ${node.name} (${isStatic ? 'static' : 'DHCP'})`,
    '[Match]',
    `MACAddress=${node.mac.toLowerCase()}`,
    '',
    '[Network]',
  ];
  if (isStatic) {
    if (!dns.length) {
      throw new UserError(`${node.name} would have a static address and no DNS server`, {
        field: 'nodes.network.dns',
        fix: 'Set nodes.network.dns (e.g. [192.168.1.1]), or give the Proxmox host a DNS server (System → DNS): its DNS is used when nodes.network.dns is empty.',
      });
    }
    lines.push(`Address=${node.address}`);
    if (net.gateway) lines.push(`Gateway=${net.gateway}`);
  } else {
    lines.push('DHCP=ipv4');
  }
  for (const d of dns) lines.push(`DNS=${d}`);
  if (net.searchDomain) lines.push(`Domains=${net.searchDomain}`);
  if (!isStatic) lines.push('', '[DHCPv4]', "# The lease's DNS servers are used (with any nodes.network.dns above).", 'UseDNS=true');
  return lines.join('\n') + '\n';
}

/** Later entries replace earlier ones with the same key (user files over the defaults). */
function replaceBy<T>(list: T[], item: T, key: (x: T) => string): void {
  const i = list.findIndex((x) => key(x) === key(item));
  if (i >= 0) list[i] = item;
  else list.push(item);
}
