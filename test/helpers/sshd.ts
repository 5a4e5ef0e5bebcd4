/**
 * A real OpenSSH sshd for tests: throwaway host key, throwaway client key, its own config, pid file
 * and log in a temp dir, listening on 127.0.0.x:<free port>. Runs as the current user (root in CI),
 * so logins are as that user (root). Always `await sshd.stop()` in an after()/finally.
 *
 *   const sshd = await startSshd();
 *   const s = await createSshConnector().connect({ host: sshd.host, port: sshd.port, username: sshd.user,
 *     privateKey: sshd.clientKey, hostKeyFingerprint: sshd.hostKeyFingerprint });
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fingerprintOfPublicKey } from '../../src/ssh/keys.js';

const run = promisify(execFile);

export const SSHD_PATH = '/usr/sbin/sshd';

export interface SshdOptions {
  /** Loopback address to listen on (default 127.0.0.2; any 127.0.0.0/8 address works on Linux). */
  address?: string;
  /** Extra public key lines for authorized_keys (the generated client key is always added). */
  authorizedKeys?: string[];
  /** Fixed port (default: a free one). */
  port?: number;
  /** Extra sshd_config lines; they override the defaults below (sshd keeps the first value). */
  extraConfig?: string[];
}

export interface Sshd {
  host: string;
  port: number;
  /** The login user (the user running the tests: root in CI). */
  user: string;
  hostKeyFingerprint: string;
  /** The generated client private key (OpenSSH format, unencrypted). */
  clientKey: string;
  clientKeyPath: string;
  clientPublicKey: string;
  dir: string;
  logPath: string;
  /** The listener's pid. */
  pid(): number;
  log(): string;
  /** Stop sshd and every session it forked, then remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Stop sshd (sessions too), make a new host key, start again on the same address and port. */
  restartWithNewHostKey(): Promise<void>;
  /** Kill every per-connection sshd process and the commands under them (drops every open connection;
   *  the listener keeps running). Returns how many processes were killed. */
  killSessionChildren(): Promise<number>;
  /** Like a node reboot: stop sshd and every connection, run `whileDown` (e.g. try to reconnect), start
   *  again on the same address and port with the same host key. */
  reboot(whileDown?: () => Promise<void>): Promise<void>;
}

export async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, address, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves when `address:port` answers with an SSH banner; rejects after timeoutMs. */
export async function waitForSshBanner(address: string, port: number, timeoutMs = 15_000, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = tcpConnect({ host: address, port });
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(2000, () => done(false));
      sock.once('error', () => done(false));
      sock.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    });
    if (ok) return;
    if (alive && !alive()) throw new Error(`sshd on ${address}:${port} exited before accepting connections`);
    if (Date.now() > deadline) throw new Error(`sshd on ${address}:${port} did not accept connections within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Direct children of a pid (from /proc). */
export async function childPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may contain spaces and parens: split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // process went away
    }
  }
  return out;
}

/** Processes whose SSH_CONNECTION names this server ("<client ip> <port> <host> <port>"). */
export async function sessionOrphans(host: string, port: number): Promise<number[]> {
  const suffix = ` ${host} ${port}`;
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const env = (await readFile(`/proc/${name}/environ`, 'utf8')).split('\0');
      if (env.some((e) => e.startsWith('SSH_CONNECTION=') && e.endsWith(suffix))) out.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** All descendants of a pid, deepest first. */
export async function descendantPids(pid: number): Promise<number[]> {
  const kids = await childPids(pid);
  const all: number[] = [];
  for (const k of kids) all.push(...(await descendantPids(k)), k);
  return all;
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function keygen(path: string, comment: string): Promise<string> {
  await rm(path, { force: true });
  await rm(`${path}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return (await readFile(`${path}.pub`, 'utf8')).trim();
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const host = opts.address ?? '127.0.0.2';
  const dir = await mkdtemp(join(tmpdir(), 'fk3s-sshd-'));
  await chmod(dir, 0o755);
  // Privilege separation directory; Debian's package creates it at boot only.
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch {
    // not root: sshd runs without privilege separation then
  }

  const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
  const clientKeyPath = join(dir, 'client_ed25519');
  const logPath = join(dir, 'sshd.log');
  const configPath = join(dir, 'sshd_config');
  let hostPub = await keygen(hostKeyPath, 'test-host');
  const clientPublicKey = await keygen(clientKeyPath, 'test-client');
  const clientKey = await readFile(clientKeyPath, 'utf8');
  await writeFile(join(dir, 'authorized_keys'), [clientPublicKey, ...(opts.authorizedKeys ?? [])].join('\n') + '\n', { mode: 0o600 });

  const port = opts.port ?? (await freePort(host));
  // sshd takes the first value it reads for a keyword: extra lines go first so they override.
  const config = [
    ...(opts.extraConfig ?? []),
    `ListenAddress ${host}`,
    `Port ${port}`,
    `HostKey ${hostKeyPath}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'Subsystem sftp internal-sftp',
    'AcceptEnv none',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    'MaxStartups 100:30:200',
    'LogLevel VERBOSE',
  ].join('\n');
  await writeFile(configPath, config + '\n');

  let proc: ChildProcess | undefined;
  let exited = true;
  let stopped = false;

  const start = async () => {
    const fd = openSync(logPath, 'a');
    try {
      proc = spawn(SSHD_PATH, ['-D', '-e', '-f', configPath], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    exited = false;
    const p = proc;
    p.once('exit', () => {
      if (p === proc) exited = true;
    });
    p.once('error', () => {
      if (p === proc) exited = true;
    });
    try {
      await waitForSshBanner(host, port, 15_000, () => !exited);
    } catch (err) {
      await halt();
      throw new Error(`${(err as Error).message}\n--- sshd log ---\n${safeRead(logPath)}`);
    }
  };

  const killSessionChildren = async () => {
    if (!proc?.pid || exited) return 0;
    // The per-connection monitors, their post-auth children (which hold the socket) and the commands.
    // sshd processes first (top down): if a command died first, its sshd could still send the exit
    // status and the client would see a normal exit instead of a lost connection.
    const all = (await descendantPids(proc.pid)).reverse();
    const sshds: number[] = [];
    for (const pid of all) if (readCmdline(pid).startsWith('sshd')) sshds.push(pid);
    for (const pid of sshds) kill(pid, 'SIGKILL');
    for (const pid of all) if (!sshds.includes(pid)) kill(pid, 'SIGKILL');
    return all.length;
  };

  const halt = async () => {
    const p = proc;
    if (!p?.pid) return;
    const descendants = await descendantPids(p.pid);
    for (const d of descendants) kill(d, 'SIGKILL');
    // Commands left behind by closed sessions (reparented to init) still carry this server in SSH_CONNECTION.
    for (const pid of await sessionOrphans(host, port)) kill(pid, 'SIGKILL');
    if (!exited) {
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      kill(p.pid, 'SIGTERM');
      const t = setTimeout(() => kill(p.pid!, 'SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    exited = true;
  };

  await start();

  const sshd: Sshd = {
    host,
    port,
    user: userInfo().username,
    hostKeyFingerprint: fingerprintOfPublicKey(hostPub),
    clientKey,
    clientKeyPath,
    clientPublicKey,
    dir,
    logPath,
    pid: () => proc?.pid ?? -1,
    log: () => safeRead(logPath),
    killSessionChildren,
    async reboot(whileDown) {
      await halt();
      await whileDown?.();
      await start();
    },
    async restartWithNewHostKey() {
      await halt();
      hostPub = await keygen(hostKeyPath, 'test-host-new');
      sshd.hostKeyFingerprint = fingerprintOfPublicKey(hostPub);
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return sshd;
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
