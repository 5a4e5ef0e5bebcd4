/**
 * The SSH connector over ssh2: host keys pinned, commands streamed line by line, SFTP with atomic writes.
 *
 * How to use:
 *
 *   import { createSshConnector, connectWithRetry } from '../src/ssh/client.js';
 *   import { sh } from '../src/shell/quote.js';
 *
 *   const ssh = createSshConnector();
 *   const session = await connectWithRetry(ssh, {
 *     host: '10.0.0.11', port: 22, username: 'core', label: 'homelab-server-1',
 *     privateKey,                      // and/or agent: process.env.SSH_AUTH_SOCK (see keys.ts: agentSocket())
 *     hostKeyFingerprint: pinned,      // "SHA256:…"; when unset, onNewHostKey(fp) decides (absent = refuse)
 *     onNewHostKey: (fp) => { pins.set('node:x', fp); return true; },
 *   }, { signal, timeoutMs: 300_000, onWait: (attempt, err) => log(`waiting for SSH: ${err.message}`) });
 *   try {
 *     const { code } = await session.exec(sh`test -e ${path}`);                // never throws on non-zero
 *     await session.run(sh`sudo systemctl enable --now ${unit}`, { onLine }); // throws RemoteError + stderr tail
 *     await session.writeFile('/var/lib/vz/snippets/x.ign', json, 0o600);     // temp name + rename
 *   } finally {
 *     await session.close();
 *   }
 *
 * Errors: HostKeyMismatchError / UnknownHostKeyError / SshAuthError are final (never retried);
 * SshConnectError.retryable marks "not up yet" (refused, timeout, unreachable, handshake timeout).
 * A connection that drops while a command runs rejects with RemoteError "connection to X lost during `cmd`":
 * the command may or may not have finished; the step re-checks and re-runs. Abort → AbortedError.
 * One session = one TCP connection; exec calls may run concurrently over it (one channel each), and
 * SFTP uses one channel opened on first use.
 *
 * Notes: an aborted or timed-out command gets a TERM signal request and its channel is closed. OpenSSH
 * delivers the signal (killpg) for non-root logins (core on Flatcar) but refuses it for root logins
 * ("session signalling requires privilege separation"), so there the remote command runs on by itself:
 * steps must stay safe to re-run. Commands must not contain NUL bytes.
 * An SSH server (e.g. the demo's ssh2 server) must send exit-status before closing an exec channel;
 * writeFile uses posix-rename@openssh.com when offered, else remove + rename.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { lazyRequire } from '../lazy-require.js';
import type { Client, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { AbortedError, BugError, RemoteError, UserError } from '../errors.js';
import { HostKeyMismatchError, SshAuthError, SshConnectError, UnknownHostKeyError } from './errors.js';
import { fingerprintOfBlob } from './keys.js';
import { labelOf } from './retry.js';
import type { ExecOptions, ExecResult, SshConnector, SshSession, SshTarget } from './types.js';

export { connectWithRetry, isRetryableConnectError, labelOf, type RetryOptions } from './retry.js';

export { HostKeyMismatchError, SshAuthError, SshConnectError, UnknownHostKeyError } from './errors.js';

/** ssh2 loads on first connect, not at import (plan/--help build steps that import this module). */
const ssh2 = lazyRequire<typeof import('ssh2')>('ssh2');

/** How many stderr lines a failed `run()` carries in its error. */
const STDERR_TAIL_LINES = 20;
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'EHOSTDOWN',
  'ECONNABORTED',
]);

export interface SshConnectorOptions {
  /** ssh2 debug lines (very verbose); never includes key material. */
  debug?: (line: string) => void;
  /** Keepalive interval; a dead peer is noticed after interval × 3. Default 15 s. */
  keepaliveIntervalMs?: number;
}

/** A command as shown in messages: first line, at most 120 characters. */
export function displayCommand(command: string): string {
  const first = command.split('\n')[0] ?? '';
  const short = first.length > 120 ? `${first.slice(0, 117)}…` : first;
  return short + (command.includes('\n') && short === first ? ' …' : '');
}

export function createSshConnector(options: SshConnectorOptions = {}): SshConnector {
  return {
    connect: (target, opts) => connectOnce(target, options, opts?.signal),
  };
}

function connectOnce(target: SshTarget, options: SshConnectorOptions, signal?: AbortSignal): Promise<SshSession> {
  const label = labelOf(target);
  if (signal?.aborted) return Promise.reject(new AbortedError());
  if (!target.privateKey && !target.agent) {
    return Promise.reject(
      new UserError(`No SSH key to log in to ${label} as ${target.username}.`, {
        fix: 'Give a private key file, or start ssh-agent with your key loaded (SSH_AUTH_SOCK).',
      }),
    );
  }

  return new Promise<SshSession>((resolve, reject) => {
    const client = new (ssh2().Client)();
    let presented: string | undefined;
    let hostKeyError: RemoteError | undefined;
    let settled = false;

    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      client.removeAllListeners('ready');
      client.on('error', () => {}); // late errors after we gave up must not crash the process
      client.destroy();
      reject(err);
    };
    const onAbort = () => fail(new AbortedError(`Stopped while connecting to ${label}`));
    signal?.addEventListener('abort', onAbort, { once: true });

    const hostVerifier = (key: Buffer): boolean => {
      presented = fingerprintOfBlob(key);
      if (target.hostKeyFingerprint) {
        // Tolerate a pasted pin with base64 padding ("…=") or "sha256:" in lower case.
        const pinned = target.hostKeyFingerprint
          .trim()
          .replace(/^sha256:/i, 'SHA256:')
          .replace(/=+$/, '');
        if (presented === pinned) return true;
        hostKeyError = new HostKeyMismatchError(
          label,
          target.hostKeyFingerprint,
          presented,
          target.forgetPinHint ?? defaultForgetHint(label),
        );
        return false;
      }
      let ok = false;
      try {
        ok = target.onNewHostKey?.(presented) === true;
      } catch {
        ok = false;
      }
      if (!ok) hostKeyError = new UnknownHostKeyError(label, presented);
      return ok;
    };

    client.once('ready', () => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      resolve(new Ssh2Session(client, target, label, presented ?? ''));
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      fail(hostKeyError ?? mapConnectError(err, target, label));
    });
    client.on('close', () => {
      if (!settled)
        fail(hostKeyError ?? new SshConnectError(`The connection to ${label} closed during the SSH handshake.`, { retryable: true }));
    });

    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      readyTimeout: target.readyTimeoutMs ?? 20_000,
      keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: 3,
      hostVerifier,
      ...(target.privateKey ? { privateKey: target.privateKey } : {}),
      ...(target.passphrase ? { passphrase: target.passphrase } : {}),
      ...(target.agent ? { agent: target.agent } : {}),
      ...(options.debug ? { debug: options.debug } : {}),
    };
    // Our own socket, with TCP_NODELAY: with Nagle + delayed ACK every small SSH packet (exec
    // request, channel data, SFTP reply) waited ~40 ms, and commands are request/response round trips.
    // ssh2 waits for a connecting net.Socket's 'connect' and reports its errors as its own.
    const sock = netConnect({ host: target.host, port: target.port });
    sock.setNoDelay(true);
    // TCP keep-alive under SSH's own (keepaliveInterval): a connection shared by a whole run notices a
    // vanished peer (a node that rebooted without closing) and the pool reconnects.
    sock.setKeepAlive(true, 15_000);
    coalesceWrites(sock);
    try {
      client.connect({ ...config, sock });
    } catch (err) {
      sock.destroy();
      // ssh2 throws synchronously on an unreadable private key.
      const msg = (err as Error).message;
      fail(
        /encrypted|passphrase/i.test(msg) && !target.passphrase
          ? new UserError(`The SSH private key for ${label} is protected by a passphrase: ssh-agent or an unencrypted key is needed.`, {
              fix: 'Load the key into ssh-agent (ssh-add) and make sure SSH_AUTH_SOCK is set, or give a key without a passphrase.',
              cause: err,
            })
          : new UserError(`The SSH private key for ${label} cannot be used: ${msg}`, {
              fix: 'Give an unencrypted OpenSSH/PEM key (or the right passphrase), or use ssh-agent.',
              cause: err,
            }),
      );
    }
  });
}

function defaultForgetHint(label: string): string {
  return `\`flatcar-k3s forget-host-key ${label}\` (or remove its pinned hostKey from the config/state)`;
}

function mapConnectError(err: Error & { level?: string; code?: string }, target: SshTarget, label: string): RemoteError {
  const where = `${label} (${target.host}:${target.port})`;
  if (err.level === 'client-authentication') {
    const tried = [target.privateKey ? 'the private key given' : '', target.agent ? `the keys in ssh-agent (${target.agent})` : '']
      .filter(Boolean)
      .join(' and ');
    return new SshAuthError(`SSH to ${label} as ${target.username} was refused: no accepted key (tried ${tried}).`, {
      fix:
        `Put your public key in nodes.sshKeys (cluster nodes) or in ~${target.username}/.ssh/authorized_keys on the host, ` +
        'or load the matching key into ssh-agent.',
      detail: err.message,
      cause: err,
    });
  }
  if (err.level === 'agent') {
    return new SshAuthError(`ssh-agent (${target.agent}) failed while logging in to ${label}: ${err.message}`, {
      fix: 'Check that ssh-agent is running and SSH_AUTH_SOCK points to it (ssh-add -l).',
      cause: err,
    });
  }
  if (err.level === 'client-timeout') {
    return new SshConnectError(`SSH to ${where} timed out during the handshake.`, { retryable: true, code: 'ETIMEDOUT', cause: err });
  }
  if (err.level === 'client-dns') {
    return new SshConnectError(`Cannot resolve ${target.host} (for ${label}): ${err.message}`, {
      retryable: false,
      code: err.code,
      fix: 'Check the host name or use an IP address.',
      cause: err,
    });
  }
  if (err.code && RETRYABLE_CODES.has(err.code)) {
    return new SshConnectError(`Cannot reach SSH on ${where}: ${err.code}.`, { retryable: true, code: err.code, cause: err });
  }
  if (/Connection lost before handshake|Timed out while waiting for handshake/i.test(err.message)) {
    return new SshConnectError(`SSH to ${where}: ${err.message}.`, { retryable: true, cause: err });
  }
  return new SshConnectError(`SSH to ${where} failed: ${err.message}`, { retryable: false, code: err.code, cause: err });
}

/** Splits a byte stream into lines (UTF-8 safe across chunk boundaries), dropping "\r" before "\n". */
class LineSplitter {
  private decoder = new StringDecoder('utf8');
  private partial = '';
  constructor(private emit: (line: string) => void) {}
  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.write(chunk);
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.emit(l.endsWith('\r') ? l.slice(0, -1) : l);
  }
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest) this.emit(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
  }
}

function tail(text: string, n: number): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.slice(-n).join('\n');
}

class Ssh2Session implements SshSession {
  private closed = false;
  private lostReason: string | undefined;
  /** Pending operations, failed together when the connection drops. */
  private pending = new Set<(err: Error) => void>();
  private sftpPromise: Promise<SFTPWrapper> | undefined;

  constructor(
    private client: Client,
    private target: SshTarget,
    private label: string,
    readonly hostKeyFingerprint: string,
  ) {
    client.on('error', (err: Error) => {
      this.lostReason ??= err.message;
    });
    client.on('close', () => {
      const wasClosed = this.closed;
      this.closed = true;
      if (!wasClosed) this.lostReason ??= 'closed by the remote side';
      for (const f of [...this.pending]) f(new Error(this.lostReason ?? 'connection closed'));
      this.pending.clear();
    });
  }

  isOpen(): boolean {
    return !this.closed;
  }

  private lostError(command: string, reason?: string): RemoteError {
    return new RemoteError(`The connection to ${this.label} was lost during \`${displayCommand(command)}\`.`, {
      detail: reason ?? this.lostReason,
      fix: 'The command may or may not have finished; running the step again re-checks and resumes.',
    });
  }

  private notOpen(what: string): RemoteError {
    return new RemoteError(
      `The SSH connection to ${this.label} is ${this.lostReason ? 'lost' : 'closed'}; cannot run \`${displayCommand(what)}\`.`,
      {
        detail: this.lostReason,
      },
    );
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.signal?.aborted) return Promise.reject(new AbortedError());
    if (this.closed) return Promise.reject(this.notOpen(command));
    if (command.includes('\0')) {
      // OpenSSH drops the whole connection on an exec request with a NUL byte.
      return Promise.reject(new BugError(`A command for ${this.label} contains a NUL byte: ${JSON.stringify(displayCommand(command))}`));
    }
    return new Promise<ExecResult>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let exitCode: number | undefined;
      let exitSignal: string | undefined;
      let channel: ClientChannel | undefined;
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      // A throwing onLine must not escape into ssh2's event handlers: it fails this exec instead.
      const deliver = (l: string, stream: 'stdout' | 'stderr') => {
        if (done) return;
        try {
          opts.onLine?.(l, stream);
        } catch (err) {
          finish(err instanceof Error ? err : new Error(String(err)));
        }
      };
      const outLines = new LineSplitter((l) => deliver(l, 'stdout'));
      const errLines = new LineSplitter((l) => deliver(l, 'stderr'));
      const outDec = new StringDecoder('utf8');
      const errDec = new StringDecoder('utf8');

      const finish = (err?: Error) => {
        if (done) return;
        if (!err) {
          // Deliver the last partial lines while still live (a throwing onLine turns into the error).
          outLines.end();
          errLines.end();
          if (done) return;
        }
        done = true;
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(onLost);
        if (err) {
          if (channel) stopChannel(channel);
          reject(err);
          return;
        }
        stdout += outDec.end();
        stderr += errDec.end();
        const code = exitCode ?? (exitSignal ? 128 + signalNumber(exitSignal) : 255);
        resolve({ code, stdout, stderr });
      };
      const onAbort = () => finish(new AbortedError(`Stopped \`${displayCommand(command)}\` on ${this.label}`));
      const onLost = (err: Error) => finish(this.lostError(command, err.message));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.add(onLost);
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              new RemoteError(
                `\`${displayCommand(command)}\` on ${this.label} did not finish within ${Math.round(opts.timeoutMs! / 1000)} s; stopped it.`,
                {
                  detail: tail(stderr, STDERR_TAIL_LINES) || undefined,
                },
              ),
            ),
          opts.timeoutMs,
        );
      }

      try {
        this.client.exec(command, (err, ch) => {
          if (err) {
            finish(
              this.closed
                ? this.lostError(command, err.message)
                : new RemoteError(`Cannot start \`${displayCommand(command)}\` on ${this.label}: ${err.message}`, { cause: err }),
            );
            return;
          }
          channel = ch;
          if (done) {
            stopChannel(ch);
            return;
          }
          ch.on('data', (d: Buffer) => {
            stdout += outDec.write(d);
            outLines.push(d);
          });
          ch.stderr.on('data', (d: Buffer) => {
            stderr += errDec.write(d);
            errLines.push(d);
          });
          ch.on('exit', (code: number | null, sig?: string) => {
            if (typeof code === 'number') exitCode = code;
            else if (sig) exitSignal = sig;
          });
          ch.on('close', () => {
            if (exitCode !== undefined || exitSignal !== undefined) {
              finish();
              return;
            }
            // No exit status: the connection went away under the command (ssh2 closes the channels
            // before it emits the client's 'close', so look again on the next turn), or the server
            // ended the channel without saying how the command ended.
            setImmediate(() =>
              finish(
                this.closed || this.lostReason
                  ? this.lostError(command)
                  : new RemoteError(`\`${displayCommand(command)}\` on ${this.label} ended without an exit status.`, {
                      detail: tail(stderr, STDERR_TAIL_LINES) || undefined,
                      fix: 'The SSH server closed the channel early; run the step again.',
                    }),
              ),
            );
          });
          ch.on('error', () => {});
          if (opts.stdin !== undefined) ch.end(opts.stdin);
          else ch.end();
        });
      } catch (err) {
        finish(
          this.closed
            ? this.lostError(command, (err as Error).message)
            : new RemoteError(`Cannot start \`${displayCommand(command)}\` on ${this.label}: ${(err as Error).message}`),
        );
      }
    });
  }

  async run(command: string, opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) {
      const t = tail(r.stderr, STDERR_TAIL_LINES) || tail(r.stdout, STDERR_TAIL_LINES);
      throw new RemoteError(`\`${displayCommand(command)}\` failed on ${this.label} with exit code ${r.code}.`, {
        detail: t || undefined,
      });
    }
    return r.stdout;
  }

  private sftp(): Promise<SFTPWrapper> {
    if (this.closed) return Promise.reject(this.notOpen('sftp'));
    this.sftpPromise ??= new Promise<SFTPWrapper>((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) {
          this.sftpPromise = undefined;
          reject(
            new RemoteError(`Cannot open SFTP on ${this.label}: ${err.message}`, {
              fix: 'Check that the SSH server allows the sftp subsystem.',
              cause: err,
            }),
          );
          return;
        }
        sftp.on('close', () => {
          this.sftpPromise = undefined;
        });
        sftp.on('error', () => {});
        resolve(sftp);
      });
    });
    return this.sftpPromise;
  }

  /** Runs one SFTP call; a dropped connection rejects it with a "connection lost" error. */
  private sftpCall<T>(what: string, fn: (sftp: SFTPWrapper, cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    return this.sftp().then(
      (sftp) =>
        new Promise<T>((resolve, reject) => {
          let done = false;
          const onLost = (err: Error) => {
            if (done) return;
            done = true;
            reject(this.lostError(what, err.message));
          };
          this.pending.add(onLost);
          fn(sftp, (err, v) => {
            if (done) return;
            done = true;
            this.pending.delete(onLost);
            if (err) reject(err);
            else resolve(v as T);
          });
        }),
    );
  }

  async writeFile(remotePath: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const tmp = `${remotePath}.tmp-${randomBytes(6).toString('hex')}`;
    const what = `sftp write ${remotePath}`;
    const wrap = (step: string) => (err: unknown) => {
      if (err instanceof RemoteError) throw err;
      throw new RemoteError(`Cannot write ${remotePath} on ${this.label} (${step}): ${(err as Error).message}`, {
        fix: 'Check that the directory exists and the SSH user may write to it.',
        cause: err,
      });
    };
    try {
      await this.sftpCall<void>(what, (s, cb) => s.writeFile(tmp, data, { mode }, (e) => cb(e))).catch(wrap('write'));
      // The mode given at open is filtered by the server's umask: set it explicitly.
      await this.sftpCall<void>(what, (s, cb) => s.chmod(tmp, mode, (e) => cb(e))).catch(wrap('chmod'));
      await this.sftpCall<void>(what, (s, cb) => s.ext_openssh_rename(tmp, remotePath, (e) => cb(e)))
        .catch(async (err: Error) => {
          if (err instanceof RemoteError || !/not support/i.test(err.message)) throw err;
          // No posix-rename: plain SFTP rename fails when the target exists, so remove it first.
          await this.sftpCall<void>(what, (s, cb) => s.unlink(remotePath, () => cb(null)));
          await this.sftpCall<void>(what, (s, cb) => s.rename(tmp, remotePath, (e) => cb(e)));
        })
        .catch(wrap('rename'));
    } catch (err) {
      if (!this.closed) await this.sftpCall<void>(what, (s, cb) => s.unlink(tmp, () => cb(null))).catch(() => {});
      throw err;
    }
  }

  async readFile(remotePath: string): Promise<Buffer> {
    return this.sftpCall<Buffer>(`sftp read ${remotePath}`, (s, cb) => s.readFile(remotePath, (e, b) => cb(e, b))).catch((err: Error) => {
      if (err instanceof RemoteError) throw err;
      throw new RemoteError(`Cannot read ${remotePath} on ${this.label}: ${err.message}`, { cause: err });
    });
  }

  async stat(remotePath: string): Promise<{ size: number; mode: number } | null> {
    try {
      const st = await this.sftpCall<{ size: number; mode: number }>(`sftp stat ${remotePath}`, (s, cb) =>
        s.stat(remotePath, (e, st) => cb(e, st)),
      );
      return { size: st.size, mode: st.mode & 0o7777 };
    } catch (err) {
      if (err instanceof RemoteError) throw err;
      if ((err as { code?: number }).code === ssh2().utils.sftp.STATUS_CODE.NO_SUCH_FILE) return null;
      throw new RemoteError(`Cannot stat ${remotePath} on ${this.label}: ${(err as Error).message}`, { cause: err });
    }
  }

  async remove(remotePath: string): Promise<boolean> {
    try {
      await this.sftpCall<void>(`sftp remove ${remotePath}`, (s, cb) => s.unlink(remotePath, (e) => cb(e)));
      return true;
    } catch (err) {
      if (err instanceof RemoteError) throw err;
      if ((err as { code?: number }).code === ssh2().utils.sftp.STATUS_CODE.NO_SUCH_FILE) return false;
      throw new RemoteError(`Cannot remove ${remotePath} on ${this.label}: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.client.destroy();
        resolve();
      }, 3000);
      this.client.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.client.end();
    });
  }
}

/** Ask the remote command to stop (TERM, where the server honours signal requests) and close the channel. */
function stopChannel(ch: ClientChannel): void {
  try {
    // Channel.signal() refuses once our side of the stream is ended (we always send EOF after stdin),
    // so send the request through the protocol object the same way it would.
    const c = ch as unknown as {
      outgoing?: { id: number; state: string };
      _client?: { _protocol?: { signal(id: number, sig: string): void } };
    };
    if ((c.outgoing?.state === 'open' || c.outgoing?.state === 'eof') && c._client?._protocol)
      c._client._protocol.signal(c.outgoing.id, 'TERM');
    else ch.signal('TERM');
  } catch {
    // channel already closing
  }
  try {
    ch.close();
  } catch {
    // already closed
  }
}

/**
 * ssh2 writes each SSH packet to the socket on its own (one syscall each; an exec is several packets).
 * Corking the socket on the first write of a turn and uncorking it at the end of that turn sends them
 * in one writev, with TCP_NODELAY still sending the batch at once.
 */
function coalesceWrites(sock: import('node:net').Socket): void {
  const write = sock.write.bind(sock) as (...a: unknown[]) => boolean;
  let corked = false;
  (sock as { write: unknown }).write = (...a: unknown[]) => {
    if (!corked && !sock.destroyed) {
      corked = true;
      sock.cork();
      process.nextTick(() => {
        corked = false;
        sock.uncork();
      });
    }
    return write(...a);
  };
}

function signalNumber(name: string): number {
  const n = (osConstants.signals as Record<string, number>)[`SIG${name}`];
  return typeof n === 'number' ? n : 0;
}
