/**
 * Demo Flatcar nodes: what the simulator's VMs "boot" into for --demo and the end-to-end tests.
 *
 * Each VM becomes an ssh2 server on its own loopback address (127.x.y.z, port `sshPort`) with its own
 * host key, reported to Proxmox through the guest agent. It accepts `core` with the keys from the
 * node's Ignition (passwd.users core sshAuthorizedKeys) and nothing else, has SFTP into an in-memory
 * filesystem (core may write only to its home and /tmp), `sudo`, and a small set of commands:
 * the installer (`sh <uploaded install-k3s.sh> …`, simulated step by step with the same checks),
 * `systemctl is-active`, `journalctl -u`, `/opt/bin/k3s --version | kubectl get nodes -o json`, `cat`,
 * `sha256sum`, `true`, `hostname`, `uname -m`. Anything else answers exit 127 "command not found".
 *
 * k3s is simulated with realistic timing (reference/pve-timings.md, scaled by `speed`): a first
 * server is Ready after ~45 s, each server join takes ~40 s and etcd admits one learner at a time
 * ("too many learner members" for a concurrent join), an agent is Ready ~20 s after it starts. A join
 * needs the token from the first server's config.yaml: a wrong one fails like k3s does.
 */
import { demoCaPem, joinRefusal } from './join-trust.js';
import { K3S_SERVER_CA_PATH } from '../k3s/token.js';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel, SFTPWrapper } from 'ssh2';
import { parse as parseYaml } from 'yaml';
import { generateEd25519KeyPair } from '../ssh/keys.js';
import { GuestSaver, loadGuests } from './guest-store.js';
import { writeFileAtomic } from '../store/atomic.js';
import { demoFiles } from '../store/layout.js';

const { Server, utils } = ssh2;
const { OPEN_MODE, STATUS_CODE } = utils.sftp;

/** What the simulator tells a guest when its VM starts (structurally the sim's GuestHooks argument). */
export interface DemoVm {
  node: string;
  vmid: number;
  name: string;
  config: Record<string, string | number>;
  userData?: string;
}

export interface DemoAgentInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: Array<{ 'ip-address': string; 'ip-address-type': 'ipv4' | 'ipv6'; prefix: number }>;
}

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
    /** The node answers with a new host key from now on (as a re-installed or impostor machine would). */
    replaceHostKey(node: string): Promise<string>;
  };
}

interface FileEntry {
  data: Buffer;
  mode: number;
  owner: 'root' | 'core';
  /** Symlink target, if a link. */
  link?: string;
}

type UnitState = 'inactive' | 'activating' | 'active' | 'failed';

interface Unit {
  state: UnitState;
  enabled: boolean;
  journal: string[];
  /** Bumped at every (re)start: timers of an older run stop acting. */
  generation: number;
}

export interface DemoClusterNode {
  name: string;
  role: 'server' | 'agent';
  address: string;
  /** When its k3s started this (successful) attempt, and when it is Ready (ms epoch). */
  startedAt: number;
  readyAt: number;
  owner: DemoNode;
}

/** One k3s cluster of the demo: created by the first server, joined by token. */
export class DemoCluster {
  readonly nodes = new Map<string, DemoClusterNode>();
  /** Addresses that reach its API (first server, other servers, VIP). */
  readonly addresses = new Set<string>();
  learnerBusyUntil = 0;
  apiReadyAt: number;
  readonly caData: string;
  constructor(
    readonly token: string,
    readonly version: string,
    apiReadyAt: number,
    caData?: string,
  ) {
    this.apiReadyAt = apiReadyAt;
    this.caData = caData ?? randomBytes(32).toString('base64');
  }
}

export class DemoNode {
  readonly fs = new Map<string, FileEntry>();
  readonly dirs = new Set<string>(['/', '/home', '/home/core', '/tmp', '/etc', '/opt', '/var', '/run', '/usr', '/usr/bin']);
  readonly units = new Map<string, Unit>();
  hostKey: { privateKey: string; fingerprint: string };
  server?: InstanceType<typeof Server>;
  readonly connections = new Set<Connection>();
  authorizedKeys: Array<{ type: string; data: Buffer }> = [];
  /** Simulated boot time of the last boot (ms). */
  bootMs = 0;
  /** Simulated download time of the last k3s binary install (ms; the benchmark's lower bound uses it). */
  binaryMs = 0;
  cluster?: DemoCluster;
  vm: DemoVm;
  constructor(
    vm: DemoVm,
    readonly address: string,
    readonly prefix: number,
    readonly mac: string,
    hostKey?: { privateKey: string; fingerprint: string },
  ) {
    this.vm = vm;
    this.hostKey = hostKey ?? newHostKey();
    this.writeFile('/etc/os-release', 'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nID_LIKE=coreos\nVERSION=4459.2.1\n', 0o644, 'root');
  }
  get name(): string {
    return this.vm.name;
  }
  writeFile(path: string, data: string | Buffer, mode: number, owner: 'root' | 'core'): void {
    this.mkdirp(parentOf(path));
    this.fs.set(path, { data: Buffer.isBuffer(data) ? data : Buffer.from(data), mode, owner });
  }
  mkdirp(dir: string): void {
    const parts = dir.split('/').filter(Boolean);
    let cur = '';
    this.dirs.add('/');
    for (const p of parts) {
      cur += `/${p}`;
      this.dirs.add(cur);
    }
  }
  readText(path: string): string | undefined {
    return this.fs.get(path)?.data.toString('utf8');
  }
  unit(name: string): Unit {
    let u = this.units.get(name);
    if (!u) this.units.set(name, (u = { state: 'inactive', enabled: false, journal: [], generation: 0 }));
    return u;
  }
}

/** An ed25519 key pair (OpenSSH format) and its public blob: the shared generator of src/ssh/keys.ts. */
export function sshKeyPair(comment?: string): { private: string; public: string; blob: Buffer } {
  const kp = generateEd25519KeyPair(comment ?? '');
  return { private: kp.privateKey, public: kp.publicKeyLine, blob: Buffer.from(kp.publicKeyLine.split(' ')[1]!, 'base64') };
}

function newHostKey(): { privateKey: string; fingerprint: string } {
  const kp = sshKeyPair();
  return { privateKey: kp.private, fingerprint: 'SHA256:' + createHash('sha256').update(kp.blob).digest('base64').replace(/=+$/, '') };
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function normalize(path: string, cwd = '/home/core'): string {
  const abs = path.startsWith('/') ? path : `${cwd}/${path}`;
  const out: string[] = [];
  for (const p of abs.split('/')) {
    if (!p || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return '/' + out.join('/');
}

/**
 * Split a command line the way a POSIX shell splits words: single and double quotes, backslashes.
 * Returns null when the line uses shell syntax the demo does not simulate (pipes, redirections, $…).
 */
export function splitShellWords(line: string): string[] | null {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return null;
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) j++;
        else if (line[j] === '$' || line[j] === '`') return null;
        cur += line[j];
      }
      if (j >= line.length) return null;
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < line.length) cur += line[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (';|&<>$`(){}*?'.includes(c)) {
      return null;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface ExecIo {
  out(line: string): void;
  err(line: string): void;
  /** Resolves after `ms` of simulated time (already scaled). */
  sleep(ms: number): Promise<void>;
}

const INSTALLER_MARK = '# install-k3s.sh: install or update k3s on a Flatcar node.';

export function createDemoGuests(opts: DemoGuestsOptions): DemoGuests {
  const speed = opts.speed;
  const jitter = opts.jitter ?? 0.3;
  const log = opts.log ?? (() => {});
  const loaded = opts.persistFile ? loadGuests(opts.persistFile) : undefined;
  const nodesByVmid = loaded?.nodesByVmid ?? new Map<number, DemoNode>();
  const addressByMac = loaded?.addressByMac ?? new Map<string, string>();
  const clusters: DemoCluster[] = loaded?.clusters ?? [];
  const timers = new Set<NodeJS.Timeout>();
  const drops: Array<{ node: string; match: RegExp; when: 'before' | 'after'; times: number }> = [];
  let dhcpNext = loaded?.dhcpNext ?? 0;
  let closed = false;
  const saver = opts.persistFile ? new GuestSaver(opts.persistFile, log) : undefined;
  /** Save the nodes (when persisted): called before a client is answered and on k3s state changes. */
  const persist = () => {
    if (!closed) saver?.save({ nodesByVmid, clusters, addressByMac, dhcpNext });
  };
  const saveTimer = saver ? setInterval(persist, 250) : undefined;
  saveTimer?.unref();

  /** Simulated seconds → wall milliseconds, with jitter around the median. */
  const dur = (seconds: number) => Math.max(1, seconds * 1000 * speed * (1 + (Math.random() * 2 - 1) * jitter));
  /** Pending sleeps end early (resolved) on close(), so nothing waits on a timer that was cleared. */
  const wakers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (closed) return resolve();
      const wake = () => {
        clearTimeout(t);
        timers.delete(t);
        wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      timers.add(t);
      wakers.add(wake);
    });
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (closed) return;
      fn();
      persist();
    }, ms);
    timers.add(t);
  };

  function clusterAt(host: string): DemoCluster | undefined {
    return clusters.find((c) => c.addresses.has(host));
  }

  function dhcpAddress(mac: string): string {
    let a = addressByMac.get(mac);
    if (!a) {
      const n = dhcpNext++;
      const base = opts.dhcpBase ?? 100;
      a = `127.0.${base + Math.floor(n / 200)}.${10 + (n % 200)}`;
      addressByMac.set(mac, a);
    }
    return a;
  }

  function parseIgnition(userData: string | undefined): { hostname?: string; keys: string[]; address?: string; prefix?: number } {
    if (!userData) return { keys: [] };
    let ign: { passwd?: { users?: Array<{ name: string; sshAuthorizedKeys?: string[] }> }; storage?: { files?: Array<{ path: string; contents?: { source?: string } }> } };
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

  async function boot(vm: DemoVm): Promise<{ interfaces: DemoAgentInterface[] }> {
    try {
      return await bootNode(vm);
    } catch (err) {
      // The simulator swallows boot errors (a real VM that fails to boot just never answers): say why.
      log(`demo node ${vm.name} (VMID ${vm.vmid}) failed to boot: ${(err as Error).message}`);
      throw err;
    }
  }

  async function bootNode(vm: DemoVm): Promise<{ interfaces: DemoAgentInterface[] }> {
    if (closed) throw new Error('demo guests closed');
    const net0 = String(vm.config.net0 ?? '');
    const mac = (/(?:virtio|e1000|vmxnet3|rtl8139)=([0-9A-Fa-f:]{17})/.exec(net0)?.[1] ?? `BC:24:11:00:${(vm.vmid >> 8) & 255}:${vm.vmid & 255}`).toUpperCase();
    const ign = parseIgnition(vm.userData);
    const ipconfig = String(vm.config.ipconfig0 ?? '');
    const ipm = /ip=(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(ipconfig);
    let address = ign.address ?? ipm?.[1];
    let prefix = ign.prefix ?? (ipm ? Number(ipm[2]) : 8);
    if (!address) {
      address = dhcpAddress(mac);
      prefix = 8;
    }
    if (!address.startsWith('127.')) throw new Error(`demo node ${vm.name}: address ${address} is not on loopback; the demo config must use a 127.x network`);

    let node = nodesByVmid.get(vm.vmid);
    if (node && node.address !== address) {
      await stopNode(node);
      node = undefined;
    }
    if (!node) {
      node = new DemoNode(vm, address, prefix, mac);
      nodesByVmid.set(vm.vmid, node);
    }
    node.vm = vm;
    const hostname = ign.hostname ?? vm.name;
    node.writeFile('/etc/hostname', `${hostname}\n`, 0o644, 'root');
    node.authorizedKeys = ign.keys.map(parseAuthorizedKey).filter((k): k is { type: string; data: Buffer } => !!k);
    node.bootMs = (opts.bootSeconds ?? 20) > 0 ? dur(opts.bootSeconds ?? 20) : 0;
    persist();
    if (node.bootMs > 0) await sleep(node.bootMs);
    if (closed) throw new Error('demo guests closed while the VM booted');
    await listen(node);
    log(`demo node ${vm.name} up on ${address}:${opts.sshPort} (host key ${node.hostKey.fingerprint})`);
    // Enabled units start at boot, as systemd would.
    for (const [name, u] of node.units) if (u.enabled && u.state !== 'active') startUnit(node, name);
    persist();
    return { interfaces: interfacesOf(node) };
  }

  function interfacesOf(node: DemoNode): DemoAgentInterface[] {
    return [
      { name: 'lo', 'hardware-address': '00:00:00:00:00:00', 'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }] },
      { name: 'eth0', 'hardware-address': node.mac.toLowerCase(), 'ip-addresses': [{ 'ip-address': node.address, 'ip-address-type': 'ipv4', prefix: node.prefix }] },
    ];
  }

  async function resume(vms: Array<DemoVm & { running: boolean }>): Promise<Map<number, { interfaces: DemoAgentInterface[] }>> {
    const known = new Set(vms.map((v) => v.vmid));
    // a node whose VM is gone (never saved by the simulator, or destroyed) was never a machine
    for (const [vmid, node] of nodesByVmid) {
      if (known.has(vmid)) continue;
      await stopNode(node);
      nodesByVmid.delete(vmid);
    }
    const out = new Map<number, { interfaces: DemoAgentInterface[] }>();
    await Promise.all(
      vms.map(async ({ running, ...vm }) => {
        const node = nodesByVmid.get(vm.vmid);
        if (!running) {
          if (node) for (const u of node.units.values()) u.state = 'inactive';
          return;
        }
        // started, but its guest never got as far as being saved: it boots now
        if (!node) return void out.set(vm.vmid, await boot(vm));
        node.vm = { ...vm, userData: vm.userData ?? node.vm.userData };
        await listen(node);
        log(`demo node ${vm.name} resumed on ${node.address}:${opts.sshPort} (host key ${node.hostKey.fingerprint})`);
        // active units keep running; one that was still starting (or failing) starts again
        for (const [name, u] of node.units) if (u.enabled && u.state !== 'active') startUnit(node, name);
        out.set(vm.vmid, { interfaces: interfacesOf(node) });
      }),
    );
    persist();
    return out;
  }

  function listen(node: DemoNode): Promise<void> {
    if (node.server) return Promise.resolve();
    const server = new Server({ hostKeys: [node.hostKey.privateKey] }, (client) => onClient(node, client));
    node.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.sshPort, node.address, () => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve();
      });
    });
  }

  async function stopNode(node: DemoNode): Promise<void> {
    for (const [, u] of node.units) {
      u.generation++;
      if (u.state !== 'inactive') u.state = 'inactive';
    }
    persist();
    for (const c of node.connections) c.end();
    node.connections.clear();
    const srv = node.server;
    node.server = undefined;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }

  function onClient(node: DemoNode, client: Connection): void {
    // Small request/response packets: without TCP_NODELAY each round trip waits for a delayed ACK.
    (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    node.connections.add(client);
    client.on('close', () => node.connections.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.username !== 'core' || ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const key = node.authorizedKeys.find((k) => k.type === ctx.key.algo && k.data.equals(ctx.key.data));
      if (!key) return ctx.reject(['publickey']);
      if (!ctx.signature || !ctx.blob) return ctx.accept();
      const parsed = utils.parseKey(Buffer.concat([Buffer.from(`${key.type} `), Buffer.from(key.data.toString('base64'))]));
      const pub = Array.isArray(parsed) ? parsed[0] : parsed;
      if (!pub || pub instanceof Error || pub.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => {
          const ch = accept();
          void runExec(node, client, ch, info.command);
        });
        session.on('sftp', (accept) => serveSftp(node, accept()));
        session.on('signal', () => {});
      });
    });
  }

  async function runExec(node: DemoNode, client: Connection, ch: ServerChannel, command: string): Promise<void> {
    const drop = drops.find((d) => d.node === node.name && d.times > 0 && d.match.test(command));
    if (drop) drop.times--;
    if (drop?.when === 'before') {
      log(`demo fault: dropping the connection to ${node.name} before \`${command.slice(0, 60)}\``);
      client.end();
      return;
    }
    let closedCh = false;
    ch.on('close', () => (closedCh = true));
    const io: ExecIo = {
      out: (l) => {
        if (!closedCh) ch.write(`${l}\n`);
      },
      err: (l) => {
        if (!closedCh) ch.stderr.write(`${l}\n`);
      },
      sleep,
    };
    let code: number;
    try {
      code = await execCommand(node, command, io);
    } catch (err) {
      io.err(`demo node error: ${(err as Error).message}`);
      code = 1;
    }
    persist();
    if (drop?.when === 'after') {
      log(`demo fault: dropping the connection to ${node.name} after \`${command.slice(0, 60)}\``);
      client.end();
      return;
    }
    if (closedCh) return;
    ch.exit(code);
    ch.end();
  }

  async function execCommand(node: DemoNode, command: string, io: ExecIo): Promise<number> {
    const argv = splitShellWords(command.trim());
    if (!argv || argv.length === 0) {
      io.err(`bash: the demo node does not simulate this shell syntax: ${command.slice(0, 80)}`);
      return 127;
    }
    let root = false;
    if (argv[0] === 'sudo') {
      root = true;
      argv.shift();
      while (argv[0]?.startsWith('-')) argv.shift();
    }
    const [cmd, ...args] = argv;
    if (!cmd) return 0;
    const canRead = (p: string) => {
      const f = node.fs.get(p);
      if (!f) return 'missing';
      if (root || f.owner === 'core' || f.mode & 0o004) return 'ok';
      return 'denied';
    };
    switch (cmd) {
      case 'true':
        return 0;
      case 'curl': {
        // Only what flatcar-k3s asks: is the k3s API answering at an address (k3s serves /ping without auth).
        const url = args.find((a) => /^https?:\/\//.test(a));
        const m = url ? /^https:\/\/([^/:]+):6443\/ping$/.exec(url) : null;
        if (!m) {
          io.err(`curl: (6) Could not resolve host: ${url ? new URL(url).hostname : '(none)'}`);
          return 6;
        }
        const c = clusterAt(m[1]!);
        if (!c || Date.now() < c.apiReadyAt) {
          io.err(`curl: (7) Failed to connect to ${m[1]} port 6443 after 0 ms: Couldn't connect to server`);
          return 7;
        }
        io.out('pong');
        return 0;
      }
      case 'hostname':
        io.out(node.readText('/etc/hostname')?.trim() ?? node.name);
        return 0;
      case 'uname':
        io.out(args[0] === '-m' ? 'x86_64' : 'Linux');
        return 0;
      case 'cat':
      case 'sha256sum': {
        let code = 0;
        for (const a of args) {
          const p = normalize(a);
          const r = canRead(p);
          if (r !== 'ok') {
            io.err(`${cmd}: ${a}: ${r === 'missing' ? 'No such file or directory' : 'Permission denied'}`);
            code = 1;
            continue;
          }
          const data = node.fs.get(p)!.data;
          if (cmd === 'cat') for (const l of data.toString('utf8').replace(/\n$/, '').split('\n')) io.out(l);
          else io.out(`${sha256(data)}  ${a}`);
        }
        return code;
      }
      case 'systemctl': {
        const sub = args.find((a) => !a.startsWith('-'));
        const quiet = args.includes('--quiet') || args.includes('-q');
        if (sub !== 'is-active') {
          if (!root) {
            io.err('Failed to ' + sub + ': Interactive authentication required.');
            return 1;
          }
          if (sub === 'restart') {
            const names = args.filter((a) => !a.startsWith('-') && a !== 'restart').map((u) => u.replace(/\.service$/, ''));
            const unknown = names.find((u) => !node.units.has(u));
            if (unknown || names.length === 0) {
              io.err(`Failed to restart ${unknown ?? ''}.service: Unit ${unknown ?? ''}.service not found.`);
              return 5;
            }
            for (const u of names) startUnit(node, u);
            return 0;
          }
          io.err(`systemctl ${sub}: not simulated by the demo node`);
          return 1;
        }
        const units = args.filter((a) => !a.startsWith('-') && a !== 'is-active').map((u) => u.replace(/\.service$/, ''));
        let code = 0;
        for (const u of units) {
          const s = node.units.get(u)?.state ?? 'inactive';
          if (!quiet) io.out(s);
          if (s !== 'active') code = 3;
        }
        return code;
      }
      case 'journalctl': {
        const ui = args.indexOf('-u');
        const unit = ui >= 0 ? args[ui + 1]?.replace(/\.service$/, '') : undefined;
        const ni = args.indexOf('-n');
        const n = ni >= 0 ? Number(args[ni + 1]) : 100;
        if (!unit) {
          io.err('journalctl: the demo node only answers "journalctl -u UNIT"');
          return 1;
        }
        const j = node.units.get(unit)?.journal ?? [];
        if (j.length === 0) io.out('-- No entries --');
        for (const l of j.slice(-n)) io.out(l);
        return 0;
      }
      case 'sh':
        return runScript(node, args, root, io);
      case '/opt/bin/k3s':
      case 'k3s':
      case '/opt/bin/kubectl':
      case 'kubectl':
        return runK3s(node, cmd.endsWith('kubectl') ? ['kubectl', ...args] : args, root, io);
      default:
        io.err(`bash: ${cmd}: command not found`);
        return 127;
    }
  }

  function runK3s(node: DemoNode, args: string[], root: boolean, io: ExecIo): number {
    if (!node.fs.has('/opt/bin/k3s')) {
      io.err('bash: /opt/bin/k3s: No such file or directory');
      return 127;
    }
    const version = node.fs.get('/opt/bin/k3s')!.data.toString('utf8').match(/v\d+\.\d+\.\d+\+k3s\d+/)?.[0] ?? 'unknown';
    if (args[0] === '--version' || args[0] === 'version' || args[0] === '-v') {
      io.out(`k3s version ${version} (demo)`);
      io.out('go version go1.24.4');
      return 0;
    }
    if (args[0] === 'kubectl') {
      const rest = args.slice(1).join(' ');
      if (rest !== 'get nodes -o json') {
        io.err(`error: the demo node only answers "kubectl get nodes -o json" (given: ${rest})`);
        return 1;
      }
      if (!node.fs.has('/etc/rancher/k3s/k3s.yaml')) {
        io.err('error: error loading config file "/etc/rancher/k3s/k3s.yaml": open /etc/rancher/k3s/k3s.yaml: no such file or directory');
        return 1;
      }
      if (!root) {
        io.err('error: error loading config file "/etc/rancher/k3s/k3s.yaml": open /etc/rancher/k3s/k3s.yaml: permission denied');
        return 1;
      }
      const cluster = node.cluster;
      const unit = node.units.get('k3s');
      if (!cluster || unit?.state !== 'active' || Date.now() < cluster.apiReadyAt) {
        io.err('The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?');
        return 1;
      }
      io.out(JSON.stringify(nodeList(cluster), null, 2));
      return 0;
    }
    io.err(`k3s: the demo node does not simulate "k3s ${args.join(' ')}"`);
    return 1;
  }

  function nodeList(cluster: DemoCluster) {
    const now = Date.now();
    return {
      apiVersion: 'v1',
      kind: 'List',
      items: [...cluster.nodes.values()].map((n) => {
        const unit = n.owner.units.get(n.role === 'server' ? 'k3s' : 'k3s-agent');
        const ready = now >= n.readyAt && unit?.state === 'active' && n.owner.cluster === cluster;
        const labels: Record<string, string> = { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' };
        if (n.role === 'server') Object.assign(labels, { 'node-role.kubernetes.io/control-plane': 'true', 'node-role.kubernetes.io/master': 'true', 'node-role.kubernetes.io/etcd': 'true' });
        return {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: n.name, labels },
          status: {
            addresses: [
              { type: 'InternalIP', address: n.address },
              { type: 'Hostname', address: n.name },
            ],
            conditions: [
              ready
                ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
                : { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady' },
            ],
            nodeInfo: { kubeletVersion: cluster.version, osImage: 'Flatcar Container Linux by Kinvolk 4459.2.1 (Oklo)', architecture: 'amd64' },
          },
        };
      }),
    };
  }

  /** `sh <script> …`: only the shipped installer is simulated. */
  async function runScript(node: DemoNode, args: string[], root: boolean, io: ExecIo): Promise<number> {
    const [script, ...rest] = args;
    if (!script) {
      io.err('sh: the demo node does not run an interactive shell');
      return 127;
    }
    const text = node.readText(normalize(script));
    if (text === undefined) {
      io.err(`sh: 0: cannot open ${script}: No such file`);
      return 2;
    }
    if (!text.includes(INSTALLER_MARK)) {
      io.err(`sh: ${script}: the demo node only runs flatcar-k3s's install-k3s.sh`);
      return 127;
    }
    if (!root) {
      io.err('mkdir: cannot create directory ‘/opt/bin’: Permission denied');
      return 1;
    }
    return simulateInstaller(node, rest, io);
  }

  async function simulateInstaller(node: DemoNode, args: string[], io: ExecIo): Promise<number> {
    const say = (s: string) => io.out(`flatcar-k3s: ${s}`);
    const die = (s: string) => {
      io.err(`flatcar-k3s: error: ${s}`);
      return 1;
    };
    const o: { role?: string; version?: string; sha256?: string; url?: string; binary?: string; config?: string; manifests: string[]; binaryOnly?: boolean } = { manifests: [] };
    for (let i = 0; i < args.length; i += 2) {
      const k = args[i]!;
      if (k === '--binary-only') {
        o.binaryOnly = true;
        i--;
        continue;
      }
      const v = args[i + 1];
      if (v === undefined) return die(`${k} needs a value`);
      if (k === '--role') o.role = v;
      else if (k === '--version') o.version = v;
      else if (k === '--sha256') o.sha256 = v;
      else if (k === '--url') o.url = v;
      else if (k === '--binary') o.binary = normalize(v);
      else if (k === '--config') o.config = normalize(v);
      else if (k === '--manifest') o.manifests.push(normalize(v));
      else return die(`unknown argument: ${k}`);
    }
    if (!o.binaryOnly && o.role !== 'server' && o.role !== 'agent') return die(`--role must be server or agent (given: '${o.role ?? ''}')`);
    if (!o.version || !/^v\d+\.\d+\.\d+\+k3s\d+$/.test(o.version)) return die(`--version must look like v1.33.4+k3s1 (given: '${o.version ?? ''}')`);
    if (!o.sha256 || !/^[0-9a-f]{64}$/.test(o.sha256)) return die('--sha256 must be 64 lower-case hex digits');
    if (!o.url && !o.binary) return die('give --url or --binary');
    for (const f of [o.config, o.binary, ...o.manifests]) if (f && !node.fs.has(f)) return die(`staged file ${f} is missing`);
    const unit = o.role === 'server' ? 'k3s' : 'k3s-agent';
    let changed = false;

    const current = node.fs.get('/opt/bin/k3s');
    if (current && sha256(current.data) === o.sha256) {
      say(`k3s ${o.version} already in /opt/bin/k3s (sha256 matches)`);
      if (o.binary) node.fs.delete(o.binary);
    } else {
      let data: Buffer;
      if (o.binary) {
        say(`installing the uploaded k3s ${o.version}`);
        data = node.fs.get(o.binary)!.data;
        node.fs.delete(o.binary);
      } else {
        say(`downloading k3s ${o.version}`);
        try {
          const res = await fetch(o.url!);
          if (!res.ok) throw new Error(`The requested URL returned error: ${res.status}`);
          data = Buffer.from(await res.arrayBuffer());
        } catch (err) {
          io.err(`curl: (22) ${(err as Error).message}`);
          return die(`download failed: ${o.url}`);
        }
        node.binaryMs = dur(3);
        await io.sleep(node.binaryMs);
      }
      const got = sha256(data);
      if (got !== o.sha256) return die(`sha256 mismatch for k3s ${o.version}: expected ${o.sha256}, got ${got}; the binary was not installed`);
      node.writeFile('/opt/bin/k3s', data, 0o755, 'root');
      say(`installed /opt/bin/k3s (sha256 ${o.sha256})`);
      changed = true;
    }
    for (const l of ['kubectl', 'crictl', 'ctr']) node.fs.set(`/opt/bin/${l}`, { data: Buffer.alloc(0), mode: 0o777, owner: 'root', link: 'k3s' });
    if (o.binaryOnly) {
      io.out('RESULT binary');
      return 0;
    }

    const installSecret = (src: string, dest: string) => {
      const staged = node.fs.get(src)!;
      node.fs.delete(src);
      const old = node.fs.get(dest);
      if (old && old.data.equals(staged.data)) return;
      node.writeFile(dest, staged.data, 0o600, 'root');
      say(`wrote ${dest}`);
      changed = true;
    };
    if (o.config) installSecret(o.config, '/etc/rancher/k3s/config.yaml');
    for (const m of o.manifests) {
      if (o.role === 'server') installSecret(m, `/var/lib/rancher/k3s/server/manifests/${m.split('/').pop()}`);
      else node.fs.delete(m);
    }
    const unitPath = `/etc/systemd/system/${unit}.service`;
    const unitText = `# Written by flatcar-k3s (install-k3s.sh) for k3s ${o.version}\n[Service]\nType=${o.role === 'server' ? 'notify' : 'exec'}\nExecStart=/opt/bin/k3s ${o.role}\n`;
    if (node.readText(unitPath) !== unitText) {
      node.writeFile(unitPath, unitText, 0o644, 'root');
      say(`wrote ${unitPath}`);
      changed = true;
    }
    const u = node.unit(unit);
    if (!changed && (u.state === 'active' || u.state === 'activating')) {
      say(`k3s ${o.version} is installed and ${unit} is ${u.state}; nothing to do`);
      io.out('RESULT unchanged');
      return 0;
    }
    say(`${u.state === 'active' || u.state === 'activating' ? 'restarting' : 'starting'} ${unit}`);
    u.enabled = true;
    startUnit(node, unit);
    io.out('RESULT installed');
    return 0;
  }

  /** (Re)start a k3s unit: reads config.yaml and plays the server/agent lifecycle on timers. */
  function startUnit(node: DemoNode, unit: string): void {
    const u = node.unit(unit);
    const gen = ++u.generation;
    const alive = () => !closed && u.generation === gen && node.server !== undefined;
    const journal = (level: 'info' | 'fatal' | 'error', msg: string) => {
      u.journal.push(`${new Date().toISOString()} ${node.name} k3s[${1000 + gen}]: time="${new Date().toISOString()}" level=${level} msg="${msg}"`);
      if (u.journal.length > 200) u.journal.splice(0, u.journal.length - 200);
    };
    const cfgText = node.readText('/etc/rancher/k3s/config.yaml') ?? '';
    let cfg: Record<string, unknown> = {};
    try {
      cfg = (parseYaml(cfgText) as Record<string, unknown>) ?? {};
    } catch {
      /* k3s fails below */
    }
    const version = node.fs.get('/opt/bin/k3s')?.data.toString('utf8').match(/v\d+\.\d+\.\d+\+k3s\d+/)?.[0] ?? 'v0.0.0+k3s0';
    const token = typeof cfg.token === 'string' ? cfg.token : '';
    const nodeName = typeof cfg['node-name'] === 'string' ? (cfg['node-name'] as string) : node.name;
    const role: 'server' | 'agent' = unit === 'k3s' ? 'server' : 'agent';
    const restartLoop = (msg: string) => {
      // Restart=always, RestartSec=5s: the unit keeps trying, systemd shows it "activating".
      journal('fatal', msg);
      u.state = 'activating';
      later(dur(5), () => {
        if (alive()) attempt();
      });
    };
    const attempt = () => {
      if (!alive()) return;
      journal('info', `Starting k3s ${role} ${version}`);
      if (!token) return restartLoop('starting kubernetes: preparing server: token is required');
      const serverUrl = typeof cfg.server === 'string' ? cfg.server : undefined;
      if (role === 'server' && !serverUrl) {
        // First server: a new cluster (or the one it already leads).
        let cluster = node.cluster && node.cluster.nodes.get(nodeName)?.owner === node ? node.cluster : undefined;
        const startMs = dur(45);
        if (!cluster) {
          cluster = new DemoCluster(token, version, Date.now() + startMs * 0.7);
          clusters.push(cluster);
        } else if (cluster.token !== token) {
          return restartLoop('starting kubernetes: preparing server: bootstrap data already found and encrypted with different token');
        }
        cluster.addresses.add(node.address);
        if (node.fs.has('/var/lib/rancher/k3s/server/manifests/flatcar-k3s-kube-vip.yaml')) {
          const vip = /name: address\n\s+value: (\S+)/.exec(node.readText('/var/lib/rancher/k3s/server/manifests/flatcar-k3s-kube-vip.yaml')!)?.[1];
          if (vip) cluster.addresses.add(vip);
        }
        node.cluster = cluster;
        cluster.nodes.set(nodeName, { name: nodeName, role, address: node.address, startedAt: Date.now(), readyAt: Date.now() + startMs, owner: node });
        u.state = 'activating';
        journal('info', 'Managed etcd cluster initializing');
        later(startMs * 0.7, () => {
          if (!alive()) return;
          writeKubeconfig(node, cluster!);
          u.state = 'active';
          journal('info', 'k3s is up and running');
        });
        return;
      }
      const host = serverUrl ? /^https:\/\/\[?([^\]/]+?)\]?:6443\/?$/.exec(serverUrl)?.[1] : undefined;
      const cluster = host ? clusterAt(host) : undefined;
      if (!cluster || Date.now() < cluster.apiReadyAt) {
        return restartLoop(`failed to get CA certs: Get "${serverUrl}/cacerts": dial tcp ${host}:6443: connect: connection refused`);
      }
      const refused = joinRefusal(cluster, token);
      if (refused) {
        if (role === 'agent') {
          // Type=exec: systemd shows the agent "active" while it starts; it exits on the bad token a
          // moment later, then restarts after RestartSec. An installer must not take "active" for "joined".
          u.state = 'active';
          later(Math.max(dur(1), 100), () => {
            if (!alive()) return;
            journal('fatal', refused);
            u.state = 'activating';
            later(Math.max(dur(5), 500), () => {
              if (alive()) attempt();
            });
          });
          return;
        }
        return restartLoop(refused);
      }
      if (role === 'server') {
        if (Date.now() < cluster.learnerBusyUntil && !(cluster.nodes.get(nodeName)?.owner === node)) {
          return restartLoop('starting kubernetes: preparing server: start managed database: joining etcd cluster: etcdserver: too many learner members in cluster');
        }
        const joinMs = dur(40);
        if (!cluster.nodes.has(nodeName)) cluster.learnerBusyUntil = Date.now() + joinMs;
        node.cluster = cluster;
        cluster.nodes.set(nodeName, { name: nodeName, role, address: node.address, startedAt: Date.now(), readyAt: Date.now() + joinMs, owner: node });
        cluster.addresses.add(node.address);
        u.state = 'activating';
        journal('info', 'Adding member to etcd cluster as learner');
        later(joinMs, () => {
          if (!alive()) return;
          writeKubeconfig(node, cluster);
          u.state = 'active';
          journal('info', 'etcd learner promoted to voting member; k3s is up and running');
        });
        return;
      }
      // Agent: Type=exec, active at once; Ready once the kubelet registered and flannel is up.
      node.cluster = cluster;
      const agentMs = dur(20);
      cluster.nodes.set(nodeName, { name: nodeName, role, address: node.address, startedAt: Date.now(), readyAt: Date.now() + agentMs, owner: node });
      u.state = 'active';
      journal('info', `Connecting to proxy url="wss://${host}:6443/v1-k3s/connect"`);
    };
    attempt();
  }

  function writeKubeconfig(node: DemoNode, cluster: DemoCluster): void {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    node.writeFile(K3S_SERVER_CA_PATH, demoCaPem(cluster.caData), 0o644, 'root');
    const text = [
      'apiVersion: v1',
      'clusters:',
      '- cluster:',
      `    certificate-authority-data: ${b64(demoCaPem(cluster.caData))}`,
      '    server: https://127.0.0.1:6443',
      '  name: default',
      'contexts:',
      '- context:',
      '    cluster: default',
      '    user: default',
      '  name: default',
      'current-context: default',
      'kind: Config',
      'preferences: {}',
      'users:',
      '- name: default',
      '  user:',
      `    client-certificate-data: ${b64(`-----BEGIN CERTIFICATE-----\n${randomBytes(24).toString('base64')}\n-----END CERTIFICATE-----\n`)}`,
      `    client-key-data: ${b64(`-----BEGIN EC PRIVATE KEY-----\n${randomBytes(24).toString('base64')}\n-----END EC PRIVATE KEY-----\n`)}`,
      '',
    ].join('\n');
    if (!node.fs.has('/etc/rancher/k3s/k3s.yaml')) node.writeFile('/etc/rancher/k3s/k3s.yaml', text, 0o600, 'root');
  }

  function serveSftp(node: DemoNode, sftp: SFTPWrapper): void {
    const handles = new Map<number, { path: string; kind: 'file' | 'dir'; data?: Buffer; write: boolean; listed?: boolean }>();
    let nextHandle = 1;
    const handleBuf = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const handleOf = (b: Buffer) => (b.length === 4 ? b.readUInt32BE(0) : -1);
    const writable = (p: string) => p.startsWith('/home/core/') || p.startsWith('/tmp/');
    const readable = (p: string) => {
      const f = node.fs.get(p);
      return !!f && (f.owner === 'core' || (f.mode & 0o004) !== 0);
    };
    const attrsOf = (p: string) => {
      const f = node.fs.get(p);
      if (f) return { mode: (f.link ? 0o120000 : 0o100000) | f.mode, uid: f.owner === 'core' ? 500 : 0, gid: f.owner === 'core' ? 500 : 0, size: f.data.length, atime: 0, mtime: 0 };
      if (node.dirs.has(p)) return { mode: 0o040755, uid: p.startsWith('/home/core') ? 500 : 0, gid: 0, size: 4096, atime: 0, mtime: 0 };
      return undefined;
    };
    sftp.on('OPEN', (reqid, filename, flags, attrs) => {
      const p = normalize(filename);
      const write = (flags & OPEN_MODE.WRITE) !== 0;
      if (write) {
        if (!writable(p) || !node.dirs.has(parentOf(p))) return sftp.status(reqid, node.dirs.has(parentOf(p)) ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.NO_SUCH_FILE);
        const existing = node.fs.get(p);
        if (!existing || flags & OPEN_MODE.TRUNC) {
          node.fs.set(p, { data: existing && !(flags & OPEN_MODE.TRUNC) ? existing.data : Buffer.alloc(0), mode: (attrs?.mode ?? 0o644) & 0o7777 & ~0o022, owner: 'core' });
        }
      } else {
        if (!node.fs.has(p)) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
        if (!readable(p)) return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
      }
      const h = nextHandle++;
      handles.set(h, { path: p, kind: 'file', write });
      sftp.handle(reqid, handleBuf(h));
    });
    sftp.on('WRITE', (reqid, handle, offset, data) => {
      const h = handles.get(handleOf(handle));
      const f = h && node.fs.get(h.path);
      if (!h || !f || !h.write) return sftp.status(reqid, STATUS_CODE.FAILURE);
      const end = offset + data.length;
      const buf = f.data.length >= end ? Buffer.from(f.data) : Buffer.concat([f.data, Buffer.alloc(end - f.data.length)]);
      data.copy(buf, offset);
      f.data = buf;
      sftp.status(reqid, STATUS_CODE.OK);
    });
    sftp.on('READ', (reqid, handle, offset, length) => {
      const h = handles.get(handleOf(handle));
      const f = h && node.fs.get(h.path);
      if (!h || !f) return sftp.status(reqid, STATUS_CODE.FAILURE);
      if (offset >= f.data.length) return sftp.status(reqid, STATUS_CODE.EOF);
      sftp.data(reqid, f.data.subarray(offset, Math.min(f.data.length, offset + length)));
    });
    sftp.on('FSTAT', (reqid, handle) => {
      const h = handles.get(handleOf(handle));
      const a = h && attrsOf(h.path);
      if (!a) return sftp.status(reqid, STATUS_CODE.FAILURE);
      sftp.attrs(reqid, a);
    });
    const stat = (reqid: number, path: string) => {
      const a = attrsOf(normalize(path));
      if (!a) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
      sftp.attrs(reqid, a);
    };
    sftp.on('STAT', stat);
    sftp.on('LSTAT', stat);
    const setstat = (reqid: number, p: string, attrs: { mode?: number }) => {
      const f = node.fs.get(p);
      if (!f) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
      if (f.owner !== 'core') return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
      if (attrs.mode !== undefined) f.mode = attrs.mode & 0o7777;
      persist();
      sftp.status(reqid, STATUS_CODE.OK);
    };
    sftp.on('SETSTAT', (reqid, path, attrs) => setstat(reqid, normalize(path), attrs));
    sftp.on('FSETSTAT', (reqid, handle, attrs) => {
      const h = handles.get(handleOf(handle));
      if (!h) return sftp.status(reqid, STATUS_CODE.FAILURE);
      setstat(reqid, h.path, attrs);
    });
    sftp.on('CLOSE', (reqid, handle) => {
      handles.delete(handleOf(handle));
      persist();
      sftp.status(reqid, STATUS_CODE.OK);
    });
    sftp.on('REMOVE', (reqid, path) => {
      const p = normalize(path);
      if (!node.fs.has(p)) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
      if (!writable(p)) return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
      node.fs.delete(p);
      persist();
      sftp.status(reqid, STATUS_CODE.OK);
    });
    sftp.on('RENAME', (reqid, oldPath, newPath) => {
      const a = normalize(oldPath);
      const b = normalize(newPath);
      const f = node.fs.get(a);
      if (!f) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
      if (!writable(a) || !writable(b)) return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
      if (node.fs.has(b)) return sftp.status(reqid, STATUS_CODE.FAILURE); // plain SFTP rename does not overwrite
      node.fs.delete(a);
      node.fs.set(b, f);
      persist();
      sftp.status(reqid, STATUS_CODE.OK);
    });
    sftp.on('MKDIR', (reqid, path) => {
      const p = normalize(path);
      if (!writable(`${p}/`) || node.dirs.has(p) || node.fs.has(p)) return sftp.status(reqid, STATUS_CODE.FAILURE);
      node.dirs.add(p);
      persist();
      sftp.status(reqid, STATUS_CODE.OK);
    });
    sftp.on('REALPATH', (reqid, path) => {
      const p = normalize(path === '.' || path === '' ? '/home/core' : path);
      sftp.name(reqid, [{ filename: p, longname: p, attrs: attrsOf(p) ?? { mode: 0, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0 } }]);
    });
    sftp.on('OPENDIR', (reqid, path) => {
      const p = normalize(path);
      if (!node.dirs.has(p)) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
      const h = nextHandle++;
      handles.set(h, { path: p, kind: 'dir', write: false });
      sftp.handle(reqid, handleBuf(h));
    });
    sftp.on('READDIR', (reqid, handle) => {
      const h = handles.get(handleOf(handle));
      if (!h || h.kind !== 'dir') return sftp.status(reqid, STATUS_CODE.FAILURE);
      if (h.listed) return sftp.status(reqid, STATUS_CODE.EOF);
      h.listed = true;
      const prefix = h.path === '/' ? '/' : `${h.path}/`;
      const names = new Set<string>();
      for (const k of [...node.fs.keys(), ...node.dirs]) if (k.startsWith(prefix) && k !== h.path && !k.slice(prefix.length).includes('/')) names.add(k);
      sftp.name(
        reqid,
        [...names].map((k) => ({ filename: k.slice(prefix.length), longname: k.slice(prefix.length), attrs: attrsOf(k)! })),
      );
    });
    sftp.on('EXTENDED', (reqid) => sftp.status(reqid, STATUS_CODE.OP_UNSUPPORTED));
  }

  return {
    boot,
    resume,
    async stop(vm: DemoVm) {
      const node = nodesByVmid.get(vm.vmid);
      if (node) await stopNode(node);
    },
    destroyed(vm) {
      const node = nodesByVmid.get(vm.vmid);
      if (!node) return;
      nodesByVmid.delete(vm.vmid);
      void stopNode(node);
      persist();
    },
    async close() {
      // the nodes are saved as they run: stopping their servers here is the simulator going away, not a shutdown
      persist();
      if (saveTimer) clearInterval(saveTimer);
      closed = true;
      for (const wake of [...wakers]) wake();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...nodesByVmid.values()].map((n) => stopNode(n)));
    },
    node: (name) => [...nodesByVmid.values()].find((n) => n.name === name),
    nodes: () => [...nodesByVmid.values()],
    faults: {
      dropConnection(node, match, when = 'after', times = 1) {
        drops.push({ node, match, when, times });
      },
      async replaceHostKey(name) {
        const node = [...nodesByVmid.values()].find((n) => n.name === name);
        if (!node) throw new Error(`no demo node ${name}`);
        for (const c of node.connections) c.end();
        const srv = node.server;
        node.server = undefined;
        if (srv) await new Promise<void>((r) => srv.close(() => r()));
        node.hostKey = newHostKey();
        await listen(node);
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
