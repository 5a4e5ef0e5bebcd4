/**
 * node:<name>:ssh: find the node's address (the static plan, or the guest agent's
 * network-get-interfaces for DHCP, polled while the VM boots) and log in as core. The host key seen on
 * first contact with a VM this tool has just created is trusted and pinned (`node-ssh:<name>`); from
 * then on any other key stops the run with a warning naming the node and both fingerprints.
 */
import type { Config } from '../../src/config/schema.js';
import type { PlannedNode } from '../../src/config/layout.js';
import { RemoteError } from '../../src/errors.js';
import { connectWithRetry } from '../../src/ssh/retry.js';
import type { SshTarget } from '../../src/ssh/types.js';
import type { PveAgentInterface } from '../../src/proxmox/types.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { NODES_STEP, addressOf, explainSshError, nodeIdentity, pinKeyOf, type NodeSshOutputs, type NodeVmOutputs } from './common.js';
import { pollUntil, recorded } from '../shared.js';

/** ssh steps waiting for their VM to boot, in this process (their polling interval grows with it). */
let booting = 0;

/** The IPv4 the guest agent reports on the NIC with `mac` (loopback interface excluded). */
export function agentAddress(ifaces: PveAgentInterface[], mac: string): string | undefined {
  const nic = ifaces.find((i) => i['hardware-address']?.toLowerCase() === mac.toLowerCase());
  const candidates = nic ? [nic] : ifaces.filter((i) => i.name !== 'lo');
  for (const i of candidates) {
    const a = i['ip-addresses']?.find(
      (x) => x['ip-address-type'] === 'ipv4' && x['ip-address'] !== '127.0.0.1' && !x['ip-address'].startsWith('169.254.'),
    );
    if (a) return a['ip-address'];
  }
  return undefined;
}

export function sshStep(config: Config, node: PlannedNode, _options: RunOptions): Step {
  const id = NODES_STEP.ssh(node.name);
  const port = config.nodes.sshPort;
  return {
    id,
    title: 'Reach it over SSH',
    group: node.name,
    needs: [NODES_STEP.start(node.name)],
    inputs: { address: node.address, port },
    describe: () =>
      `Wait for ${node.name} to boot, find its address (${addressOf(node) ?? 'guest agent'}) and log in as core on port ${port}, pinning its host key`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const prev = ctx.outputs<NodeSshOutputs>(id);
      const vm = recorded<NodeVmOutputs>(ctx, NODES_STEP.vm(node.name), 'VM');
      if (!prev?.hostKey || prev.port !== port) return { done: false };
      if (vm.createdAt !== undefined && prev.vmCreatedAt !== vm.createdAt) return { done: false, reason: 'the VM was re-created' };
      const address = await findAddress(ctx, vm, false);
      if (!address || address !== prev.address)
        return { done: false, reason: address ? `address changed to ${address}` : 'no address yet' };
      const pinned = ctx.services.pins.get(pinKeyOf(node.name)) || prev.hostKey;
      try {
        const target: SshTarget = {
          host: address,
          port,
          username: 'core',
          label: node.name,
          hostKeyFingerprint: pinned,
          ...nodeIdentity(ctx),
          readyTimeoutMs: 10_000,
        };
        const connect = () => ctx.services.ssh.connect(target, { signal: ctx.signal });
        // Through the run's pool: the connection that proves the node answers serves the next steps too.
        const s = ctx.services.sshPool ? await ctx.services.sshPool.get(target, connect) : await connect();
        await s.close();
      } catch (err) {
        const e = explainSshError(err, node.name);
        if (e !== err) throw e; // host key changed / login refused: the user must know, now
        return { done: false, reason: `SSH to ${address}: ${(err as Error).message}` };
      }
      return { done: true, outputs: { ...prev, hostKey: pinned }, reason: `core@${address} answers with the pinned host key` };
    },
    async run(ctx: StepContext): Promise<NodeSshOutputs> {
      const vm = recorded<NodeVmOutputs>(ctx, NODES_STEP.vm(node.name), 'VM');
      const address = (await findAddress(ctx, vm, true))!;
      const prev = ctx.outputs<NodeSshOutputs>(id);
      const pinKey = pinKeyOf(node.name);
      let pinned = ctx.services.pins.get(pinKey) || undefined;
      const recreated = vm.createdAt !== undefined && prev?.vmCreatedAt !== vm.createdAt;
      if (pinned && recreated) {
        ctx.log(`${node.name} was re-created by this run: its new host key replaces the pinned ${pinned}`, 'warn');
        pinned = undefined;
      }
      let trusted = false;
      const target: SshTarget = {
        host: address,
        port,
        username: 'core',
        label: node.name,
        hostKeyFingerprint: pinned,
        forgetPinHint: `\`flatcar-k3s forget-host-key ${node.name}\` (or remove the pin ${pinKey} from the state)`,
        onNewHostKey: (fp) => {
          // Trust on first contact only for a VM we created (cloned from our template, our snippet).
          trusted = true;
          ctx.services.pins.set(pinKey, fp);
          ctx.log(`Trusting the host key of ${node.name} on first contact (a VM flatcar-k3s just created): ${fp}`);
          return true;
        },
        ...nodeIdentity(ctx),
      };
      const started = ctx.services.now();
      let session;
      try {
        const connect = () =>
          connectWithRetry(ctx.services.ssh, target, {
            signal: ctx.signal,
            timeoutMs: 10 * 60_000,
            // A booting VM refuses or does not answer yet: trying often costs little and notices it at once.
            // Every 5 % of the time waited, 10–100 ms (a refused connection is one round trip; a late
            // notice delays k3s); with many VMs booting at once the shortest interval grows (CPU, SSH).
            initialDelayMs: 10,
            nextDelayMs: (waited) => Math.min(100, Math.max(10 * Math.max(1, booting / 20), waited * 0.05)),
            onWait: () =>
              ctx.progress(
                `waiting for SSH on ${address}:${port} while ${node.name} boots (${Math.round((ctx.services.now() - started) / 1000)} s)`,
              ),
          });
        // Waiting for a VM to boot loads neither Proxmox nor the node: it does not hold a --parallel place.
        booting++;
        try {
          session = await (ctx.idle ? ctx.idle(connect) : connect());
        } finally {
          booting--;
        }
      } catch (err) {
        throw explainSshError(err, node.name);
      }
      const hostKey = session.hostKeyFingerprint;
      // The next steps on this node (k3s binary, k3s) use this very connection.
      if (ctx.services.sshPool) ctx.services.sshPool.adopt(target, session);
      else await session.close();
      ctx.log(`core@${address}:${port} is up (${node.name}, host key ${hostKey})`);
      return {
        address,
        port,
        hostKey,
        addressSource: addressOf(node) ? 'static' : 'guest-agent',
        trustedOnFirstContact: trusted || (prev?.trustedOnFirstContact ?? false),
        ...(vm.createdAt !== undefined ? { vmCreatedAt: vm.createdAt } : {}),
      };
    },
  };

  async function findAddress(ctx: StepContext, vm: NodeVmOutputs, wait: boolean): Promise<string | undefined> {
    const planned = addressOf(node);
    if (planned) return planned;
    const pve = await ctx.services.proxmox();
    const probe = async () => {
      try {
        return agentAddress(await pve.agentInterfaces(vm.pveNode, vm.vmid), node.mac);
      } catch {
        return undefined; // the agent is not running yet
      }
    };
    if (!wait) return probe();
    return pollUntil(ctx, `the guest agent of ${node.name} to report an address`, probe, {
      timeoutMs: 10 * 60_000,
      fix: `Open the console of VM ${vm.vmid} in Proxmox: did Flatcar boot and get a DHCP lease? qemu-guest-agent must not be masked.`,
    }).catch((err) => {
      throw err instanceof RemoteError ? err : new RemoteError(String(err));
    });
  }
}
