/**
 * node:<name>:vm: configure the cloned VM: CPU, memory, the NIC with the layout's MAC (DHCP
 * reservations survive re-creation), cicustom (the node's snippet), cloud-init network settings,
 * tags and description, and grow the disk before the first boot (Flatcar grows its root filesystem
 * to the disk). Only what differs is sent, so a second run changes nothing.
 */
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { withLockRetry } from '../../src/proxmox/retry.js';
import type { PveParams } from '../../src/proxmox/types.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { toolVersion } from '../template/vm.js';
import { snippetOnVmHost } from './snippets.js';
import { NODES_STEP, addressOf, nodeDescription, nodeTags, template, type NodeVmOutputs, type SnippetsOutputs } from './common.js';
import { awaitTask, recorded, splitTags } from '../shared.js';

const GiB = 1024 ** 3;

/** The config keys we own, as Proxmox stores them. */
export function desiredVmConfig(config: Config, node: PlannedNode, cicustomVolid: string): Record<string, string | number> {
  const net = config.nodes.network;
  const want: Record<string, string | number> = {
    cores: node.cores,
    memory: node.memory,
    net0: `virtio=${node.mac.toUpperCase()},bridge=${config.proxmox.bridge}`,
    cicustom: `user=${cicustomVolid}`,
    ipconfig0: net.mode === 'static' && node.address ? `ip=${node.address}${net.gateway ? `,gw=${net.gateway}` : ''}` : 'ip=dhcp',
    tags: nodeTags(config, node).join(';'),
    agent: 'enabled=1',
    onboot: 1,
  };
  if (net.dns.length) want.nameserver = net.dns.join(' ');
  if (net.searchDomain) want.searchdomain = net.searchDomain;
  return want;
}

/** Differences between what Proxmox has and what we want (keys whose values differ). */
export function configDrift(have: Record<string, string | number>, want: Record<string, string | number>): string[] {
  const drift: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    const h = have[k];
    if (k === 'tags') {
      const a = new Set(splitTags(h));
      if (!splitTags(v).every((t) => a.has(t))) drift.push(k);
    } else if (k === 'net0') {
      const parse = (s: unknown) => {
        const m: Record<string, string> = {};
        for (const part of String(s ?? '').split(',')) {
          const [a, b] = part.split('=');
          if (a) m[a.toLowerCase()] = (b ?? '').toLowerCase();
        }
        return m;
      };
      const hv = parse(h);
      const wv = parse(v);
      if (hv.virtio !== wv.virtio || hv.bridge !== wv.bridge) drift.push(k);
    } else if (k === 'agent') {
      if (!/(^|,)(enabled=)?1(,|$)/.test(String(h ?? ''))) drift.push(k);
    } else if (String(h ?? '') !== String(v)) drift.push(k);
  }
  return drift;
}

/** Size in bytes of a drive string's size= (e.g. "local-lvm:vm-101-disk-0,size=8G"). */
export function driveSize(drive: unknown): number | undefined {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)/.exec(String(drive ?? ''));
  if (!m) return undefined;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 ** 4 }[m[2] as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * mult;
}

export function vmStep(config: Config, node: PlannedNode, _options: RunOptions): Step {
  const id = NODES_STEP.vm(node.name);
  return {
    id,
    title: `Configure VM ${node.vmid}`,
    group: node.name,
    needs: [NODES_STEP.clone(node.name), NODES_STEP.snippets],
    inputs: {
      mac: node.mac,
      cores: node.cores,
      memory: node.memory,
      disk: node.disk,
      address: node.address,
      network: config.nodes.network,
      bridge: config.proxmox.bridge,
    },
    describe: () =>
      `Set VM ${node.vmid} to ${node.cores} cores, ${node.memory} MiB, a ${node.disk} GiB disk, MAC ${node.mac}${addressOf(node) ? `, ${addressOf(node)}` : ', DHCP'} and its Ignition snippet`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const pve = await ctx.services.proxmox();
      const cloned = recorded<NodeVmOutputs>(ctx, NODES_STEP.clone(node.name), 'clone');
      const snippet = recorded<SnippetsOutputs>(ctx, NODES_STEP.snippets, 'snippets').snippets[node.name]!;
      const have = await pve.vmConfig(cloned.pveNode, node.vmid);
      const drift = configDrift(have, desiredVmConfig(config, node, snippet.volid));
      if (drift.length) return { done: false, reason: `settings differ: ${drift.join(', ')}` };
      const size = driveSize(have.scsi0);
      if (size === undefined || size < node.disk * GiB)
        return { done: false, reason: `disk is ${size === undefined ? 'unknown' : `${size / GiB} GiB`}, want ${node.disk} GiB` };
      if ((await snippetOnVmHost(ctx, config, node, cloned.pveNode, false)) === false)
        return { done: false, reason: `its snippet is not on ${cloned.pveNode}, where the VM is` };
      return { done: true, outputs: { ...cloned }, reason: `VM ${node.vmid} has the wanted settings` };
    },
    async run(ctx: StepContext): Promise<NodeVmOutputs> {
      const pve = await ctx.services.proxmox();
      const t = template(ctx);
      const cloned = recorded<NodeVmOutputs>(ctx, NODES_STEP.clone(node.name), 'clone');
      const snippet = recorded<SnippetsOutputs>(ctx, NODES_STEP.snippets, 'snippets').snippets[node.name]!;
      const pveNode = cloned.pveNode;
      await snippetOnVmHost(ctx, config, node, pveNode, true);
      const have = await pve.vmConfig(pveNode, node.vmid);
      const want = desiredVmConfig(config, node, snippet.volid);
      const drift = configDrift(have, want);
      if (drift.length) {
        const params: PveParams = {};
        for (const k of drift) params[k] = want[k];
        if (have.description === undefined || !String(have.description).includes(`flatcar-k3s node of cluster ${config.cluster.name}`))
          params.description = nodeDescription(config, node, t, toolVersion());
        ctx.progress(`configuring ${drift.join(', ')}`);
        await withLockRetry(() => pve.updateVmConfig(pveNode, node.vmid, params), { signal: ctx.signal });
        ctx.log(`Set ${drift.join(', ')} of ${node.name}`);
        const st = await pve.vmStatus(pveNode, node.vmid);
        const restartOnly = drift.filter((k) => ['cores', 'memory', 'net0'].includes(k));
        if (st.status === 'running' && restartOnly.length)
          ctx.log(`${node.name} is running: the new ${restartOnly.join('/')} settings apply at its next reboot`, 'warn');
      }
      const size = driveSize(have.scsi0);
      if (size === undefined || size < node.disk * GiB) {
        ctx.progress(`resizing the disk to ${node.disk} GiB`);
        await withLockRetry(
          async () => {
            const upid = await pve.resizeDisk(pveNode, node.vmid, 'scsi0', `${node.disk}G`);
            await awaitTask(ctx, pve, pveNode, upid);
          },
          { signal: ctx.signal },
        );
        ctx.log(`Disk of ${node.name} grown to ${node.disk} GiB (Flatcar grows its root filesystem at first boot)`);
      }
      return { ...cloned };
    },
  };
}
