/**
 * End-to-end environment for test/e2e*.test.ts and the benchmark: the Proxmox simulator whose VMs boot
 * into demo Flatcar nodes (src/demo/flatcar-node.ts), mirrors for Flatcar and k3s, a config from a
 * preset moved onto loopback, and `up()` running the real runner (ClusterRun) over buildSteps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { createDemoGuests, demoNodeOverrides, type DemoGuests } from '../src/demo/flatcar-node.js';
import { fillFlatcarMirror } from '../src/flatcar/demo-mirror.js';
import { fillK3sMirror } from '../src/k3s/demo-mirror.js';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { ClusterRun } from '../src/runner/session.js';
import type { RunResult } from '../src/runner/driver.js';
import { RunEvents, type RunEvent } from '../src/events.js';
import type { RunOptions } from '../steps/types.js';

export interface E2eOptions {
  preset: 'homelab' | 'ha';
  pveNodes?: number;
  speed?: number;
  /** Extra config (deep-merged last). */
  config?: Record<string, unknown>;
  /** Give the simulator its shared storage `nfs` and put disks, images and snippets there (one template for all hosts). */
  sharedStorage?: boolean;
  /** The simulated Proxmox VE version (default: the simulator's). */
  pveVersion?: string;
}

export interface E2eEnv {
  sim: Simulator;
  guests: DemoGuests;
  config: Config;
  raw: Record<string, unknown>;
  stateDir: string;
  homeDir: string;
  events: RunEvent[];
  up(o?: {
    options?: Partial<RunOptions>;
    signal?: AbortSignal;
    config?: Config;
    onEvent?: (e: RunEvent, abort: () => void) => void;
  }): Promise<RunResult>;
  /** Requests since `mark` that change something on Proxmox. */
  changingSince(mark: number): string[];
  close(): Promise<void>;
}

export async function startE2e(o: E2eOptions): Promise<E2eEnv> {
  const speed = o.speed ?? 0.01;
  // Below the ephemeral port range (32768+), so no outgoing connection can hold it.
  const sshPort = 20000 + Math.floor(Math.random() * 12000);
  const stateDir = mkdtempSync(join(tmpdir(), 'e2e-state-'));
  const homeDir = mkdtempSync(join(tmpdir(), 'e2e-home-'));
  const guests = createDemoGuests({ speed, sshPort, log: (l) => (/failed to boot/.test(l) ? console.error(l) : undefined) });
  const sim = await startSimulator({
    speed,
    pveNodes: o.pveNodes ?? 1,
    guest: guests,
    ...(o.sharedStorage ? { sharedStorage: true } : {}),
    ...(o.pveVersion ? { pveVersion: o.pveVersion } : {}),
  });
  const mirrors = deepMerge(fillFlatcarMirror(sim.mirror as never), fillK3sMirror(sim.mirror));
  const preset = resolveConfig(
    { preset: o.preset, proxmox: { url: 'https://x:8006', tokenId: 'a@pam!b', tokenSecret: '00000000-0000-0000-0000-000000000000' } },
    { env: {} },
  );
  const raw = deepMerge(
    deepMerge(
      deepMerge({ preset: o.preset }, sim.proxmoxConfig()),
      deepMerge(mirrors, demoNodeOverrides({ stateDir, sshPort, staticNetwork: true, vip: !!preset.nodes.vip })),
    ),
    // The cluster apps need the Pulumi CLI (not installed here) and are tested on their own.
    deepMerge(
      {
        apps: { pulumiOperator: false, kured: false, piraeus: false, certManager: false, systemUpgradeController: false },
        ...(o.sharedStorage ? { proxmox: { storage: { disks: 'nfs', images: 'nfs', snippets: 'nfs' } } } : {}),
      },
      o.config ?? {},
    ),
  ) as Record<string, unknown>;
  const config = resolveConfig(raw, { env: {} });
  const events: RunEvent[] = [];
  return {
    sim,
    guests,
    config,
    raw,
    stateDir,
    homeDir,
    events,
    async up(u = {}) {
      const ev = new RunEvents();
      const ac = new AbortController();
      const signal = u.signal ? AbortSignal.any([u.signal, ac.signal]) : ac.signal;
      ev.onEvent((e) => {
        events.push(e);
        u.onEvent?.(e, () => ac.abort());
      });
      const run = await ClusterRun.open({
        config: u.config ?? config,
        stateDir,
        options: { parallel: 8, yes: true, homeDir, ...u.options },
        env: {},
        events: ev,
      });
      try {
        return await run.execute(signal, 'up');
      } finally {
        run.close();
      }
    },
    changingSince: (mark) =>
      sim
        .requests()
        .slice(mark)
        .filter((q) => q.method !== 'GET' && q.path !== '/access/ticket')
        .map((q) => `${q.method} ${q.path}`),
    async close() {
      await guests.close();
      await sim.close();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(homeDir, { recursive: true, force: true });
    },
  };
}
