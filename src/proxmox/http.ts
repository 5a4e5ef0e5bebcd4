/**
 * The `fetch` handed to proxmox-api. It fixes what the library gets wrong for us:
 * - TLS goes through our pinned/CA undici Agent (never NODE_TLS_REJECT_UNAUTHORIZED);
 * - Content-Length is dropped so undici computes it from the UTF-8 bytes (the library uses the JS
 *   string length, which breaks on any non-ASCII value);
 * - it never throws and never answers non-200 to the library's request path: a failure (HTTP error or
 *   network error) is parked here and the library gets a 200 whose data is a marker. So the library
 *   neither retries (it re-sends once when fetch throws: a POST could run twice) nor leaks its
 *   timeout timer (it clears it only when fetch returns). `takeFailure` turns the marker back into
 *   the error: a PveHttpError with status, PVE's message and per-parameter errors, or the network error.
 * - The login request (/access/ticket) gets its real status (the library handles that path itself);
 *   its failure is kept for `lastLoginFailure`.
 */
import type { Agent, Response } from 'undici';
import { lazyRequire } from '../lazy-require.js';
import { PveHttpError } from './errors.js';

export interface RequestInitLike {
  method?: string;
  headers?: Record<string, string> | [string, string][];
  body?: string;
  signal?: AbortSignal;
}
export type PveFetch = (url: string | URL, init?: RequestInitLike) => Promise<Response>;

/** undici loads on the first request, not at import (plan/--help build steps that import this module). */
const undici = lazyRequire<typeof import('undici')>('undici');

const MARKER = '__flatcarK3sFailure';

export interface PveTransport {
  fetch: PveFetch;
  /** The error behind a marker the library returned as data, or undefined when `data` is real data. */
  takeFailure(data: unknown): Error | undefined;
  lastLoginFailure(): Error | undefined;
}

/**
 * What the library reads of an answer (status, the content type, the text or JSON), without a WHATWG
 * Response and its streams: built per request, those cost more CPU than the request itself.
 */
function answer(status: number, statusText: string, text: string, type = 'application/json;charset=UTF-8'): Response {
  return {
    status,
    statusText,
    ok: status >= 200 && status < 300,
    headers: { get: (k: string) => (k.toLowerCase() === 'content-type' ? type || null : null) },
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
    body: null,
  } as unknown as Response;
}

const jsonResponse = (body: unknown, statusText = 'OK'): Response => answer(200, statusText, JSON.stringify(body));

export function pveTransport(agent: Agent): PveTransport {
  const parked = new Map<number, Error>();
  let seq = 0;
  let loginFailure: Error | undefined;
  const park = (err: Error) => {
    const id = ++seq;
    parked.set(id, err);
    return jsonResponse({ data: { [MARKER]: id } });
  };
  const fetch: PveFetch = async (url, init = {}) => {
    const u = new URL(String(url));
    const path = u.pathname.replace(/^\/api2\/json/, '');
    const isLogin = path === '/access/ticket';
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    const given = Array.isArray(init.headers) ? init.headers : Object.entries(init.headers ?? {});
    for (const [k, v] of given) if (k.toLowerCase() !== 'content-length') headers[k] = v;
    let status: number;
    let statusText: string;
    let text: string;
    let type: string;
    try {
      // undici's request(), not fetch(): no WHATWG streams per request (at 200 nodes, thousands of them)
      const res = await undici().request(u, {
        method: method as 'GET',
        headers,
        body: init.body,
        signal: init.signal,
        dispatcher: agent,
      });
      status = res.statusCode;
      statusText = res.statusText;
      const ct = res.headers['content-type'];
      type = (Array.isArray(ct) ? ct[0] : ct) ?? '';
      text = await res.body.text();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (isLogin) {
        loginFailure = e;
        return answer(599, 'network error', '', '');
      }
      return park(e);
    }
    let failure: Error | undefined;
    if (status < 200 || status > 299) failure = new PveHttpError({ status, statusText, method, path, bodyText: text });
    else if (!/^application\/json/i.test(type)) {
      failure = new PveHttpError({
        status,
        statusText: `expected a JSON answer from the Proxmox API, got ${type || 'no content type'}; is proxmox.url the Proxmox server (port 8006)?`,
        method,
        path,
        bodyText: '',
      });
    }
    if (isLogin) {
      loginFailure = failure;
      return failure ? answer(status === 200 ? 502 : status, statusText, '', '') : answer(200, statusText, text);
    }
    if (failure) return park(failure);
    return answer(200, statusText, text);
  };
  return {
    fetch,
    takeFailure(data) {
      if (!data || typeof data !== 'object' || !(MARKER in data)) return undefined;
      const id = (data as Record<string, number>)[MARKER]!;
      const err = parked.get(id);
      parked.delete(id);
      return err ?? new Error('lost Proxmox failure');
    },
    lastLoginFailure: () => loginFailure,
  };
}
