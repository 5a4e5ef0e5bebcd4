/**
 * The PVE host's SSH as far as the installer needs it: public-key auth for one generated client key,
 * SFTP confined to the `local` storage directory (so uploaded snippets become volumes), and exec of
 * `pveversion` and `sha256sum <path>`; anything else exits 127 like a shell without that command.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
  chmodSync,
  type Stats,
} from 'node:fs';
import { dirname, posix, resolve } from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, SFTPWrapper } from 'ssh2';
import { splitShellWords } from '../shell/split.js';
import { startSshd } from './sshd.js';

const { utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;
const OPEN = utils.sftp.OPEN_MODE;

export interface SshHostOptions {
  host: string;
  port?: number;
  user: string;
  /** The real directory of this host's `local` storage. */
  root: string;
  /**
   * The path clients use for `root` (the `path` /storage/local reports, the same on every node as
   * /var/lib/vz is): another node of the simulator keeps its `local` elsewhere. Default: root.
   */
  rootAt?: string;
  /** Directories of shared storages, reachable at their own path from every node. */
  sharedRoots?: string[];
  pveVersion: string;
  /** Saved keys (OpenSSH private keys) of a persisted simulator; fresh ones otherwise. */
  hostKey?: string;
  clientKey?: string;
}

export interface SshHost {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /** The host's private key (to persist it). */
  hostPrivateKey: string;
  hostKeyFingerprint: string;
  close(): Promise<void>;
}

/** OpenSSH-style fingerprint of a public key line ("ssh-ed25519 AAAA…"). */
export function sshFingerprint(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1]!, 'base64');
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function toAttrs(st: Stats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

function longname(name: string, st: Stats): string {
  const type = st.isDirectory() ? 'd' : '-';
  const perms = ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'].map((c, i) => (st.mode & (1 << (8 - i)) ? c : '-')).join('');
  return `${type}${perms} 1 root root ${st.size} Jan  1 00:00 ${name}`;
}

/** How a host's client paths map to real ones: its `local` (maybe kept elsewhere) and the shared storages. */
interface HostPaths {
  root: string;
  rootAt: string;
  shared: string[];
}

/** The real path of a client path (absolute, or relative to the home = root), before any confinement check. */
function toReal(paths: HostPaths, p: string): string {
  const abs = posix.isAbsolute(p) ? posix.normalize(p) : posix.join(paths.rootAt, p);
  const real = abs === paths.rootAt || abs.startsWith(paths.rootAt + '/') ? paths.root + abs.slice(paths.rootAt.length) : abs;
  return resolve(real);
}

const within = (paths: HostPaths, real: string): boolean =>
  [paths.root, ...paths.shared].some((r) => real === r || real.startsWith(r + '/'));

function serveSftp(sftp: SFTPWrapper, paths: HostPaths): void {
  const handles = new Map<number, { fd?: number; dir?: string; listed?: boolean }>();
  let next = 1;
  const mkHandle = (h: { fd?: number; dir?: string }): Buffer => {
    const id = next++;
    handles.set(id, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return b;
  };
  const getHandle = (b: Buffer) => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);
  /** Map a client path to a real path inside the host's storages; undefined when outside. */
  const inside = (p: string): string | undefined => {
    const real = toReal(paths, p);
    if (!within(paths, real)) return undefined;
    // symlinks must not lead out either
    let probe = real;
    while (!existsSync(probe)) probe = dirname(probe);
    return within(paths, realpathSync(probe)) ? real : undefined;
  };
  const guard = (reqId: number, p: string, fn: (real: string) => void): void => {
    const real = inside(p);
    if (!real) return void sftp.status(reqId, STATUS.PERMISSION_DENIED, 'Permission denied');
    try {
      fn(real);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      sftp.status(
        reqId,
        code === 'ENOENT' ? STATUS.NO_SUCH_FILE : code === 'EACCES' ? STATUS.PERMISSION_DENIED : STATUS.FAILURE,
        (e as Error).message,
      );
    }
  };

  sftp.on('OPEN', (reqId, filename, flags, attrs) =>
    guard(reqId, filename, (real) => {
      let f = 0;
      if (flags & OPEN.READ && flags & OPEN.WRITE) f = fsc.O_RDWR;
      else if (flags & OPEN.WRITE) f = fsc.O_WRONLY;
      else f = fsc.O_RDONLY;
      if (flags & OPEN.CREAT) f |= fsc.O_CREAT;
      if (flags & OPEN.TRUNC) f |= fsc.O_TRUNC;
      if (flags & OPEN.EXCL) f |= fsc.O_EXCL;
      if (flags & OPEN.APPEND) f |= fsc.O_APPEND;
      const fd = openSync(real, f, attrs?.mode !== undefined ? attrs.mode & 0o7777 : 0o644);
      sftp.handle(reqId, mkHandle({ fd }));
    }),
  );
  sftp.on('WRITE', (reqId, handle, offset, data) => {
    const h = getHandle(handle);
    if (h?.fd === undefined) return void sftp.status(reqId, STATUS.FAILURE);
    writeSync(h.fd, data, 0, data.length, offset);
    sftp.status(reqId, STATUS.OK);
  });
  sftp.on('READ', (reqId, handle, offset, len) => {
    const h = getHandle(handle);
    if (h?.fd === undefined) return void sftp.status(reqId, STATUS.FAILURE);
    const buf = Buffer.alloc(len);
    const n = readSync(h.fd, buf, 0, len, offset);
    if (n === 0) return void sftp.status(reqId, STATUS.EOF);
    sftp.data(reqId, buf.subarray(0, n));
  });
  sftp.on('FSTAT', (reqId, handle) => {
    const h = getHandle(handle);
    if (h?.fd === undefined) return void sftp.status(reqId, STATUS.FAILURE);
    sftp.attrs(reqId, toAttrs(fstatSync(h.fd)));
  });
  sftp.on('FSETSTAT', (reqId) => sftp.status(reqId, STATUS.OK));
  sftp.on('CLOSE', (reqId, handle) => {
    const h = getHandle(handle);
    if (!h) return void sftp.status(reqId, STATUS.FAILURE);
    if (h.fd !== undefined) closeSync(h.fd);
    handles.delete(handle.readUInt32BE(0));
    sftp.status(reqId, STATUS.OK);
  });
  sftp.on('OPENDIR', (reqId, path) =>
    guard(reqId, path, (real) => {
      if (!statSync(real).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      sftp.handle(reqId, mkHandle({ dir: real }));
    }),
  );
  sftp.on('READDIR', (reqId, handle) => {
    const h = getHandle(handle);
    if (!h?.dir) return void sftp.status(reqId, STATUS.FAILURE);
    if (h.listed) return void sftp.status(reqId, STATUS.EOF);
    h.listed = true;
    const names = readdirSync(h.dir).map((filename) => {
      const st = lstatSync(`${h.dir}/${filename}`);
      return { filename, longname: longname(filename, st), attrs: toAttrs(st) };
    });
    sftp.name(reqId, names);
  });
  sftp.on('STAT', (reqId, path) => guard(reqId, path, (real) => sftp.attrs(reqId, toAttrs(statSync(real)))));
  sftp.on('LSTAT', (reqId, path) => guard(reqId, path, (real) => sftp.attrs(reqId, toAttrs(lstatSync(real)))));
  sftp.on('SETSTAT', (reqId, path, attrs) =>
    guard(reqId, path, (real) => {
      if (attrs.mode !== undefined) chmodSync(real, attrs.mode & 0o7777);
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on('MKDIR', (reqId, path, attrs) =>
    guard(reqId, path, (real) => {
      mkdirSync(real, { mode: attrs?.mode ?? 0o755 });
      sftp.status(reqId, STATUS.OK);
    }),
  );
  sftp.on('RMDIR', (reqId, path) => guard(reqId, path, (real) => (rmdirSync(real), sftp.status(reqId, STATUS.OK))));
  sftp.on('REMOVE', (reqId, path) => guard(reqId, path, (real) => (unlinkSync(real), sftp.status(reqId, STATUS.OK))));
  sftp.on('RENAME', (reqId, from, to) =>
    guard(reqId, from, (realFrom) =>
      guard(reqId, to, (realTo) => {
        if (existsSync(realTo)) return void sftp.status(reqId, STATUS.FAILURE, 'file exists');
        renameSync(realFrom, realTo);
        sftp.status(reqId, STATUS.OK);
      }),
    ),
  );
  sftp.on('EXTENDED', (reqId: number, name: string, data: Buffer) => {
    if (name !== 'posix-rename@openssh.com') return void sftp.status(reqId, STATUS.OP_UNSUPPORTED);
    const l1 = data.readUInt32BE(0);
    const from = data.subarray(4, 4 + l1).toString();
    const l2 = data.readUInt32BE(4 + l1);
    const to = data.subarray(8 + l1, 8 + l1 + l2).toString();
    guard(reqId, from, (realFrom) => guard(reqId, to, (realTo) => (renameSync(realFrom, realTo), sftp.status(reqId, STATUS.OK))));
  });
  sftp.on('REALPATH', (reqId, path) => {
    const abs = posix.isAbsolute(path) ? posix.normalize(path) : posix.join(paths.rootAt, path);
    sftp.name(reqId, [{ filename: abs, longname: abs, attrs: {} as Attributes }]);
  });
}

function runCommand(command: string, paths: HostPaths, pveVersion: string): { code: number; stdout: string; stderr: string } {
  const argv = splitShellWords(command);
  if (!argv)
    return { code: 2, stdout: '', stderr: `bash: the simulated PVE host does not run this shell syntax: ${command.slice(0, 80)}\n` };
  const [cmd, ...args] = argv;
  if (cmd === 'pveversion') return { code: 0, stdout: `pve-manager/${pveVersion}/f00dcafe (running kernel: 6.8.12-9-pve)\n`, stderr: '' };
  if (cmd === 'sha256sum' && args.length >= 1) {
    let out = '';
    let err = '';
    for (const p of args) {
      const real = toReal(paths, p);
      if (within(paths, real) && existsSync(real) && statSync(real).isFile()) {
        out += `${createHash('sha256').update(readFileSync(real)).digest('hex')}  ${p}\n`;
      } else {
        err += `sha256sum: ${p}: No such file or directory\n`;
      }
    }
    return { code: err ? 1 : 0, stdout: out, stderr: err };
  }
  return { code: 127, stdout: '', stderr: `bash: line 1: ${cmd ?? ''}: command not found\n` };
}

/** "ssh-ed25519 AAAA…" of an OpenSSH private key. */
function publicLine(privateKey: string): string {
  const k = utils.parseKey(privateKey);
  const key = Array.isArray(k) ? k[0] : k;
  if (!key || key instanceof Error) throw new Error(`unreadable saved SSH key: ${key instanceof Error ? key.message : 'empty'}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}

/**
 * An ed25519 key pair ssh2 can read back (its generator drops a leading zero byte of the public key
 * about 1 in 200 times, giving a malformed key: generate again then; a saved key must be sound).
 */
function generateKey(comment?: string): { private: string; public: string } {
  for (;;) {
    const kp = utils.generateKeyPairSync('ed25519', comment ? { comment } : undefined);
    const pub = utils.parseKey(kp.public);
    const priv = utils.parseKey(kp.private);
    if (!(pub instanceof Error) && !(priv instanceof Error)) return kp;
  }
}

export async function startSshHost(opts: SshHostOptions): Promise<SshHost> {
  const root = realpathSync(opts.root);
  const paths: HostPaths = { root, rootAt: opts.rootAt ?? root, shared: (opts.sharedRoots ?? []).map((d) => realpathSync(d)) };
  const hostKey = opts.hostKey ? { private: opts.hostKey, public: publicLine(opts.hostKey) } : generateKey();
  const client = opts.clientKey ? { private: opts.clientKey, public: publicLine(opts.clientKey) } : generateKey('flatcar-k3s-demo');
  const allowed = utils.parseKey(client.public);
  if (allowed instanceof Error) throw allowed;
  const sshd = await startSshd({
    host: opts.host,
    port: opts.port ?? 0,
    hostKey: hostKey.private,
    authorize: (user, key) => {
      const pub = allowed.getPublicSSH();
      const same = key.algo === allowed.type && key.data.length === pub.length && timingSafeEqual(key.data, pub);
      return user === opts.user && same ? allowed : undefined;
    },
    sftp: (sftp) => serveSftp(sftp, paths),
    exec: (command, stream) => {
      const r = runCommand(command, paths, opts.pveVersion);
      stream.resume();
      if (r.stdout) stream.write(r.stdout);
      if (r.stderr) stream.stderr.write(r.stderr);
      stream.exit(r.code);
      stream.end();
    },
  });
  return {
    host: opts.host,
    port: sshd.port,
    user: opts.user,
    privateKey: client.private,
    hostPrivateKey: hostKey.private,
    hostKeyFingerprint: sshFingerprint(hostKey.public),
    close: () => sshd.close(),
  };
}
