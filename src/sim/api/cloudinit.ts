/**
 * Cloud-init as qemu-server's Cloudinit.pm does it (nocloud format): generated user-data, network-config
 * v1 and meta-data, cicustom snippets read at every start (1 MiB per file, 3 MiB in total), and the
 * `cloudinit/dump` answers (which always show the generated data, never the snippets).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type { SimContext } from './context.js';
import type { SimVm } from '../state.js';

/** The simulated host's /etc/resolv.conf, used when the VM sets no nameserver/searchdomain. */
export const HOST_DNS = { search: ['sim.lan'], nameservers: ['192.168.1.1'] };

function hostnameFqdn(vm: SimVm): [string, string] {
  const name = String(vm.config.name ?? `VM${vm.vmid}`);
  if (name.includes('.')) return [name.replace(/\..*$/, ''), name];
  if (vm.config.searchdomain) return [name, `${name}.${vm.config.searchdomain}`];
  return [name, name];
}

export function userData(vm: SimVm): string {
  const [hostname, fqdn] = hostnameFqdn(vm);
  let out = `#cloud-config\nhostname: ${hostname}\nmanage_etc_hosts: true\nfqdn: ${fqdn}\n`;
  const user = vm.config.ciuser !== undefined ? String(vm.config.ciuser) : undefined;
  if (user !== undefined) out += `user: ${user}\n`;
  if (user === 'root') out += 'disable_root: False\n';
  if (vm.config.cipassword !== undefined) out += `password: ${vm.config.cipassword}\n`;
  if (vm.config.sshkeys !== undefined) {
    const keys = decodeURIComponent(String(vm.config.sshkeys))
      .split('\n')
      .map((k) => k.replace(/\r$/, ''))
      .filter((k) => /\S/.test(k));
    out += 'ssh_authorized_keys:\n' + keys.map((k) => `  - ${k}\n`).join('');
  }
  out += 'chpasswd:\n  expire: False\n';
  if (user !== 'root') out += 'users:\n  - default\n';
  if (vm.config.ciupgrade === undefined || Number(vm.config.ciupgrade)) out += 'package_upgrade: true\n';
  return out;
}

const MASKS = (prefix: number): string => [24, 16, 8, 0].map((s) => (((0xffffffff << (32 - prefix)) >>> 0) >>> s) & 255).join('.');

export function networkData(vm: SimVm): string {
  let out = 'version: 1\nconfig:\n';
  const nets = Object.keys(vm.config)
    .filter((k) => /^net\d+$/.test(k))
    .sort();
  for (const key of nets) {
    const id = key.slice(3);
    const ipc = vm.config[`ipconfig${id}`];
    if (!ipc) continue;
    const mac = /=([0-9A-Fa-f:]{17})/.exec(String(vm.config[key]))?.[1]?.toLowerCase();
    if (!mac) throw new Error(`network interface '${key}' has no mac address\n`);
    const get = (k: string) => new RegExp(`(?:^|,)${k}=([^,]+)`).exec(String(ipc))?.[1];
    out += `    - type: physical\n      name: eth${id}\n      mac_address: '${mac}'\n      subnets:\n`;
    const ip = get('ip');
    if (ip === 'dhcp') out += '      - type: dhcp4\n';
    else if (ip) {
      const [addr, prefix] = ip.split('/');
      out += `      - type: static\n        address: '${addr}'\n        netmask: '${MASKS(Number(prefix))}'\n`;
      const gw = get('gw');
      if (gw) out += `        gateway: '${gw}'\n`;
    }
    const ip6 = get('ip6');
    if (ip6 === 'dhcp') out += '      - type: dhcp6\n';
    else if (ip6 === 'auto') out += '      - type: ipv6_slaac\n';
    else if (ip6) {
      out += `      - type: static6\n        address: '${ip6}'\n`;
      const gw6 = get('gw6');
      if (gw6) out += `        gateway: '${gw6}'\n`;
    }
  }
  const search = vm.config.searchdomain !== undefined ? String(vm.config.searchdomain).split(/\s+/).filter(Boolean) : HOST_DNS.search;
  const ns = vm.config.nameserver !== undefined ? String(vm.config.nameserver).split(/\s+/).filter(Boolean) : HOST_DNS.nameservers;
  out += '    - type: nameserver\n';
  if (ns.length) out += '      address:\n' + ns.map((a) => `      - '${a}'\n`).join('');
  if (search.length) out += '      search:\n' + search.map((a) => `      - '${a}'\n`).join('');
  return out;
}

export const metaData = (user: string, network: string): string =>
  `instance-id: ${createHash('sha1')
    .update(user + network)
    .digest('hex')}\n`;

const MAX_SNIPPET = 1024 * 1024;

/** read_cloudinit_snippets_file: must be a snippets volume, must exist, at most 1 MiB. */
function readSnippet(ctx: SimContext, volid: string, node: string): string {
  const m = /^([^:]+):(.*)$/.exec(volid);
  const st = m ? ctx.state.storages.get(m[1]!) : undefined;
  if (!m || !st) throw new Error(`storage '${m?.[1] ?? volid}' does not exist\n`);
  if (!/^snippets\/[^/]+$/.test(m[2]!)) throw new Error(`${volid} is not in the snippets directory\n`);
  const path = ctx.state.volumePath(volid, node);
  if (!path || !existsSync(path)) throw new Error(`can't find file '${volid}'\n`);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(MAX_SNIPPET + 8192);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, total, Math.min(8192, buf.length - total), null);
      if (n === 0) break;
      total += n;
      if (total > MAX_SNIPPET) throw new Error(`file '${path}' too long - aborting\n`);
    }
    return buf.subarray(0, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The four files of the cloud-init drive as a start generates them; throws Proxmox's errors. */
export function generateNocloud(ctx: SimContext, vm: SimVm): { user: string; network: string; meta: string; vendor: string } {
  const custom: Record<string, string> = {};
  for (const part of String(vm.config.cicustom ?? '').split(',')) {
    const m = /^(meta|network|user|vendor)=(.+)$/.exec(part);
    if (m) custom[m[1]!] = readSnippet(ctx, m[2]!, vm.node);
  }
  const user = custom.user ?? userData(vm);
  const network = custom.network ?? networkData(vm);
  const vendor = custom.vendor ?? '';
  const meta = custom.meta ?? metaData(user, network);
  const sum = Buffer.byteLength(user) + Buffer.byteLength(network) + Buffer.byteLength(meta) + Buffer.byteLength(vendor);
  if (sum > 3 * 1024 * 1024) throw new Error('Cloud-Init sum of snippets too big (> 3 MiB)\n');
  return { user, network, meta, vendor };
}

/** GET …/cloudinit/dump: the generated configuration (cicustom snippets are not shown). */
export function dumpCloudinit(vm: SimVm, type: string): string {
  const user = userData(vm);
  if (type === 'user') return user;
  const network = networkData(vm);
  if (type === 'network') return network;
  return metaData(user, network);
}
