/**
 * The demo guests' shared world: every node, the k3s clusters they formed, the DHCP leases, and the
 * simulated clock (scaled durations, sleeps and timers that all end on close). Saved through
 * guest-store.ts when a persist file is given: before every answer a client gets and on every k3s
 * state change, so a kill of the process loses nothing a client saw.
 */
import { GuestSaver, loadGuests } from './guest-store.js';
import type { DemoCluster, DemoNode } from './node.js';

export interface DemoGuestsOptions {
  /** Scales every simulated duration (1 = real time, 0.02 = 50× faster). */
  speed: number;
  sshPort: number;
  log?: (line: string) => void;
  /** Seconds from "VM started" to SSH and the guest agent answering (default 20, pve-timings.md). */
  bootSeconds?: number;
  /** Deterministic jitter (default: ±30 % around the medians, like pve-timings.md). */
  jitter?: number;
  /** First octets used for DHCP addresses (default 127.0.100.x – 127.0.199.x). */
  dhcpBase?: number;
  /**
   * Keep the nodes (identity, filesystem, k3s state, DHCP leases) in this file (guest-store.ts) and
   * continue from it: saved before every answer a client gets (command exit, SFTP reply) and on every
   * k3s state change, so a kill of the process loses nothing a client saw.
   */
  persistFile?: string;
}

/** An injected SSH fault: drop the connection when a command matching `match` runs on `node`. */
export interface DropFault {
  node: string;
  match: RegExp;
  when: 'before' | 'after';
  times: number;
}

/** A command that fails on a node (as a drain that times out would), `times` times. */
export interface CommandFault {
  node: string;
  match: RegExp;
  stderr: string;
  code: number;
  times: number;
}

export class DemoWorld {
  readonly log: (line: string) => void;
  readonly nodesByVmid: Map<number, DemoNode>;
  readonly addressByMac: Map<string, string>;
  readonly clusters: DemoCluster[];
  readonly drops: DropFault[] = [];
  readonly failures: CommandFault[] = [];
  dhcpNext: number;
  closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Pending sleeps end early (resolved) on close(), so nothing waits on a timer that was cleared. */
  private readonly wakers = new Set<() => void>();
  private readonly saver?: GuestSaver;
  private readonly saveTimer?: NodeJS.Timeout;

  constructor(readonly opts: DemoGuestsOptions) {
    this.log = opts.log ?? (() => {});
    const loaded = opts.persistFile ? loadGuests(opts.persistFile) : undefined;
    this.nodesByVmid = loaded?.nodesByVmid ?? new Map<number, DemoNode>();
    this.addressByMac = loaded?.addressByMac ?? new Map<string, string>();
    this.clusters = loaded?.clusters ?? [];
    this.dhcpNext = loaded?.dhcpNext ?? 0;
    if (opts.persistFile) {
      this.saver = new GuestSaver(opts.persistFile, this.log);
      this.saveTimer = setInterval(() => this.persist(), 250);
      this.saveTimer.unref();
    }
  }

  /** Save the nodes (when persisted): called before a client is answered and on k3s state changes. */
  persist(): void {
    if (!this.closed)
      this.saver?.save({
        nodesByVmid: this.nodesByVmid,
        clusters: this.clusters,
        addressByMac: this.addressByMac,
        dhcpNext: this.dhcpNext,
      });
  }

  /** Simulated seconds → wall milliseconds, with jitter around the median. */
  dur(seconds: number): number {
    const jitter = this.opts.jitter ?? 0.3;
    return Math.max(1, seconds * 1000 * this.opts.speed * (1 + (Math.random() * 2 - 1) * jitter));
  }

  /** Resolves after `ms` (already scaled), or at once when the world closes. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed) return resolve();
      const wake = () => {
        clearTimeout(t);
        this.timers.delete(t);
        this.wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.timers.add(t);
      this.wakers.add(wake);
    });
  }

  /** Run `fn` after `ms` unless the world closed first; the world is saved after it. */
  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.closed) return;
      fn();
      this.persist();
    }, ms);
    this.timers.add(t);
  }

  clusterAt(host: string): DemoCluster | undefined {
    return this.clusters.find((c) => c.addresses.has(host));
  }

  nodeByName(name: string): DemoNode | undefined {
    return [...this.nodesByVmid.values()].find((n) => n.name === name);
  }

  /** The last save, then no timer acts any more and every sleep ends. */
  close(): void {
    this.persist();
    if (this.saveTimer) clearInterval(this.saveTimer);
    this.closed = true;
    for (const wake of [...this.wakers]) wake();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
