/**
 * The demo: a simulated Proxmox VE in this process (src/sim), a loopback mirror filled with fake
 * release files, simulated Flatcar guests, and the config overrides that point a cluster config at
 * all of it. Used by `up --demo` and `flatcar-k3s demo-server`. Nothing leaves 127.0.0.0/8.
 *
 * Two extension points, each filled with a one-line edit below:
 *  - mirrorFillers: put release files on the mirror and return the config overrides that point at them
 *    (H5: Flatcar releases feed + image + DIGESTS; H6: k3s release files).
 *  - guestFactory: the simulated guests the VMs boot into (H6: createDemoGuests from ./flatcar-node.js),
 *    with the `nodes` overrides they need (SSH port, demo identity).
 * Overrides from every piece are deep-merged (objects merge, arrays and scalars replace) in order:
 * proxmox block first, then each filler, then the guests.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { isAtomicTemp, writeFileAtomic } from '../store/atomic.js';
import { demoFiles } from '../store/layout.js';
import type { GuestHooks, SimOptions, Simulator } from '../sim/index.js';

export type DemoOverrides = Record<string, unknown>;

export interface DemoMirror {
  /** http://127.0.0.1:<port> */
  url: string;
  put(path: string, data: string | Buffer, contentType?: string): void;
  /** 302 from path to location (e.g. a release channel URL to its release) */
  redirect(path: string, location: string): void;
}

export interface DemoContext {
  stateDir: string;
  speed: number;
  log: (line: string) => void;
  /** <stateDir>/demo: where a persisted demo keeps its world */
  dir: string;
  /** keep the world in `dir` and continue it on the next start */
  persist: boolean;
}

/** Puts files on the mirror; returns the config overrides that use them (or nothing). */
export type MirrorFiller = (mirror: DemoMirror, ctx: DemoContext) => Promise<DemoOverrides | void> | DemoOverrides | void;

/** Creates the guests VMs boot into, with the overrides they need and a close(). */
export type GuestFactory = (
  ctx: DemoContext,
) =>
  | Promise<{ hooks: GuestHooks; overrides?: DemoOverrides; close?(): Promise<void> }>
  | { hooks: GuestHooks; overrides?: DemoOverrides; close?(): Promise<void> };

// ── Extension point 1: mirror fillers ────────────────────────────────────────────────────────────
const mirrorFillers: MirrorFiller[] = [
  /* H5: Flatcar feed+image */ async (m) => (await import('../flatcar/demo-mirror.js')).fillFlatcarMirror(m),
  /* H6: k3s release */ async (m) => ({ ...(await import('../k3s/demo-mirror.js')).fillK3sMirror(m) }),
];

// ── Extension point 2: demo guests ───────────────────────────────────────────────────────────────
// H6: createDemoGuests (./flatcar-node.js) + demoNodeOverrides. Without a factory, the simulator's
// default guests boot and report an address, but nothing answers SSH.
const guestFactory: GuestFactory | undefined = async (ctx) => {
  const { createDemoGuests, demoNodeOverrides } = await import('./flatcar-node.js');
  // the nodes' SSH port is part of the config (nodes.sshPort): a persisted demo keeps it
  const settings = ctx.persist ? readSettings(ctx.stateDir) : undefined;
  const sshPort = settings?.sshPort ?? (await freeDemoPort());
  if (ctx.persist && settings?.sshPort !== sshPort)
    writeFileAtomic(demoFiles(ctx.stateDir).settings, JSON.stringify({ ...settings, sshPort }), 0o600);
  const guests = createDemoGuests({
    speed: ctx.speed,
    sshPort,
    log: ctx.log,
    ...(ctx.persist ? { persistFile: demoFiles(ctx.stateDir).guests } : {}),
  });
  return {
    hooks: guests,
    overrides: demoNodeOverrides({ stateDir: ctx.stateDir, sshPort, staticNetwork: true, vip: true }),
    close: () => guests.close(),
  };
};

/**
 * A port for the demo nodes' SSH servers: 20000–32000, below Linux's ephemeral range (32768+, see
 * /proc/sys/net/ipv4/ip_local_port_range) so no outgoing connection of this machine can be holding
 * it, and one nothing listens on now (tried on loopback; a few random draws).
 */
export async function freeDemoPort(tries = 20): Promise<number> {
  let port = 20000;
  for (let i = 0; i < tries; i++) {
    port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  return port;
}

/**
 * The demo's time scale from FLATCAR_K3S_DEMO_SPEED (1 = real Proxmox timings, 0 = instant; default
 * 0.05, so a demo cluster takes seconds): undefined when unset.
 */
export function demoSpeedFromEnv(env: Record<string, string | undefined>): number | undefined {
  const v = env.FLATCAR_K3S_DEMO_SPEED;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 100) {
    throw new UserError(`FLATCAR_K3S_DEMO_SPEED must be a number from 0 to 100 (given "${v}")`, {
      field: 'FLATCAR_K3S_DEMO_SPEED',
      fix: 'Unset it for the default 0.05, or set e.g. FLATCAR_K3S_DEMO_SPEED=0.01 for a faster demo.',
    });
  }
  return n;
}

/**
 * One process at a time runs a persisted demo world (two would overwrite each other's saves): claim it
 * with <dir>/in-use holding our pid; a file left by a process that is gone (killed) is taken over.
 * Returns the release.
 */
function claimWorld(stateDir: string): () => void {
  const { dir, inUse: file } = demoFiles(stateDir);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new UserError(`the demo in ${dir} is in use by another flatcar-k3s (pid ${pid})`, {
          fix: 'Wait for it to finish (or stop it), or give this demo its own --state-dir.',
        });
      }
      rmSync(file, { force: true });
    }
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    rmSync(file, { force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The persisted demo's own choices (demo.json). */
function readSettings(stateDir: string): { sshPort?: number } | undefined {
  try {
    const s = JSON.parse(readFileSync(demoFiles(stateDir).settings, 'utf8')) as { sshPort?: unknown };
    return typeof s.sshPort === 'number' && Number.isInteger(s.sshPort) && s.sshPort > 0 && s.sshPort < 65536 ? { sshPort: s.sshPort } : {};
  } catch {
    return undefined;
  }
}

export interface DemoOptions {
  stateDir: string;
  /**
   * Keep the demo's world in <stateDir>/demo/ and continue it on the next start with the same state
   * dir (default true): the simulated Proxmox (sim.json, pve/<node>/), the nodes (guests.json) and the
   * demo's settings (demo.json). Delete <stateDir>/demo to start the demo over.
   */
  persist?: boolean;
  /** 1 = real Proxmox timings; default 0.05 so a demo cluster takes about a minute */
  speed?: number;
  pveNodes?: number;
  log?: (line: string) => void;
  /** Extra simulator options (demo-server: port, version, faults). */
  sim?: Pick<SimOptions, 'port' | 'pveVersion' | 'faults' | 'seed' | 'host' | 'sharedStorage'>;
}

export interface Demo {
  overrides: DemoOverrides;
  /** The running simulator (URL, token, fingerprint, SSH access, inspection). */
  sim: Simulator;
  close(): Promise<void>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars from `b` replace. */
export function mergeOverrides(a: DemoOverrides, b: DemoOverrides): DemoOverrides {
  const out: DemoOverrides = { ...a };
  for (const [k, v] of Object.entries(b))
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeOverrides(out[k] as DemoOverrides, v) : v;
  return out;
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const speed = opts.speed ?? 0.05;
  const log = opts.log ?? (() => {});
  const files = demoFiles(opts.stateDir);
  const dir = files.dir;
  const persist = opts.persist ?? true;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const releaseWorld = persist ? claimWorld(opts.stateDir) : () => {};
  // temp files of saves a kill cut short (the saved files themselves are whole: rename is atomic)
  const saved = [files.simWorld, files.guests, files.settings].map((f) => basename(f));
  for (const f of readdirSync(dir)) if (saved.some((s) => isAtomicTemp(f, s))) rmSync(join(dir, f), { force: true });
  // nodes without the Proxmox they ran on are no world to continue: start both fresh
  if (persist && !existsSync(files.simWorld)) rmSync(files.guests, { force: true });
  const ctx: DemoContext = { stateDir: opts.stateDir, speed, log, dir, persist };
  const { startSimulator } = await import('../sim/index.js');
  let guests: Awaited<ReturnType<GuestFactory>> | undefined;
  try {
    guests = guestFactory ? await guestFactory(ctx) : undefined;
  } catch (e) {
    releaseWorld();
    throw e;
  }
  let sim: Simulator;
  try {
    sim = await startSimulator({
      ...opts.sim,
      speed,
      pveNodes: opts.pveNodes ?? 1,
      guest: guests?.hooks,
      log,
      ...(persist ? { persistDir: dir } : {}),
    });
  } catch (e) {
    await guests?.close?.();
    releaseWorld();
    throw e;
  }
  try {
    // the PVE host's SSH key lives with the demo state, 0600, like any private key the tool uses
    let overrides = sim.proxmoxConfig();
    if (sim.ssh) {
      const keyFile = files.pveHostKey;
      writeFileAtomic(keyFile, sim.ssh.privateKey, 0o600);
      overrides = mergeOverrides(overrides, { proxmox: { ssh: { privateKeyFile: keyFile } } });
    }
    log(
      `simulated Proxmox VE ${sim.state.version} at ${sim.url} (nodes ${sim.nodes.join(', ')}, speed ${speed}${sim.resumed ? `; continuing the world saved in ${dir}` : ''})`,
    );
    for (const fill of mirrorFillers) {
      const o = await fill(sim.mirror, ctx);
      if (o) overrides = mergeOverrides(overrides, o);
    }
    if (guests?.overrides) overrides = mergeOverrides(overrides, guests.overrides);
    return {
      overrides,
      sim,
      async close() {
        await sim.close();
        await guests?.close?.();
        releaseWorld();
      },
    };
  } catch (e) {
    await sim.close();
    await guests?.close?.();
    releaseWorld();
    throw e;
  }
}
