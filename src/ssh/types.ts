/**
 * The narrow SSH interface: used to reach the PVE host (snippet upload) and the Flatcar nodes.
 * Implemented over ssh2 in src/ssh/client.ts. Host keys are pinned, never ignored.
 */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** PEM/OpenSSH private key contents. */
  privateKey?: string | Buffer;
  /** Passphrase of an encrypted privateKey (prefer ssh-agent). */
  passphrase?: string;
  /** ssh-agent socket path (SSH_AUTH_SOCK). */
  agent?: string;
  /**
   * Pinned host key "SHA256:<base64>" (OpenSSH format). When set, any other key is refused with a
   * HostKeyMismatch error naming old and new fingerprints. When unset, `onNewHostKey` decides.
   */
  hostKeyFingerprint?: string;
  /** First contact: return true to trust (the caller records it). Absent = refuse unknown keys. */
  onNewHostKey?: (fingerprint: string) => boolean;
  /** How to forget a stale pin, for the host key mismatch message, e.g. "`flatcar-k3s forget-host-key x`". */
  forgetPinHint?: string;
  /** Label for messages, e.g. "homelab-server-1" or "PVE host pve1". */
  label?: string;
  readyTimeoutMs?: number;
}

export interface ExecOptions {
  signal?: AbortSignal;
  stdin?: string | Buffer;
  /** Streamed output, line by line. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SshSession {
  /** The host key fingerprint seen for this connection ("SHA256:…"). */
  readonly hostKeyFingerprint: string;
  /** False once the connection is gone (dropped, closed); absent = cannot tell. */
  isOpen?(): boolean;
  /** Run one command line (build it with src/shell/quote.ts). Resolves with the exit code; never throws on non-zero. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** exec that throws RemoteError with the stderr tail when the exit code is not 0. */
  run(command: string, opts?: ExecOptions): Promise<string>;
  /** Write a file over SFTP (atomically: temp name + rename) with the given mode. */
  writeFile(remotePath: string, data: string | Buffer, mode?: number): Promise<void>;
  readFile(remotePath: string): Promise<Buffer>;
  /** null when the file does not exist. `mode` is the permission bits only (mode & 0o7777). */
  stat(remotePath: string): Promise<{ size: number; mode: number } | null>;
  /** Delete a file over SFTP; false when it did not exist. */
  remove(remotePath: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface SshConnector {
  connect(target: SshTarget, opts?: { signal?: AbortSignal }): Promise<SshSession>;
}
