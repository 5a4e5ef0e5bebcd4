/**
 * node:<name>:vm: clone the template (linked by default, full with nodes.fullClone) into the node's
 * VMID, on the template's host with `target=<pve node>` when the placement says another host, then
 * set CPU, memory, the NIC with the layout's MAC (DHCP reservations survive re-creation), cicustom
 * (the node's snippet), cloud-init network settings, tags and description, and grow the disk before
 * the first boot (Flatcar grows its root filesystem to the disk).
 *
 * Concurrent clones of one template hit Proxmox's lock timeouts: the step runs in the 'pve-clone'
 * lane and retries lock errors (withLockRetry). A run killed mid-clone finds the VM locked and
 * waits for Proxmox's task to finish instead of cloning twice.
 */
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { RemoteError, UserError } from '../../src/errors.js';
import { isVmidTaken, withLockRetry } from '../../src/proxmox/client.js';
import type { ProxmoxClient, PveParams } from '../../src/proxmox/types.js';
import { STEP } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { toolVersion } from '../template/vm.js';
import {
  LANES,
  NODES_STEP,
  addressOf,
  nodeDescription,
  nodeTags,
  pollUntil,
  recorded,
  splitTags,
  template,
  type NodeVmOutputs,
  type PlacementOutputs,
  type SnippetsOutputs,
} from './common.js';

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
  const full = config.nodes.fullClone;
  return {
    id,
    title: `Create VM ${node.vmid}`,
    group: node.name,
    needs: [STEP.templateReady, NODES_STEP.placement, NODES_STEP.snippets],
    lane: LANES.clone,
    inputs: { vmid: node.vmid, mac: node.mac, cores: node.cores, memory: node.memory, disk: node.disk, address: node.address, network: config.nodes.network, bridge: config.proxmox.bridge, full, storage: config.proxmox.storage.disks },
    describe: (ctx) => {
      const host = ctx.outputs<PlacementOutputs>(NODES_STEP.placement)?.placement[node.name];
      return `${full ? 'Full' : 'Linked'} clone of the template as VM ${node.vmid} ${node.name}${host ? ` on ${host}` : ''}: ${node.cores} cores, ${node.memory} MiB, ${node.disk} GiB disk, MAC ${node.mac}${addressOf(node) ? `, ${addressOf(node)}` : ', DHCP'}`;
    },
    async check(ctx: StepContext): Promise<CheckResult> {
      const pve = await ctx.services.proxmox();
      const vm = (await pve.vms()).find((v) => v.vmid === node.vmid);
      if (!vm) return { done: false, reason: `VM ${node.vmid} does not exist` };
      if (vm.lock) return { done: false, reason: `VM ${node.vmid} is locked (${vm.lock})` };
      assertOurs(config, node, vm);
      const snippet = recorded<SnippetsOutputs>(ctx, NODES_STEP.snippets, 'snippets').snippets[node.name]!;
      const have = await pve.vmConfig(vm.node, vm.vmid);
      const drift = configDrift(have, desiredVmConfig(config, node, snippet.volid));
      const size = driveSize(have.scsi0);
      if (drift.length) return { done: false, reason: `settings differ: ${drift.join(', ')}` };
      if (size === undefined || size < node.disk * GiB) return { done: false, reason: `disk is ${size === undefined ? 'unknown' : `${size / GiB} GiB`}, want ${node.disk} GiB` };
      const prev = ctx.outputs<NodeVmOutputs>(id);
      return { done: true, outputs: outputs(vm.node, prev?.pveNode === vm.node ? prev.createdAt : undefined), reason: `VM ${node.vmid} exists on ${vm.node} with the wanted settings` };
    },
    async run(ctx: StepContext): Promise<NodeVmOutputs> {
      const pve = await ctx.services.proxmox();
      const t = template(ctx);
      const host = recorded<PlacementOutputs>(ctx, NODES_STEP.placement, 'placement').placement[node.name]!;
      const snippet = recorded<SnippetsOutputs>(ctx, NODES_STEP.snippets, 'snippets').snippets[node.name]!;
      const onLog = (l: string) => ctx.log(l, 'debug');
      let vm = (await pve.vms()).find((v) => v.vmid === node.vmid);
      let createdAt = ctx.outputs<NodeVmOutputs>(id)?.createdAt;
      if (vm?.lock) {
        // Mid-clone (an interrupted run's task still going): wait for Proxmox to finish it.
        await waitUnlocked(ctx, pve, vm.node, vm.vmid);
        vm = (await pve.vms()).find((v) => v.vmid === node.vmid);
        if (vm && createdAt === undefined) createdAt = ctx.services.now();
      }
      if (vm) assertOurs(config, node, vm);
      if (!vm) {
        ctx.progress(`cloning ${t.templateName} → ${node.vmid}${host !== t.templateNode ? ` on ${host}` : ''}`);
        const params = {
          newid: node.vmid,
          name: node.name,
          description: nodeDescription(config, node, t, toolVersion()),
          full,
          ...(host !== t.templateNode ? { target: host } : {}),
          ...(full ? { storage: config.proxmox.storage.disks } : {}),
        };
        try {
          await withLockRetry(
            async () => {
              const upid = await pve.cloneVm(t.templateNode, t.templateVmid, params);
              await pve.waitTask(t.templateNode, upid, { signal: ctx.signal, onLog });
            },
            { signal: ctx.signal, onRetry: ({ attempt, delayMs }) => ctx.log(`Proxmox lock busy, retrying the clone (attempt ${attempt + 1}) in ${Math.round(delayMs / 100) / 10} s`, 'warn') },
          );
        } catch (err) {
          // An earlier, interrupted run may have started this very clone: then it is ours and we wait for it.
          if (!isVmidTaken(err)) throw err;
        }
        createdAt = ctx.services.now();
        vm = (await pve.vms()).find((v) => v.vmid === node.vmid);
        if (vm?.lock) {
          await waitUnlocked(ctx, pve, vm.node, vm.vmid);
          vm = (await pve.vms()).find((v) => v.vmid === node.vmid);
        }
        if (!vm) throw new RemoteError(`The clone of ${node.name} finished, but Proxmox lists no VM ${node.vmid}`, { fix: 'Look at the task log in the Proxmox UI, then run again.' });
        assertOurs(config, node, vm);
        ctx.log(`Cloned ${t.templateName} (VMID ${t.templateVmid}) into ${node.name} (VMID ${node.vmid}) on ${vm.node}${full ? ' (full clone)' : ' (linked clone)'}`);
      }
      const pveNode = vm.node;
      await waitUnlocked(ctx, pve, pveNode, node.vmid);

      const have = await pve.vmConfig(pveNode, node.vmid);
      const want = desiredVmConfig(config, node, snippet.volid);
      const drift = configDrift(have, want);
      if (drift.length) {
        const params: PveParams = {};
        for (const k of drift) params[k] = want[k];
        if (have.description === undefined || !String(have.description).includes(`flatcar-k3s node of cluster ${config.cluster.name}`)) params.description = nodeDescription(config, node, t, toolVersion());
        ctx.progress(`configuring ${drift.join(', ')}`);
        await withLockRetry(() => pve.updateVmConfig(pveNode, node.vmid, params), { signal: ctx.signal });
        ctx.log(`Set ${drift.join(', ')} of ${node.name}`);
        if (vm.status === 'running' && drift.some((k) => k === 'cores' || k === 'memory' || k === 'net0')) {
          ctx.log(`${node.name} is running: the new ${drift.filter((k) => ['cores', 'memory', 'net0'].includes(k)).join('/')} settings apply at its next reboot`, 'warn');
        }
      }
      const size = driveSize(have.scsi0);
      if (size === undefined || size < node.disk * GiB) {
        ctx.progress(`resizing the disk to ${node.disk} GiB`);
        await withLockRetry(
          async () => {
            const upid = await pve.resizeDisk(pveNode, node.vmid, 'scsi0', `${node.disk}G`);
            await pve.waitTask(pveNode, upid, { signal: ctx.signal, onLog });
          },
          { signal: ctx.signal },
        );
        ctx.log(`Disk of ${node.name} grown to ${node.disk} GiB (Flatcar grows its root filesystem at first boot)`);
      }
      return outputs(pveNode, createdAt);
    },
  };

  function outputs(pveNode: string, createdAt: number | undefined): NodeVmOutputs {
    return { vmid: node.vmid, pveNode, name: node.name, role: node.role, mac: node.mac, ...(createdAt ? { createdAt } : {}) };
  }
}

function assertOurs(config: Config, node: PlannedNode, vm: { vmid: number; name?: string; tags?: string; template: boolean; node: string }): void {
  const tags = splitTags(vm.tags);
  // A VM mid-clone has no tags yet; its name is set by the clone itself.
  const ours = vm.name === node.name && !vm.template && (tags.length === 0 || (tags.includes('flatcar-k3s') && tags.includes(config.cluster.name)));
  if (!ours) {
    throw new UserError(`VMID ${node.vmid} (planned for ${node.name}) is taken by another VM: "${vm.name ?? '?'}" on ${vm.node}${vm.template ? ' (a template)' : ''}`, {
      field: 'nodes.vmids',
      fix: `Choose a free VMID range in nodes.vmids (flatcar-k3s never touches VMs it did not create), or remove VM ${vm.vmid} yourself.`,
    });
  }
}

async function waitUnlocked(ctx: StepContext, pve: ProxmoxClient, pveNode: string, vmid: number): Promise<void> {
  await pollUntil(
    ctx,
    `VM ${vmid} to be unlocked`,
    async () => {
      const st = await pve.vmStatus(pveNode, vmid);
      return st.lock ? undefined : true;
    },
    { timeoutMs: 15 * 60_000, fix: `Look at the running task of VM ${vmid} in the Proxmox UI; if it is stuck, \`qm unlock ${vmid}\` on ${pveNode}, then run again.` },
  );
}
