/**
 * The Ignition configs (spec 3.3.0) for the template and for each node, generated from the config.
 * No Butane: the objects are built here and validated in the tests by ignition-validate and the schema.
 *
 * Proxmox's `cicustom=user=…` replaces the user-data where Proxmox would put hostname and SSH keys,
 * so both are written here; static addresses become systemd-networkd units matched by MAC because
 * a static ipconfig0 is not applied before Ignition on Flatcar (TECHNICAL-BRIEF A "Network").
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
  hostname: '/etc/hostname',
  networkUnit: (name: string) => `/etc/systemd/network/00-${name}.network`,
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

const OPT_BIN_PROFILE = `# flatcar-k3s: k3s and kubectl live in /opt/bin (/usr is read-only on Flatcar).
case ":$PATH:" in
  *:/opt/bin:*) ;;
  *) PATH="$PATH:/opt/bin"; export PATH ;;
esac
`;

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
    file(PATHS.updateConf, `# flatcar-k3s: update_engine downloads updates; ${ign.rebootStrategy === 'off' ? 'kured decides when to reboot' : 'locksmithd reboots'}.\nREBOOT_STRATEGY=${ign.rebootStrategy}\n`),
    file(PATHS.optBinProfile, OPT_BIN_PROFILE),
  ];
  if (ign.volatileJournal) files.push(file(PATHS.volatileJournal, '# flatcar-k3s: keep the journal in memory only.\n[Journal]\nStorage=volatile\n'));

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
  };
  if (config.nodes.sshKeys.length) cfg.passwd = { users: [{ name: 'core', sshAuthorizedKeys: [...config.nodes.sshKeys] }] };
  return cfg;
}

/** The base plus what makes a clone this node: hostname, static network (if any) and SSH keys. */
export function nodeIgnition(config: Config, node: PlannedNode): IgnitionConfig {
  const cfg = templateIgnition(config);
  const files = cfg.storage!.files!;
  replaceBy(files, file(PATHS.hostname, `${node.name}\n`), (x) => x.path);
  const network = staticNetworkUnit(config, node);
  if (network) replaceBy(files, file(PATHS.networkUnit(node.name), network), (x) => x.path);
  if (config.nodes.sshKeys.length) cfg.passwd = { users: [{ name: 'core', sshAuthorizedKeys: [...config.nodes.sshKeys] }] };
  return cfg;
}

/** systemd-networkd unit for a node with a static address; undefined for DHCP (nothing to write). */
export function staticNetworkUnit(config: Config, node: PlannedNode): string | undefined {
  const net = config.nodes.network;
  if (net.mode !== 'static' || !node.address) return undefined;
  const lines = ['# flatcar-k3s: static address of ' + node.name, '[Match]', `MACAddress=${node.mac.toLowerCase()}`, '', '[Network]', `Address=${node.address}`];
  if (net.gateway) lines.push(`Gateway=${net.gateway}`);
  for (const d of net.dns) lines.push(`DNS=${d}`);
  if (net.searchDomain) lines.push(`Domains=${net.searchDomain}`);
  return lines.join('\n') + '\n';
}

/** Later entries replace earlier ones with the same key (user files over the defaults). */
function replaceBy<T>(list: T[], item: T, key: (x: T) => string): void {
  const i = list.findIndex((x) => key(x) === key(item));
  if (i >= 0) list[i] = item;
  else list.push(item);
}
