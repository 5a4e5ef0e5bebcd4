/**
 * A plain-HTTP static file server on loopback: the demo's stand-in for release.flatcar-linux.net,
 * flatcar.org and GitHub releases. Files are put in memory with put(path, data); only exact paths exist
 * (GET and HEAD), plus explicit 302 redirects (update.k3s.io's channel URLs work that way).
 */
import { createServer, type Server } from 'node:http';

export interface Mirror {
  url: string;
  put(path: string, data: string | Buffer, contentType?: string): void;
  /** Redirect a path to another URL (302), e.g. a "channel" URL to a release, as update.k3s.io does. */
  redirect(path: string, location: string): void;
  get(path: string): Buffer | undefined;
  paths(): string[];
  close(): Promise<void>;
}

const norm = (p: string): string => '/' + p.replace(/^\/+/, '');

export async function startMirror(host = '127.0.0.1', port = 0): Promise<Mirror> {
  const files = new Map<string, { data: Buffer; type: string }>();
  const redirects = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const loc = redirects.get(path);
    if (loc) {
      res.writeHead(302, { Location: loc, 'Content-Length': 0 });
      return res.end();
    }
    const f = files.get(path);
    if (!f || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(f ? 405 : 404, { 'Content-Type': 'text/plain' });
      return res.end(f ? 'method not allowed\n' : 'not found\n');
    }
    res.writeHead(200, { 'Content-Type': f.type, 'Content-Length': f.data.length });
    res.end(req.method === 'HEAD' ? undefined : f.data);
  });
  await new Promise<void>((r, j) => {
    server.once('error', j);
    server.listen(port, host, () => r());
  });
  const addr = server.address() as { port: number };
  return {
    url: `http://${host}:${addr.port}`,
    put(path, data, contentType) {
      const type =
        contentType ??
        (/\.json$/.test(path) ? 'application/json' : /\.(txt|sh|DIGESTS|asc|sig)$/.test(path) ? 'text/plain' : 'application/octet-stream');
      files.set(norm(path), { data: Buffer.isBuffer(data) ? data : Buffer.from(data), type });
    },
    redirect(path, location) {
      redirects.set(norm(path), location);
    },
    get: (path) => files.get(norm(path))?.data,
    paths: () => [...files.keys()],
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
