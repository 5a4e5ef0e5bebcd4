/**
 * Named formats of PVE::JSONSchema (pve-common) and qemu-server that the simulator checks.
 * A validator throws an Error whose message is what Proxmox puts after "invalid format - ".
 * Hash formats (property strings described only by name in apidata) are listed in HASH_FORMATS.
 * Formats not listed here are accepted as-is (Proxmox knows more formats than an installer sends).
 */
import type { PropSchema } from './types.js';

const IPV4_OCTET = '(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])';
const IPV4RE = `(?:${IPV4_OCTET}\\.){3}${IPV4_OCTET}`;
const IPV6RE = '(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?:%[A-Za-z0-9]+)?';
const ipv4 = new RegExp(`^${IPV4RE}$`);
const ipv6 = new RegExp(`^(?:${IPV6RE}|(?:[0-9a-fA-F]{0,4}:){2,6}${IPV4RE})$`);
const cidrv4 = new RegExp(`^${IPV4RE}/(\\d+)$`);
const cidrv6 = new RegExp(`^${IPV6RE}/(\\d+)$`);
const dnsName = /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const volumeId = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i;

function fail(msg: string): never {
  throw new Error(msg + '\n');
}

export const isCidrV4 = (v: string): boolean => {
  const m = cidrv4.exec(v);
  return !!m && Number(m[1]) > 7 && Number(m[1]) <= 32;
};
const isCidrV6 = (v: string): boolean => {
  const m = cidrv6.exec(v);
  return !!m && Number(m[1]) > 7 && Number(m[1]) <= 128;
};

/** parse_size of PVE::JSONSchema: bytes, or undefined when not a size. */
export function parseSize(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(value);
  if (!m) return undefined;
  const mult = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] as 'K' | 'M' | 'G' | 'T'] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** format_size of PVE::JSONSchema: the largest unit that divides the size exactly. */
export function formatSize(bytes: number): string {
  let size = Math.floor(bytes);
  let out = String(size);
  for (const unit of ['K', 'M', 'G', 'T']) {
    if (size % 1024 !== 0) return out;
    size /= 1024;
    out = `${size}${unit}`;
  }
  return out;
}

export function isVolumeId(v: string): boolean {
  return volumeId.test(v);
}

function parseIdRe(v: string, what: string): void {
  if (!/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v)) fail(`${what} ID '${v}' contains illegal characters`);
}

export const STRING_FORMATS: Record<string, (v: string) => void> = {
  string: () => {},
  urlencoded: (v) => {
    if (!/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v)) fail(`invalid urlencoded string: ${v}`);
  },
  'pve-configid': (v) => {
    if (!/^[a-z][a-z0-9_-]+$/i.test(v)) fail(`invalid configuration ID '${v}'`);
  },
  'pve-storage-id': (v) => parseIdRe(v, 'storage'),
  'pve-poolid': (v) => {
    if (!/^[A-Za-z0-9_\-/]+$/.test(v)) fail(`invalid pool ID '${v}'`);
  },
  'pve-bridge-id': (v) => {
    if (!/^[-_.\w\d]+$/.test(v)) fail(`invalid bridge ID '${v}'`);
  },
  'pve-vmid': (v) => {
    if (!/^[1-9][0-9]{2,8}$/.test(v)) fail('value does not look like a valid VM ID');
  },
  'pve-node': (v) => {
    if (!/^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/.test(v)) fail('value does not look like a valid node name');
  },
  'mac-addr': (v) => {
    if (!/^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i.test(v)) fail('value does not look like a valid unicast MAC address');
  },
  ipv4: (v) => {
    if (!ipv4.test(v)) fail('value does not look like a valid IPv4 address');
  },
  ipv6: (v) => {
    if (!ipv6.test(v)) fail('value does not look like a valid IPv6 address');
  },
  ip: (v) => {
    if (!ipv4.test(v) && !ipv6.test(v)) fail('value does not look like a valid IP address');
  },
  CIDRv4: (v) => {
    if (!isCidrV4(v)) fail('value does not look like a valid IPv4 CIDR network');
  },
  CIDRv6: (v) => {
    if (!isCidrV6(v)) fail('value does not look like a valid IPv6 CIDR network');
  },
  CIDR: (v) => {
    if (!isCidrV4(v) && !isCidrV6(v)) fail('value does not look like a valid CIDR network');
  },
  'pve-ipv4-config': (v) => {
    if (!/^(?:dhcp|manual)$/.test(v) && !isCidrV4(v)) fail('value does not look like a valid ipv4 network configuration');
  },
  'pve-ipv6-config': (v) => {
    if (!/^(?:auto|dhcp|manual)$/.test(v) && !isCidrV6(v)) fail('value does not look like a valid ipv6 network configuration');
  },
  'dns-name': (v) => {
    if (!dnsName.test(v)) fail('value does not look like a valid DNS name');
  },
  address: (v) => {
    if (!ipv4.test(v) && !ipv6.test(v) && !dnsName.test(v)) fail(`value does not look like a valid address: ${v}`);
  },
  'disk-size': (v) => {
    if (parseSize(v) === undefined) fail(`value does not look like a valid disk size: ${v}`);
  },
  'pve-volume-id': (v) => {
    if (!volumeId.test(v)) fail(`unable to parse volume ID '${v}'`);
  },
  'pve-volume-id-or-qm-path': (v) => {
    if (v === 'none' || v === 'cdrom' || v.startsWith('/')) return;
    if (!volumeId.test(v)) fail(`unable to parse volume ID '${v}'`);
  },
  'pve-volume-id-or-absolute-path': (v) => {
    if (v.startsWith('/')) return;
    if (!volumeId.test(v)) fail(`unable to parse volume ID '${v}'`);
  },
  'pve-storage-content': (v) => {
    if (!['images', 'rootdir', 'vztmpl', 'iso', 'backup', 'snippets', 'import', 'none'].includes(v)) fail(`invalid content type '${v}'`);
  },
  'pve-tag': (v) => {
    if (!/^[a-z0-9_][a-z0-9_\-+.]*$/i.test(v)) fail('invalid characters in tag');
  },
  'pve-userid': (v) => {
    if (!/^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$/.test(v)) fail(`value '${v}' does not look like a valid user name`);
  },
  'pve-realm': (v) => {
    if (!/^[A-Za-z][A-Za-z0-9.\-_]+$/.test(v)) fail(`value '${v}' does not look like a valid realm`);
  },
  'pve-qm-bootdisk': (v) => {
    if (!/^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/.test(v)) fail(`invalid boot disk '${v}'`);
  },
  'pve-hotplug-features': (v) => {
    if (!/^(0|1|((network|disk|cpu|memory|usb|cloudinit)(,(network|disk|cpu|memory|usb|cloudinit))*))$/.test(v))
      fail(`invalid hotplug features '${v}'`);
  },
  'pve-startup-order': (v) => {
    if (!v.split(',').every((p) => /^\s*$/.test(p) || /^(order=)?\d+$/.test(p) || /^(up|down)=\d+$/.test(p)))
      fail('unable to parse startup options');
  },
  'pve-qm-bootdev': (v) => {
    if (!/^(ide|sata|scsi|virtio|net|efidisk|tpmstate|usb|hostpci)\d+$/.test(v)) fail(`invalid boot device '${v}'`);
  },
};

const bool = { type: 'boolean', optional: 1 } as const;

/** Named hash formats (property strings) that apidata only names. Shapes from qemu-server. */
export const HASH_FORMATS: Record<string, Record<string, PropSchema>> = {
  'pve-qm-ipconfig': {
    ip: { type: 'string', format: 'pve-ipv4-config', optional: 1 },
    gw: { type: 'string', format: 'ipv4', optional: 1 },
    ip6: { type: 'string', format: 'pve-ipv6-config', optional: 1 },
    gw6: { type: 'string', format: 'ipv6', optional: 1 },
  },
  'pve-qm-cicustom': {
    meta: { type: 'string', format: 'pve-volume-id', optional: 1 },
    network: { type: 'string', format: 'pve-volume-id', optional: 1 },
    user: { type: 'string', format: 'pve-volume-id', optional: 1 },
    vendor: { type: 'string', format: 'pve-volume-id', optional: 1 },
  },
  'pve-qm-boot': {
    legacy: { type: 'string', pattern: '[acdn]{1,4}', optional: 1, default_key: 1 },
    order: { type: 'string', format: 'pve-qm-bootdev-list', optional: 1 },
  },
  'pve-qm-watchdog': {
    model: { type: 'string', enum: ['i6300esb', 'ib700'], optional: 1, default_key: 1 },
    action: { type: 'string', enum: ['reset', 'shutdown', 'poweroff', 'pause', 'debug', 'none'], optional: 1 },
  },
  'pve-qm-rng': {
    source: { type: 'string', enum: ['/dev/urandom', '/dev/random', '/dev/hwrng'], default_key: 1 },
    max_bytes: { type: 'integer', optional: 1 },
    period: { type: 'integer', optional: 1 },
  },
  'pve-qm-smbios1': {
    uuid: { type: 'string', pattern: '[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}', optional: 1 },
    version: { type: 'string', optional: 1 },
    serial: { type: 'string', optional: 1 },
    manufacturer: { type: 'string', optional: 1 },
    product: { type: 'string', optional: 1 },
    sku: { type: 'string', optional: 1 },
    family: { type: 'string', optional: 1 },
    base64: { type: 'boolean', optional: 1 },
  },
  'pve-vm-cpu-conf': {
    cputype: { type: 'string', default_key: 1, optional: 1, pattern: '[A-Za-z0-9_.+-]+' },
    hidden: bool,
    'hv-vendor-id': { type: 'string', optional: 1, pattern: '[a-zA-Z0-9]{1,12}' },
    flags: { type: 'string', optional: 1, pattern: '[+-][a-zA-Z0-9\\-_.]+(;[+-][a-zA-Z0-9\\-_.]+)*' },
    'phys-bits': { type: 'string', optional: 1 },
    'guest-phys-bits': { type: 'integer', optional: 1, minimum: 32, maximum: 64 },
    'reported-model': { type: 'string', optional: 1 },
  },
};

/** PVE::Tools::split_list */
export function splitList(text: string): string[] {
  return text.split(/[\0;,\s]+/).filter((s) => s !== '');
}
