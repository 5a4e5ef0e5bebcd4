/**
 * Retry policies. Only two kinds of retry exist:
 * - idempotent reads (GET) after a network failure or a gateway error, with capped backoff;
 * - any call that Proxmox *answered* with a transient lock error ("can't lock file … got timeout"),
 *   also as a task exit status: Proxmox did nothing, so doing it again is safe.
 * A mutation whose answer was lost is never re-sent blindly (see client.ts).
 */
import { AbortedError } from '../errors.js';
import { isLockError } from './errors.js';

export interface BackoffOptions {
  /** Total tries including the first. */
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told before each retry. */
  onRetry?: (info: { attempt: number; attempts: number; delayMs: number; error: unknown }) => void;
}

import { sleep } from '../sleep.js';
export { sleep };

/** Delay before retry n (1-based): base·2^(n-1) with ±25 % jitter, capped. */
export function backoffDelay(n: number, baseMs: number, maxMs: number, random = Math.random): number {
  const d = Math.min(maxMs, baseMs * 2 ** (n - 1));
  return Math.round(d * (0.75 + random() * 0.5));
}

export async function retrying<T>(
  fn: (attempt: number) => Promise<T>,
  shouldRetry: (err: unknown) => boolean,
  opts: BackoffOptions = {},
): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const nap = opts.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !shouldRetry(err) || opts.signal?.aborted) throw err;
      const delayMs = backoffDelay(attempt, opts.baseMs ?? 500, opts.maxMs ?? 8_000);
      opts.onRetry?.({ attempt, attempts, delayMs, error: err });
      await nap(delayMs, opts.signal);
    }
  }
}

/**
 * Run `fn` again while it fails with a transient Proxmox lock error (HTTP answer or task exit status).
 * Wrap the whole "start task + wait for it" so a task that died on a lock is started again.
 */
export function withLockRetry<T>(fn: (attempt: number) => Promise<T>, opts: BackoffOptions = {}): Promise<T> {
  return retrying(fn, isLockError, { attempts: 6, baseMs: 1_000, maxMs: 10_000, ...opts });
}
