/**
 * SSH failures, typed by what the caller should do: retry (SshConnectError with `retryable`),
 * or stop and tell the user (host key mismatch / unknown host key / auth refused).
 */
import { RemoteError, type ErrorDetails } from '../errors.js';

/** The TCP connection or the SSH handshake failed. `retryable` while a VM may still be booting. */
export class SshConnectError extends RemoteError {
  readonly code?: string;
  readonly retryable: boolean;
  constructor(message: string, details: ErrorDetails & { code?: string; retryable: boolean }) {
    super(message, details);
    this.code = details.code;
    this.retryable = details.retryable;
  }
}

/** The host presented a key other than the pinned one. Final: never retried, nothing was sent. */
export class HostKeyMismatchError extends RemoteError {
  readonly label: string;
  readonly pinned: string;
  readonly presented: string;
  constructor(label: string, pinned: string, presented: string, forgetHint: string) {
    super(
      `The SSH host key of ${label} changed: pinned ${pinned}, presented ${presented}. ` +
        `Refusing to connect (this is what a machine-in-the-middle attack looks like).`,
      { fix: `If the VM was re-created, forget the pin with ${forgetHint}, then run again.` },
    );
    this.label = label;
    this.pinned = pinned;
    this.presented = presented;
  }
}

/** No pin and nobody accepted the new key (no onNewHostKey, or it said no). Final. */
export class UnknownHostKeyError extends RemoteError {
  readonly label: string;
  readonly presented: string;
  constructor(label: string, presented: string) {
    super(`The SSH host key of ${label} (${presented}) is not known and was not accepted. Refusing to connect.`, {
      fix: `Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin it in the config, or confirm it when asked.`,
    });
    this.label = label;
    this.presented = presented;
  }
}

/** The server refused every key we offered. Final. */
export class SshAuthError extends RemoteError {}
