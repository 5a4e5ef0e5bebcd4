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

/** The modelled world of an e2e run: the demo Flatcar guests, the Proxmox simulator they boot on, its mirrors. */
export async function startE2eWorld(o: E2eOptions, sshPort: number) {
  const speed = o.speed ?? 0.01;
  const guests = createDemoGuests({ speed, sshPort, log: (l) => (/failed to boot/.test(l) ? console.error(l) : undefined) });
  const sim = await startSimulator({
    speed,
    pveNodes: o.pveNodes ?? 1,
    guest: guests,
    ...(o.sharedStorage ? { sharedStorage: true } : {}),
    ...(o.pveVersion ? { pveVersion: o.pveVersion } : {}),
  });
  const mirrors = deepMerge(fillFlatcarMirror(sim.mirror as never), fillK3sMirror(sim.mirror)) as Record<string, unknown>;
  return { sim, guests, proxmox: sim.proxmoxConfig() as Record<string, unknown>, mirrors };
}

/** The config of an e2e run: the preset moved onto the world's loopback addresses (proxmox, mirrors, demo nodes). */
export function e2eConfig(
  o: E2eOptions,
  world: { proxmox: Record<string, unknown>; mirrors: Record<string, unknown> },
  stateDir: string,
  sshPort: number,
): { raw: Record<string, unknown>; config: Config } {
  const preset = resolveConfig(
    { preset: o.preset, proxmox: { url: 'https://x:8006', tokenId: 'a@pam!b', tokenSecret: '00000000-0000-0000-0000-000000000000' } },
    { env: {} },
  );
  const raw = deepMerge(
    deepMerge(
      deepMerge({ preset: o.preset }, world.proxmox),
      deepMerge(world.mirrors, demoNodeOverrides({ stateDir, sshPort, staticNetwork: true, vip: !!preset.nodes.vip })),
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
  return { raw, config: resolveConfig(raw, { env: {} }) };
}

/** `up` as the CLI runs it (ClusterRun over buildSteps), recording its events into `events`. */
export function e2eUp(config: Config, stateDir: string, homeDir: string, events: RunEvent[]): E2eEnv['up'] {
  return async (u = {}) => {
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
  };
}

/** A free-looking port for the demo nodes' SSH: below the ephemeral range (32768+), so no outgoing connection holds it. */
export const e2eSshPort = () => 20000 + Math.floor(Math.random() * 12000);

export async function startE2e(o: E2eOptions): Promise<E2eEnv> {
  const sshPort = e2eSshPort();
  const stateDir = mkdtempSync(join(tmpdir(), 'e2e-state-'));
  const homeDir = mkdtempSync(join(tmpdir(), 'e2e-home-'));
  const world = await startE2eWorld(o, sshPort);
  const { sim, guests } = world;
  const { raw, config } = e2eConfig(o, world, stateDir, sshPort);
  const events: RunEvent[] = [];
  return {
    sim,
    guests,
    config,
    raw,
    stateDir,
    homeDir,
    events,
    up: e2eUp(config, stateDir, homeDir, events),
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
