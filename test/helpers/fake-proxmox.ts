/** A fake ProxmoxGateway for UI tests: fixed fingerprint, nodes, storages, bridges; records calls. */
import type { ProxmoxClient } from '../../src/proxmox/types.js';
import type { ConnectOptions, ProxmoxGateway } from '../../src/ui/types.js';

export const FP = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase().padStart(2, '0').slice(-2)).join(':');

export function fakeGateway(opts: { failConnect?: Error & { fix?: string }; nodes?: string[] } = {}) {
  const calls: { probe: string[]; connect: ConnectOptions[] } = { probe: [], connect: [] };
  const nodes = opts.nodes ?? ['pve1', 'pve2'];
  const client = {
    version: async () => ({ version: '8.4.1', release: '8.4', repoid: 'abc' }),
    nodes: async () => [
      ...nodes.map((n) => ({ node: n, status: 'online' as const, maxcpu: 8, maxmem: 32 * 2 ** 30 })),
      { node: 'pve-old', status: 'offline' as const },
    ],
    vms: async () => [
      { type: 'qemu' as const, vmid: 9000, node: 'pve1', name: 'flatcar-stable-4593.2.5', status: 'stopped', template: true },
    ],
    storages: async () => [
      {
        storage: 'local',
        type: 'dir',
        content: ['iso', 'vztmpl', 'backup'],
        active: true,
        enabled: true,
        shared: false,
        avail: 50 * 2 ** 30,
      },
      {
        storage: 'local-lvm',
        type: 'lvmthin',
        content: ['images', 'rootdir'],
        active: true,
        enabled: true,
        shared: false,
        avail: 400 * 2 ** 30,
      },
      {
        storage: 'nas',
        type: 'nfs',
        content: ['import', 'snippets', 'iso'],
        active: true,
        enabled: true,
        shared: true,
        avail: 2 * 2 ** 40,
      },
    ],
    bridges: async () => [
      { iface: 'vmbr0', type: 'bridge', active: true, cidr: '192.168.1.2/24' },
      { iface: 'vmbr1', type: 'bridge', active: true, comments: 'lab' },
    ],
  } as unknown as ProxmoxClient;
  const gateway: ProxmoxGateway = {
    async probeFingerprint(url) {
      calls.probe.push(url);
      return FP;
    },
    async connect(o) {
      calls.connect.push(o);
      if (opts.failConnect) throw opts.failConnect;
      return client;
    },
  };
  return { gateway, calls, client };
}
