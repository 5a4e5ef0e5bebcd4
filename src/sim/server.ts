/**
 * The HTTPS front of the simulator: Proxmox's URL layout (/api2/json/…), body parsing (form or JSON),
 * authentication, schema validation, permissions, latency, fault injection, 3 API workers, the
 * response shape ({data} / {data:null, message, errors}) and the request log. Also /_sim/* inspection.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './auth.js';
import type { HandlerTable, SimContext } from './api/context.js';
import { sleep } from './latency.js';
import { applyFaultSpec } from './faults.js';
import type { SimRequest } from './types.js';

const SECRET_PARAMS = /^(password|new-password|otp|tfa-challenge|ticket|token|secret|tokensecret)$/i;

export function redact(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) out[k] = SECRET_PARAMS.test(k) ? '<redacted>' : v;
  return out;
}

/** A counting semaphore: pvedaemon/pveproxy each run 3 workers. */
class Workers {
  private busy = 0;
  private queue: Array<() => void> = [];
  constructor(private readonly size: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy >= this.size) await new Promise<void>((r) => this.queue.push(r));
    this.busy++;
    try {
      return await fn();
    } finally {
      this.busy--;
      this.queue.shift()?.();
    }
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function addParam(params: Record<string, string | string[]>, k: string, v: string): void {
  const cur = params[k];
  if (cur === undefined) params[k] = v;
  else params[k] = Array.isArray(cur) ? [...cur, v] : [cur, v];
}

function parseParams(url: URL, body: string, contentType: string | undefined): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) addParam(params, k, v);
  if (!body) return params;
  if (contentType?.includes('application/json')) {
    const obj = JSON.parse(body) as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      if (v === null || v === undefined) continue;
      if (Array.isArray(v)) v.forEach((x) => addParam(params, k, String(x)));
      else addParam(params, k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
    }
  } else {
    for (const [k, v] of new URLSearchParams(body)) addParam(params, k, v);
  }
  return params;
}

export interface ServerOptions {
  ctx: SimContext;
  handlers: HandlerTable;
  cert: { certPem: string; keyPem: string };
  log: SimRequest[];
  /** Called before every answer (a persisted simulator saves its world there). */
  beforeReply?: () => void;
}

export function createApiServer(opts: ServerOptions): Server {
  const { ctx, handlers, log } = opts;
  const workers = new Workers(3);

  const send = (res: ServerResponse, status: number, body: unknown, message?: string): void => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.statusCode = status;
    if (message)
      res.statusMessage = message
        .split('\n')[0]!
        .replace(/[^\x20-\x7e]/g, '?')
        .slice(0, 200);
    res.setHeader('Content-Type', 'application/json;charset=UTF-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.setHeader('Cache-Control', 'max-age=0');
    res.setHeader('Server', 'pve-api-daemon/3.0');
    res.end(text);
  };

  const handleSim = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (req.method === 'GET' && url.pathname === '/_sim/requests') return send(res, 200, log);
    if (req.method === 'GET' && url.pathname === '/_sim/tasks')
      return send(
        res,
        200,
        ctx.tasks.all().map(({ log: _l, ...t }) => t),
      );
    if (req.method === 'POST' && url.pathname === '/_sim/faults') {
      try {
        const body = JSON.parse((await readBody(req)) || '{}') as {
          spec?: string;
          specs?: string[];
          clear?: boolean;
          slowNode?: { node: string; factor: number };
        };
        if (body.clear) {
          ctx.faults.clear();
          ctx.latency.clearSlow();
        }
        for (const s of [...(body.specs ?? []), ...(body.spec ? [body.spec] : [])])
          applyFaultSpec(s, ctx.faults, (n, f) => ctx.latency.slowNode(n, f));
        if (body.slowNode) ctx.latency.slowNode(body.slowNode.node, body.slowNode.factor);
        return send(res, 200, { data: null });
      } catch (e) {
        return send(res, 400, { data: null, message: (e as Error).message });
      }
    }
    return send(res, 404, { data: null, message: 'no such simulator endpoint' });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'https://localhost');
    if (url.pathname.startsWith('/_sim/')) return handleSim(req, res, url);
    const m = /^\/api2\/json(\/.*)?$/.exec(url.pathname);
    const path = m ? (m[1] ?? '/').replace(/\/+$/, '') || '/' : url.pathname;
    const entry: SimRequest = { time: started, method, path, params: {}, status: 0, durationMs: 0 };
    const finish = (status: number, body: unknown, message?: string): void => {
      entry.status = status;
      entry.durationMs = Date.now() - started;
      log.push(entry);
      opts.beforeReply?.();
      send(res, status, body, message);
    };
    const fail = (e: unknown): void => {
      if (e instanceof HttpError) {
        if (e.status === 401 && !e.fromHandler) return finish(401, undefined, e.message);
        return finish(e.status, { data: null, message: `${e.message}\n`, ...(e.errors ? { errors: e.errors } : {}) }, e.message);
      }
      const msg = (e instanceof Error ? e.message : String(e)).replace(/\n$/, '');
      return finish(500, { data: null, message: `${msg}\n` }, msg);
    };

    try {
      if (!m) return finish(501, { data: null, message: `Method '${method} ${url.pathname}' not implemented\n` }, 'Not Implemented');
      if (ctx.faults.onDrop(method, path)) {
        entry.status = 0;
        log.push(entry);
        req.socket.destroy();
        return;
      }
      let params: Record<string, string | string[]>;
      try {
        params = parseParams(url, await readBody(req), req.headers['content-type']);
      } catch {
        throw new HttpError(400, 'unable to parse request body');
      }
      entry.params = redact(params);
      // pve-http-server authenticates before it looks for a handler; only the login calls are open
      const open =
        (path === '/access/ticket' && (method === 'GET' || method === 'POST')) || (path === '/access/domains' && method === 'GET');
      let auth;
      try {
        auth = ctx.auth.authenticate(req.headers, method);
        if (!auth && !open) throw new HttpError(401, 'No ticket');
      } catch (e) {
        await sleep(ctx.latency.ms('authFailure'));
        throw e;
      }
      entry.user = auth?.authId;

      const found = ctx.schema.match(method, path);
      if (!found.match) throw new HttpError(501, `Method '${method} ${path}' not implemented`);
      const { route, pathParams } = found.match;
      const all: Record<string, string | string[] | undefined> = { ...params, ...pathParams };
      entry.params = redact(all);

      const errors = route.validate(all);
      if (Object.keys(errors).length) throw new HttpError(400, 'Parameter verification failed.', errors);
      ctx.auth.checkPermissions(route.info, auth, all);

      const fault = ctx.faults.onRequest(method, path);
      const handler = handlers[`${method} ${route.path}`];
      const result = await workers.run(async () => {
        // listing calls slow down with the number of guests (> 5 s around 100+ guests on real hosts)
        const listing = method === 'GET' && (route.path === '/cluster/resources' || route.path === '/nodes/{node}/qemu');
        const extra = listing ? Math.max(0, ctx.state.vms.size - 20) * 0.05 : 0;
        await sleep(ctx.latency.ms(method === 'GET' ? 'get' : 'config', typeof all.node === 'string' ? all.node : undefined, extra));
        if (fault) throw new HttpError(fault.status ?? 500, fault.message ?? 'simulated failure');
        if (!handler) throw new HttpError(501, `Method not implemented in simulator: ${method} ${route.path}`);
        try {
          return await handler(ctx, { method, path, params: all, auth });
        } catch (e) {
          if (e instanceof HttpError) e.fromHandler = true;
          throw e;
        }
      });
      return finish(200, { data: result ?? null });
    } catch (e) {
      return fail(e);
    }
  };

  const server = createServer({ cert: opts.cert.certPem, key: opts.cert.keyPem }, (req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) send(res, 500, { data: null, message: String(e) });
    });
  });
  server.keepAliveTimeout = 5000;
  return server;
}
