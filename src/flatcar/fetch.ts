/** The one HTTP seam of src/flatcar: tests inject a fetch (or serve files on loopback). */
import { RemoteError } from '../errors.js';

export type FetchFn = (url: string, init?: { signal?: AbortSignal; headers?: Record<string, string> }) => Promise<Response>;

export const defaultFetch: FetchFn = (url, init) => fetch(url, init);

const DEFAULT_TIMEOUT_MS = 30_000;

/** GET a URL as text; non-2xx and network errors become RemoteError naming the URL. */
export async function fetchText(
  fetchFn: FetchFn,
  url: string,
  opts: { signal?: AbortSignal; timeoutMs?: number; what: string },
): Promise<string> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetchFn(url, { signal });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    const reason = timeout.aborted ? 'timed out' : describeNetworkError(err);
    throw new RemoteError(`Cannot fetch ${opts.what} from ${url}: ${reason}`, {
      fix: "Check this machine's internet access (or the mirror URL in the config) and run again.",
      cause: err,
    });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new RemoteError(`Cannot fetch ${opts.what} from ${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, {
      fix:
        res.status === 404
          ? 'The file does not exist there: check the version, channel and mirror URLs in the config.'
          : 'Try again later, or point the config at a mirror.',
    });
  }
  return await res.text();
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message} (${cause.message})`;
    return err.message;
  }
  return String(err);
}
