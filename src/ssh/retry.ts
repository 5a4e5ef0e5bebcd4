/**
 * Connecting while a host comes up: retry while it refuses or does not answer yet, until a deadline.
 * Kept apart from the SSH client (client.ts) so that steps that only describe themselves (plan) do not
 * load the client: the connector is passed in.
 */
import { AbortedError } from '../errors.js';
import { sleep } from '../sleep.js';
import { SshConnectError } from './errors.js';
import type { SshConnector, SshSession, SshTarget } from './types.js';

export function labelOf(target: SshTarget): string {
  return target.label ?? (target.port && target.port !== 22 ? `${target.host}:${target.port}` : target.host);
}

export interface RetryOptions {
  signal?: AbortSignal;
  /** Give up after this long (default 5 minutes). */
  timeoutMs?: number;
  /** Called before each wait with the attempt number (1-based) and the error that caused it. */
  onWait?: (attempt: number, err: Error) => void;
  /** First delay; doubles up to maxDelayMs. Defaults 500 ms / 5 s. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Instead of doubling: the next delay from the time waited so far (e.g. a share of it, for a boot). */
  nextDelayMs?: (waitedMs: number) => number;
}

/**
 * Connect, retrying while the host is not up yet (refused, timed out, unreachable, handshake timeout),
 * with backoff until the deadline. Host key and auth failures are final and thrown at once.
 */
export async function connectWithRetry(connector: SshConnector, target: SshTarget, opts: RetryOptions = {}): Promise<SshSession> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const deadline = Date.now() + timeoutMs;
  let delay = opts.initialDelayMs ?? 500;
  const maxDelay = opts.maxDelayMs ?? 5000;
  const label = labelOf(target);
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new AbortedError(`Stopped while waiting for SSH on ${label}`);
    const remaining = deadline - Date.now();
    const readyTimeoutMs = Math.max(1000, Math.min(target.readyTimeoutMs ?? 20_000, remaining));
    try {
      return await connector.connect({ ...target, readyTimeoutMs }, { signal: opts.signal });
    } catch (err) {
      if (!isRetryableConnectError(err)) throw err;
      if (Date.now() + delay > deadline) {
        throw new SshConnectError(
          `SSH on ${label} (${target.host}:${target.port}) did not come up within ${Math.round(timeoutMs / 1000)} s: ${(err as Error).message}`,
          {
            retryable: false,
            code: (err as SshConnectError).code,
            fix: 'Check that the VM booted and got the expected address (Proxmox console), then run again.',
            cause: err,
          },
        );
      }
      opts.onWait?.(attempt, err as Error);
      await sleep(delay, opts.signal);
      delay = opts.nextDelayMs ? opts.nextDelayMs(Date.now() - started) : Math.min(delay * 2, maxDelay);
    }
  }
}

export function isRetryableConnectError(err: unknown): boolean {
  return err instanceof SshConnectError && err.retryable;
}
