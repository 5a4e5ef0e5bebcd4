/**
 * A Proxmox VE simulator: HTTPS API validated against the official schema, tasks, locks, latency,
 * faults, the PVE host's SSH (SFTP for snippets) and a plain-HTTP mirror. See docs/simulator.md.
 *
 *   const sim = await startSimulator({ speed: 0.01 });
 *   // sim.url, sim.fingerprint, sim.token …; sim.proxmoxConfig() is the `proxmox:` block of a config
 *   await sim.close();
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realpathSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { AuthService } from './auth.js';
import { clusterHandlers } from './api/cluster.js';
import type { SimContext } from './api/context.js';
import { defaultGuestAddress, qemuHandlers } from './api/qemu.js';
import { readUserSnippet } from './api/vm-config.js';
import { storageHandlers } from './api/storage.js';
import { Faults, applyFaultSpec } from './faults.js';
import { LatencyModel, sleep } from './latency.js';
import { LockTable } from './locks.js';
import { startMirror } from './mirror.js';
import { loadApiSchema } from './schema/index.js';
import { createApiServer } from './server.js';
import {
  SimPersister,
  loadSimWorld,
  nodeStorageDir,
  recoverAfterCrash,
  restoreState,
  sharedStorageDir,
  snapshotState,
  type SavedSimWorld,
} from './persist.js';
import { startSshHost, type SshHost } from './ssh-host.js';
import { SHARED_STORAGE, SimState } from './state.js';
import { TaskRegistry } from './tasks.js';
import { makeSelfSignedCert } from './tls.js';
import type { SimVm } from './state.js';
import type { GuestHooks, SimOptions, SimRequest, SimSsh, Simulator } from './types.js';

export type * from './types.js';
export { defaultGuestAddress } from './api/qemu.js';

/** Guest hooks used when none are given: boot after the model's boot delay, report eth0 with an IPv4. */
export function defaultGuestHooks(latency: LatencyModel): GuestHooks {
  return {
    async boot(vm) {
      await sleep(latency.ms('boot', vm.node));
      const { ip, prefix } = defaultGuestAddress(vm);
      const mac = /=([0-9A-Fa-f:]{17})/.exec(String(vm.config.net0 ?? ''))?.[1]?.toLowerCase();
      return {
        interfaces: [
          {
            name: 'lo',
            'hardware-address': '00:00:00:00:00:00',
            'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }],
          },
          {
            name: 'eth0',
            ...(mac ? { 'hardware-address': mac } : {}),
            'ip-addresses': [{ 'ip-address': ip, 'ip-address-type': 'ipv4', prefix }],
          },
        ],
      };
    },
  };
}

/** Listen on the preferred port; when a saved port is taken now, on a free one. */
async function listenPreferring<T>(preferred: number | undefined, fallback: boolean, start: (port: number) => Promise<T>): Promise<T> {
  try {
    return await start(preferred ?? 0);
  } catch (e) {
    if (!fallback || !preferred || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    return start(0);
  }
}

/** Where the simulated world lives: a persisted directory (and what was saved there) or temp dirs. */
function prepareWorld(opts: SimOptions) {
  let persistDir: string | undefined;
  if (opts.persistDir) {
    mkdirSync(opts.persistDir, { recursive: true, mode: 0o700 });
    chmodSync(opts.persistDir, 0o700);
    persistDir = realpathSync(opts.persistDir);
  }
  const saved = persistDir ? loadSimWorld(persistDir) : undefined;
  const version = saved?.pveVersion ?? opts.pveVersion ?? '8.4.1';
  const ownRoot = !opts.storageRoot && !persistDir;
  let storageRoot: string;
  if (persistDir) {
    storageRoot = nodeStorageDir(persistDir, saved?.nodes[0] ?? 'pve1');
    mkdirSync(storageRoot, { recursive: true });
    storageRoot = realpathSync(storageRoot);
  } else {
    storageRoot = realpathSync(opts.storageRoot ?? mkdtempSync(join(tmpdir(), 'pve-sim-storage-')));
  }
  // the shared storage: asked for, or part of the saved world (a world keeps what it had)
  const wantShared = opts.sharedStorage || !!saved?.storages.some((st) => st.storage === SHARED_STORAGE);
  const ownShared = wantShared && !persistDir;
  let sharedRoot: string | undefined;
  if (wantShared) {
    sharedRoot = persistDir ? sharedStorageDir(persistDir) : mkdtempSync(join(tmpdir(), 'pve-sim-nfs-'));
    mkdirSync(sharedRoot, { recursive: true });
    sharedRoot = realpathSync(sharedRoot);
  }
  return { persistDir, saved, version, storageRoot, ownRoot, sharedRoot, ownShared };
}

/** Saves the whole world (VMs, ports, certificate, secrets, keys, task counters) to `persistDir`. */
function worldPersister(
  persistDir: string,
  w: {
    state: SimState;
    ctx: SimContext;
    cert: { certPem: string; keyPem: string; fingerprint: string };
    apiPort: number;
    mirrorUrl: string;
    sshHosts: Awaited<ReturnType<typeof startNodeSshHosts>>;
  },
  simLog: (line: string) => void,
): SimPersister {
  const { state, ctx, cert, sshHosts } = w;
  const sshHost = sshHosts[0];
  const mirrorPort = Number(new URL(w.mirrorUrl).port);
  return new SimPersister(
    persistDir,
    () => ({
      format: 1,
      ...snapshotState(state),
      ports: {
        api: w.apiPort,
        mirror: mirrorPort,
        ...(sshHost ? { ssh: sshHost.port, sshNodes: Object.fromEntries(state.nodes.map((n, i) => [n, sshHosts[i]!.port])) } : {}),
      },
      tls: { certPem: cert.certPem, keyPem: cert.keyPem, fingerprint: cert.fingerprint },
      auth: ctx.auth.secrets(),
      ...(sshHost
        ? {
            ssh: {
              hostKey: sshHost.hostPrivateKey,
              clientKey: sshHost.privateKey,
              nodeHostKeys: Object.fromEntries(state.nodes.map((n, i) => [n, sshHosts[i]!.hostPrivateKey])),
            },
          }
        : {}),
      tasks: ctx.tasks.counters(),
    }),
    simLog,
  );
}

/** In-process fault injection (the same specs as `demo-server --fail`). */
function faultHandle(faults: Faults, latency: LatencyModel): Simulator['faults'] {
  return {
    failRequest: (s) => faults.failRequest(s),
    failTask: (s) => faults.failTask(s),
    dropConnection: (s) => faults.dropConnection(s),
    slowNode: (n, f) => latency.slowNode(n, f),
    clear: () => {
      faults.clear();
      latency.clearSlow();
    },
    add: (s) => applyFaultSpec(s, faults, (n, f) => latency.slowNode(n, f)),
  };
}

/** The `proxmox:` section of a config for `up` against this simulator. */
function simProxmoxConfig(
  url: string,
  ctx: SimContext,
  fingerprint: string,
  state: SimState,
  ssh: Simulator['ssh'],
  sshNodes: Simulator['sshNodes'],
): ReturnType<Simulator['proxmoxConfig']> {
  return {
    proxmox: {
      url,
      tokenId: ctx.auth.token.tokenId,
      tokenSecret: ctx.auth.token.tokenSecret,
      fingerprint,
      nodes: [...state.nodes],
      storage: { disks: 'local-lvm', images: 'local', snippets: 'local' },
      bridge: 'vmbr0',
      ...(ssh
        ? {
            ssh: {
              host: ssh.host,
              port: ssh.port,
              user: ssh.user,
              privateKeyFile: ssh.privateKeyPath,
              hostKey: ssh.hostKeyFingerprint,
              ...nodeSshConfig(state, sshNodes, ssh),
            },
          }
        : {}),
    },
  };
}

export async function startSimulator(opts: SimOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1';
  const simLog = opts.log ?? (() => {});
  const { persistDir, saved, version, storageRoot, ownRoot, sharedRoot, ownShared } = prepareWorld(opts);
  const nodeRoot = persistDir ? (n: string) => nodeStorageDir(persistDir, n) : undefined;
  const state = new SimState(saved?.nodes.length ?? opts.pveNodes ?? 1, storageRoot, version, nodeRoot, sharedRoot);
  if (opts.localContent) state.storages.get('local')!.content = [...opts.localContent];
  if (saved) {
    restoreState(state, saved);
    for (const l of recoverAfterCrash(state)) simLog(`simulator restart: ${l}`);
  }
  const faults = new Faults();
  const latency = new LatencyModel(opts.speed ?? 0.01, opts.seed ?? 1);
  for (const spec of opts.faults ?? []) applyFaultSpec(spec, faults, (n, f) => latency.slowNode(n, f));
  const background = new Set<Promise<unknown>>();
  const ctx: SimContext = {
    state,
    tasks: new TaskRegistry(faults),
    locks: new LockTable(),
    latency,
    faults,
    auth: new AuthService(saved?.auth),
    schema: loadApiSchema(),
    guest: opts.guest ?? defaultGuestHooks(latency),
    track(p) {
      background.add(p);
      void p.finally(() => background.delete(p));
    },
  };
  ctx.auth.pveVersion = version;
  if (saved) ctx.tasks.restoreCounters(saved.tasks);
  const requestLog: SimRequest[] = [];
  const cert =
    saved?.tls ??
    makeSelfSignedCert(state.nodes[0]!, [
      'IP:127.0.0.1',
      'IP:::1',
      'DNS:localhost',
      ...state.nodes.map((n) => `DNS:${n}`),
      ...(host !== '127.0.0.1' ? [`IP:${host}`] : []),
    ]);
  state.sslFingerprint = cert.fingerprint;
  let persister: SimPersister | undefined;
  // a persisted world is saved before every answer: whatever a client was told survives a kill
  const server = createApiServer({
    ctx,
    handlers: { ...clusterHandlers, ...storageHandlers, ...qemuHandlers },
    cert,
    log: requestLog,
    beforeReply: () => persister?.save(),
  });
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (saved) await resumeGuests(ctx, state);
  await listenPreferring(
    opts.port ?? saved?.ports.api,
    opts.port === undefined,
    (p) =>
      new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(p, host, () => {
          server.off('error', rej);
          res();
        });
      }),
  );
  const port = (server.address() as AddressInfo).port;
  if (saved && saved.ports.api !== port) simLog(`the saved API port ${saved.ports.api} is taken; the simulator now answers on ${port}`);
  const mirror = await listenPreferring(saved?.ports.mirror, true, (p) => startMirror(host, p));
  const keyDir = mkdtempSync(join(tmpdir(), 'pve-sim-ssh-'));
  const sshHosts = opts.sshHost === false ? [] : await startNodeSshHosts({ state, host, version, saved, sharedRoot });
  const sshHost = sshHosts[0];
  let ssh: Simulator['ssh'];
  const sshNodes: Simulator['sshNodes'] = {};
  if (sshHost) {
    const privateKeyPath = join(keyDir, 'id_ed25519');
    writeFileSync(privateKeyPath, sshHost.privateKey, { mode: 0o600 });
    state.nodes.forEach((n, i) => {
      const h = sshHosts[i]!;
      state.addresses.set(n, h.host);
      sshNodes[n] = {
        host: h.host,
        port: h.port,
        user: h.user,
        privateKey: h.privateKey,
        privateKeyPath,
        hostKeyFingerprint: h.hostKeyFingerprint,
      };
    });
    ssh = sshNodes[state.nodes[0]!];
  } else {
    state.nodes.forEach((n, i) => state.addresses.set(n, nodeAddress(host, i)));
  }
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closed = false;
  if (persistDir) {
    persister = worldPersister(persistDir, { state, ctx, cert, apiPort: port, mirrorUrl: mirror.url, sshHosts }, simLog);
    persister.start();
  }

  return {
    url,
    fingerprint: cert.fingerprint,
    certPem: cert.certPem,
    node: state.nodes[0]!,
    nodes: [...state.nodes],
    token: { ...ctx.auth.token },
    limitedToken: { ...ctx.auth.limitedToken },
    addToken: (name, privs) => ctx.auth.addToken(name, privs),
    login: { ...ctx.auth.login },
    ssh,
    sshNodes,
    storageRoot,
    resumed: !!saved,
    save: () => persister?.save(),
    mirror: { url: mirror.url, put: (p, d, t) => mirror.put(p, d, t), redirect: (p, l) => mirror.redirect(p, l) },
    requests: () => requestLog.map((r) => ({ ...r, params: { ...r.params } })),
    tasks: () => ctx.tasks.all().map((t) => ({ ...t, log: [...t.log] })),
    faults: faultHandle(faults, latency),
    state,
    proxmoxConfig: () => simProxmoxConfig(url, ctx, cert.fingerprint, state, ssh, sshNodes),
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((res) => {
        server.close(() => res());
        for (const s of sockets) s.destroy();
      });
      await Promise.allSettled([mirror.close(), ...sshHosts.map((h) => h.close())]);
      // Let running workers and boots settle so nothing fires after close. Their latency sleeps use
      // unref'd timers, so this wait holds a ref'd one: otherwise a close while a task runs can empty
      // the event loop with the caller's await unsettled (node exits 13 instead of finishing).
      let cap: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...ctx.tasks.pending, ...background]),
        new Promise<void>((r) => (cap = setTimeout(r, 2000))),
      ]);
      clearTimeout(cap);
      persister?.stop();
      rmSync(keyDir, { recursive: true, force: true });
      if (ownRoot) rmSync(storageRoot, { recursive: true, force: true });
      if (ownShared && sharedRoot) rmSync(sharedRoot, { recursive: true, force: true });
    },
  };
}

/**
 * The running VMs of a reloaded world: they kept running while the simulator was away, so their guests
 * resume (the guest hooks' resume) and the agent answers at once; without that hook they boot again.
 */
async function resumeGuests(ctx: SimContext, state: SimState): Promise<void> {
  const vms = [...state.vms.values()];
  const guestVm = (vm: SimVm) => ({
    node: vm.node,
    vmid: vm.vmid,
    name: String(vm.config.name ?? ''),
    config: { ...vm.config },
    userData: vm.status === 'running' ? readUserSnippet(ctx, vm) : undefined,
  });
  for (const vm of vms) vm.agent = undefined;
  if (ctx.guest.resume) {
    const agents = await ctx.guest.resume(vms.map((vm) => ({ ...guestVm(vm), running: vm.status === 'running' })));
    for (const vm of vms) if (vm.status === 'running') vm.agent = agents.get(vm.vmid)?.interfaces;
    return;
  }
  for (const vm of vms) {
    if (vm.status !== 'running') continue;
    const generation = ++vm.generation;
    ctx.track(
      ctx.guest
        .boot(guestVm(vm))
        .then((r) => {
          if (vm.generation === generation && vm.status === 'running') vm.agent = r.interfaces;
        })
        .catch(() => {}),
    );
  }
}

/** Node i's address: on 127.0.0.1 each node gets its own loopback address (127.0.0.1, .2, …); elsewhere all share `host`. */
function nodeAddress(host: string, i: number): string {
  return host === '127.0.0.1' ? `127.0.0.${i + 1}` : host;
}

/**
 * One SSH server per PVE node, as each real host runs its own sshd: on its own loopback address and,
 * when free there, the first node's port (so proxmox.ssh.port serves all); each with its own host key
 * and its own `local` storage (seen at the path the API reports for `local`), plus the shared storage.
 */
async function startNodeSshHosts(o: {
  state: SimState;
  host: string;
  version: string;
  saved?: SavedSimWorld;
  sharedRoot?: string;
}): Promise<SshHost[]> {
  const hosts: SshHost[] = [];
  try {
    for (const [i, node] of o.state.nodes.entries()) {
      const address = nodeAddress(o.host, i);
      const root = o.state.dirRoot(o.state.storages.get('local')!, node)!;
      const savedPort =
        i === 0 ? o.saved?.ports.ssh : (o.saved?.ports.sshNodes?.[node] ?? (address !== o.host ? hosts[0]!.port : undefined));
      const hostKey = i === 0 ? o.saved?.ssh?.hostKey : o.saved?.ssh?.nodeHostKeys?.[node];
      hosts.push(
        await listenPreferring(savedPort, true, (p) =>
          startSshHost({
            host: address,
            port: p,
            user: 'root',
            root,
            rootAt: o.state.storageRoot,
            sharedRoots: o.sharedRoot ? [o.sharedRoot] : [],
            pveVersion: o.version,
            hostKey,
            clientKey: hosts[0]?.privateKey ?? o.saved?.ssh?.clientKey,
          }),
        ),
      );
    }
  } catch (e) {
    await Promise.allSettled(hosts.map((h) => h.close()));
    throw e;
  }
  return hosts;
}

/** proxmox.ssh.nodes for every node but the first: its pinned host key, and the port when it is not the first node's (the address comes from /cluster/status). */
function nodeSshConfig(
  state: SimState,
  sshNodes: Simulator['sshNodes'],
  first: SimSsh,
): { nodes?: Record<string, Record<string, unknown>> } {
  if (state.nodes.length < 2) return {};
  const nodes: Record<string, Record<string, unknown>> = {};
  for (const n of state.nodes.slice(1)) {
    const s = sshNodes[n]!;
    nodes[n] = { hostKey: s.hostKeyFingerprint, ...(s.port !== first.port ? { port: s.port } : {}) };
  }
  return { nodes };
}
