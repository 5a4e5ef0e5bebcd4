/**
 * Demo Flatcar nodes: what the simulator's VMs "boot" into for --demo and the end-to-end tests.
 *
 * Each VM becomes an SSH server on its own loopback address (127.x.y.z, port `sshPort`) with its own
 * host key, reported to Proxmox through the guest agent. It accepts `core` with the keys from the
 * node's Ignition and nothing else, has SFTP into an in-memory filesystem, `sudo`, and the few commands
 * flatcar-k3s runs, including its k3s installer, simulated step by step with the same checks. The
 * parts, one job each:
 *   world.ts        nodes, clusters, DHCP leases, the scaled clock, persistence (guest-store.ts)
 *   node.ts         a node's data: identity, filesystem, units
 *   boot.ts         boot and resume of a VM
 *   ssh-server.ts   its SSH server (the shared src/sim/sshd.ts), exec and the injected faults
 *   sftp.ts         SFTP into its filesystem
 *   shell.ts        the exec line and the simple commands
 *   installer.ts    install-k3s.sh
 *   k3s-model.ts    the k3s server/agent lifecycle, etcd joins
 *   kubectl.ts      `k3s --version`, `k3s kubectl`
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../store/atomic.js';
import { demoFiles } from '../store/layout.js';
import { boot, resume } from './boot.js';
import { newHostKey, sshKeyPair, type DemoAgentInterface, type DemoNode, type DemoVm } from './node.js';
import { listen, stopNode } from './ssh-server.js';
import { DemoWorld, type DemoGuestsOptions } from './world.js';

export { DemoCluster, DemoNode, sshKeyPair, type DemoAgentInterface, type DemoClusterNode, type DemoVm } from './node.js';
export type { DemoGuestsOptions } from './world.js';

export interface DemoGuests {
  boot(vm: DemoVm): Promise<{ interfaces: DemoAgentInterface[] }>;
  stop(vm: DemoVm): Promise<void>;
  /** The simulator came back with its saved VMs: running ones resume at once (see GuestHooks.resume). */
  resume(vms: Array<DemoVm & { running: boolean }>): Promise<Map<number, { interfaces: DemoAgentInterface[] }>>;
  /** The VM was destroyed: forget its node (a new VM with its VMID is a new machine). */
  destroyed(vm: { vmid: number }): void;
  close(): Promise<void>;
  /** For tests: the node by VM name. */
  node(name: string): DemoNode | undefined;
  nodes(): DemoNode[];
  /** Inject SSH faults: drop the connection when a command matching `match` runs on `node`. */
  faults: {
    dropConnection(node: string, match: RegExp, when?: 'before' | 'after', times?: number): void;
    /** A command matching `match` on `node` fails with `stderr` and exit `code`, `times` times. */
    failCommand(node: string, match: RegExp, stderr: string, code?: number, times?: number): void;
    /** The node answers with a new host key from now on (as a re-installed or impostor machine would). */
    replaceHostKey(node: string): Promise<string>;
  };
}

export function createDemoGuests(opts: DemoGuestsOptions): DemoGuests {
  const w = new DemoWorld(opts);
  const byName = (name: string) => w.nodeByName(name);
  return {
    boot: (vm) => boot(w, vm),
    resume: (vms) => resume(w, vms),
    async stop(vm: DemoVm) {
      const node = w.nodesByVmid.get(vm.vmid);
      if (node) await stopNode(w, node);
    },
    destroyed(vm) {
      const node = w.nodesByVmid.get(vm.vmid);
      if (!node) return;
      w.nodesByVmid.delete(vm.vmid);
      void stopNode(w, node);
      w.persist();
    },
    async close() {
      // the nodes are saved as they run: stopping their servers here is the simulator going away, not a shutdown
      w.close();
      await Promise.all([...w.nodesByVmid.values()].map((n) => stopNode(w, n)));
    },
    node: byName,
    nodes: () => [...w.nodesByVmid.values()],
    faults: {
      dropConnection(node, match, when = 'after', times = 1) {
        w.drops.push({ node, match, when, times });
      },
      failCommand(node, match, stderr, code = 1, times = 1) {
        w.failures.push({ node, match, stderr, code, times });
      },
      async replaceHostKey(name) {
        const node = byName(name);
        if (!node) throw new Error(`no demo node ${name}`);
        const sshd = node.sshd;
        node.sshd = undefined;
        if (sshd) await sshd.close();
        node.hostKey = newHostKey();
        await listen(w, node);
        return node.hostKey.fingerprint;
      },
    },
  };
}

export interface DemoNodeOverridesOptions {
  stateDir: string;
  sshPort: number;
  /**
   * Put static layouts on loopback: cidr 127.0.50.0/24, gateway .1, first address .11 (the mode stays
   * what the config says, so DHCP layouts keep getting 127.x addresses from the demo guests).
   */
  staticNetwork: boolean;
  /** Give the control plane the loopback VIP 127.0.50.10 (needed by configs that have a VIP). */
  vip: boolean;
}

/**
 * The demo's `nodes` overrides: the nodes' SSH port, a demo identity (generated once in
 * <stateDir>/demo/, mode 0600) whose public key goes into the Ignition, and for static layouts a
 * loopback network (127.0.50.0/24) so no traffic leaves the machine. DHCP layouts get 127.x
 * addresses from the demo guests.
 */
export function demoNodeOverrides(o: DemoNodeOverridesOptions): { nodes: Record<string, unknown> } {
  const { dir, nodeKey: keyFile } = demoFiles(o.stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(keyFile) || !existsSync(`${keyFile}.pub`)) {
    const kp = sshKeyPair('flatcar-k3s-demo');
    writeFileAtomic(`${keyFile}.pub`, `${kp.public}\n`, 0o644);
    writeFileAtomic(keyFile, kp.private, 0o600);
  }
  chmodSync(keyFile, 0o600);
  const pub = readFileSync(`${keyFile}.pub`, 'utf8').trim();
  const nodes: Record<string, unknown> = { sshPort: o.sshPort, sshKeys: [pub], sshPrivateKeyFile: keyFile };
  if (o.staticNetwork) nodes.network = { cidr: '127.0.50.0/24', gateway: '127.0.50.1', firstAddress: '127.0.50.11', dns: [] };
  if (o.vip) nodes.vip = '127.0.50.10';
  return { nodes };
}
