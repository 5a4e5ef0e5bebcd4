/**
 * A demo VM's boot and resume: its network identity (the Ignition's static address or a DHCP lease on
 * loopback), the Ignition's hostname and `core` keys, a boot delay, then its SSH server and the enabled
 * k3s units, as systemd would start them.
 */
import ssh2 from 'ssh2';
import { startUnit } from './k3s-model.js';
import { DemoNode, osRelease, type DemoAgentInterface, type DemoVm } from './node.js';
import { listen, stopNode } from './ssh-server.js';
import type { DemoWorld } from './world.js';

const { utils } = ssh2;

function dhcpAddress(w: DemoWorld, mac: string): string {
  let a = w.addressByMac.get(mac);
  if (!a) {
    const n = w.dhcpNext++;
    const base = w.opts.dhcpBase ?? 100;
    a = `127.0.${base + Math.floor(n / 200)}.${10 + (n % 200)}`;
    w.addressByMac.set(mac, a);
  }
  return a;
}

function parseIgnition(userData: string | undefined): { hostname?: string; keys: string[]; address?: string; prefix?: number } {
  if (!userData) return { keys: [] };
  let ign: {
    passwd?: { users?: Array<{ name: string; sshAuthorizedKeys?: string[] }> };
    storage?: { files?: Array<{ path: string; contents?: { source?: string } }> };
  };
  try {
    ign = JSON.parse(userData);
  } catch {
    // Ignition ignores user-data that is not JSON: the node boots without keys.
    return { keys: [] };
  }
  const keys = ign.passwd?.users?.find((u) => u.name === 'core')?.sshAuthorizedKeys ?? [];
  const fileText = (pred: (p: string) => boolean) => {
    const f = ign.storage?.files?.find((x) => pred(x.path));
    const src = f?.contents?.source;
    if (!src) return undefined;
    const m = /^data:([^,]*),(.*)$/s.exec(src);
    if (!m) return undefined;
    return m[1]!.endsWith(';base64') ? Buffer.from(m[2]!, 'base64').toString('utf8') : decodeURIComponent(m[2]!);
  };
  const hostname = fileText((p) => p === '/etc/hostname')?.trim();
  const net = fileText((p) => p.startsWith('/etc/systemd/network/') && p.endsWith('.network'));
  const am = net ? /^Address=(\d+\.\d+\.\d+\.\d+)\/(\d+)$/m.exec(net) : null;
  return { hostname, keys, address: am?.[1], prefix: am ? Number(am[2]) : undefined };
}

function parseAuthorizedKey(line: string): { type: string; data: Buffer } | undefined {
  const parsed = utils.parseKey(line);
  const k = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!k || k instanceof Error) return undefined;
  return { type: k.type, data: k.getPublicSSH() };
}

export async function boot(w: DemoWorld, vm: DemoVm): Promise<{ interfaces: DemoAgentInterface[] }> {
  try {
    return await bootNode(w, vm);
  } catch (err) {
    // The simulator swallows boot errors (a real VM that fails to boot just never answers): say why.
    w.log(`demo node ${vm.name} (VMID ${vm.vmid}) failed to boot: ${(err as Error).message}`);
    throw err;
  }
}

async function bootNode(w: DemoWorld, vm: DemoVm): Promise<{ interfaces: DemoAgentInterface[] }> {
  if (w.closed) throw new Error('demo guests closed');
  const net0 = String(vm.config.net0 ?? '');
  const mac = (
    /(?:virtio|e1000|vmxnet3|rtl8139)=([0-9A-Fa-f:]{17})/.exec(net0)?.[1] ?? `BC:24:11:00:${(vm.vmid >> 8) & 255}:${vm.vmid & 255}`
  ).toUpperCase();
  const ign = parseIgnition(vm.userData);
  const ipconfig = String(vm.config.ipconfig0 ?? '');
  const ipm = /ip=(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(ipconfig);
  let address = ign.address ?? ipm?.[1];
  let prefix = ign.prefix ?? (ipm ? Number(ipm[2]) : 8);
  if (!address) {
    address = dhcpAddress(w, mac);
    prefix = 8;
  }
  if (!address.startsWith('127.'))
    throw new Error(`demo node ${vm.name}: address ${address} is not on loopback; the demo config must use a 127.x network`);

  let node = w.nodesByVmid.get(vm.vmid);
  if (node && node.address !== address) {
    await stopNode(w, node);
    node = undefined;
  }
  if (!node) {
    node = new DemoNode(vm, address, prefix, mac);
    w.nodesByVmid.set(vm.vmid, node);
  }
  node.vm = vm;
  // the node's description names the template's Flatcar release (steps/nodes/common.ts nodeDescription)
  const flatcar = /Flatcar (\d+\.\d+\.\d+)/.exec(String(vm.config.description ?? ''))?.[1];
  if (flatcar) node.writeFile('/etc/os-release', osRelease(flatcar), 0o644, 'root');
  const hostname = ign.hostname ?? vm.name;
  node.writeFile('/etc/hostname', `${hostname}\n`, 0o644, 'root');
  node.authorizedKeys = ign.keys.map(parseAuthorizedKey).filter((k): k is { type: string; data: Buffer } => !!k);
  node.bootMs = (w.opts.bootSeconds ?? 20) > 0 ? w.dur(w.opts.bootSeconds ?? 20) : 0;
  w.persist();
  if (node.bootMs > 0) await w.sleep(node.bootMs);
  if (w.closed) throw new Error('demo guests closed while the VM booted');
  await listen(w, node);
  w.log(`demo node ${vm.name} up on ${address}:${w.opts.sshPort} (host key ${node.hostKey.fingerprint})`);
  // Enabled units start at boot, as systemd would.
  for (const [name, u] of node.units) if (u.enabled && u.state !== 'active') startUnit(w, node, name);
  w.persist();
  return { interfaces: interfacesOf(node) };
}

function interfacesOf(node: DemoNode): DemoAgentInterface[] {
  return [
    {
      name: 'lo',
      'hardware-address': '00:00:00:00:00:00',
      'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }],
    },
    {
      name: 'eth0',
      'hardware-address': node.mac.toLowerCase(),
      'ip-addresses': [{ 'ip-address': node.address, 'ip-address-type': 'ipv4', prefix: node.prefix }],
    },
  ];
}

export async function resume(
  w: DemoWorld,
  vms: Array<DemoVm & { running: boolean }>,
): Promise<Map<number, { interfaces: DemoAgentInterface[] }>> {
  const known = new Set(vms.map((v) => v.vmid));
  // a node whose VM is gone (never saved by the simulator, or destroyed) was never a machine
  for (const [vmid, node] of w.nodesByVmid) {
    if (known.has(vmid)) continue;
    await stopNode(w, node);
    w.nodesByVmid.delete(vmid);
  }
  const out = new Map<number, { interfaces: DemoAgentInterface[] }>();
  await Promise.all(
    vms.map(async ({ running, ...vm }) => {
      const node = w.nodesByVmid.get(vm.vmid);
      if (!running) {
        if (node) for (const u of node.units.values()) u.state = 'inactive';
        return;
      }
      // started, but its guest never got as far as being saved: it boots now
      if (!node) return void out.set(vm.vmid, await boot(w, vm));
      node.vm = { ...vm, userData: vm.userData ?? node.vm.userData };
      await listen(w, node);
      w.log(`demo node ${vm.name} resumed on ${node.address}:${w.opts.sshPort} (host key ${node.hostKey.fingerprint})`);
      // active units keep running; one that was still starting (or failing) starts again
      for (const [name, u] of node.units) if (u.enabled && u.state !== 'active') startUnit(w, node, name);
      out.set(vm.vmid, { interfaces: interfacesOf(node) });
    }),
  );
  w.persist();
  return out;
}
