/** Small IPv4 helpers for config validation and address planning. */

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

export function intToIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Subnet {
  network: number;
  prefix: number;
  /** First and last usable host addresses. */
  first: number;
  last: number;
}

export function parseCidr(cidr: string): Subnet {
  const [ip, len] = cidr.split('/');
  const prefix = Number(len);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipToInt(ip!) & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  return prefix >= 31 ? { network, prefix, first: network, last: broadcast } : { network, prefix, first: network + 1, last: broadcast - 1 };
}

export function inSubnet(ip: string, subnet: Subnet): boolean {
  const n = ipToInt(ip);
  return n >= subnet.first && n <= subnet.last;
}
