/** Plain HTTPS calls to the simulator for its tests, with the certificate pinned as the only CA. */
import { Agent, request } from 'undici';
import type { Simulator } from '../src/sim/index.js';

export interface Reply {
  status: number;
  statusText: string;
  body: { data?: unknown; message?: string; errors?: Record<string, string> } | undefined;
  raw: string;
}

export interface SimClient {
  call(method: string, path: string, params?: Record<string, string | number>, headers?: Record<string, string>): Promise<Reply>;
  /** call with the privileged token; throws unless 200; returns data */
  ok<T = unknown>(method: string, path: string, params?: Record<string, string | number>): Promise<T>;
  /** poll a task until it stops; returns the status object */
  waitTask(upid: string, node?: string): Promise<{ status: string; exitstatus?: string; type: string }>;
  /** POST/PUT/DELETE that returns a UPID, then wait for it */
  task(
    method: string,
    path: string,
    params?: Record<string, string | number>,
  ): Promise<{ status: string; exitstatus?: string; upid: string }>;
  tokenAuth: string;
  close(): Promise<void>;
}

export function simClient(sim: Simulator): SimClient {
  const agent = new Agent({ connect: { ca: sim.certPem } });
  const tokenAuth = `PVEAPIToken=${sim.token.tokenId}=${sim.token.tokenSecret}`;
  const call: SimClient['call'] = async (method, path, params, headers) => {
    const form = params
      ? new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString()
      : undefined;
    const isGet = method === 'GET';
    const url = `${sim.url}/api2/json${path}${isGet && form ? `?${form}` : ''}`;
    const r = await request(url, {
      method: method as 'GET',
      dispatcher: agent,
      headers: { authorization: tokenAuth, ...(!isGet && form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
      body: !isGet ? form : undefined,
    });
    const raw = await r.body.text();
    let body: Reply['body'];
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    return { status: r.statusCode, statusText: (r as unknown as { statusText?: string }).statusText ?? '', body, raw };
  };
  const ok: SimClient['ok'] = async (method, path, params) => {
    const r = await call(method, path, params);
    if (r.status !== 200) throw new Error(`${method} ${path} → ${r.status} ${r.raw}`);
    return r.body!.data as never;
  };
  const waitTask: SimClient['waitTask'] = async (upid, node = sim.node) => {
    for (let i = 0; i < 3000; i++) {
      const s = await ok<{ status: string; exitstatus?: string; type: string }>(
        'GET',
        `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`,
      );
      if (s.status === 'stopped') return s;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`task ${upid} did not stop`);
  };
  return {
    call,
    ok,
    waitTask,
    async task(method, path, params) {
      const upid = await ok<string>(method, path, params);
      return { ...(await waitTask(upid, /^UPID:([^:]+):/.exec(upid)![1])), upid };
    },
    tokenAuth,
    close: () => agent.close(),
  };
}
