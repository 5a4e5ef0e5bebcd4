/**
 * A tiny HTTPS server on loopback for the Proxmox client's unit tests (TLS pinning, retries, error
 * mapping, request bodies). Certificates are made with openssl in a temp dir. The full simulator
 * (src/sim) is used by the contract suite; this one lets a test script each answer.
 */
import { createServer, type Server } from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface Cert {
  dir: string;
  key: string;
  cert: string;
  /** CA certificate (PEM) when made with `withCa`. */
  ca?: string;
  caFile?: string;
  fingerprint: string;
  cleanup(): void;
}

export function makeCert(opts: { cn?: string; withCa?: boolean } = {}): Cert {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-cert-'));
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const cn = opts.cn ?? 'pve-test';
  if (opts.withCa) {
    ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=Test PVE Root CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    ossl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      'key.pem',
      '-out',
      'req.csr',
    );
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
    ossl(
      'x509',
      '-req',
      '-in',
      'req.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'cert.pem',
    );
  } else {
    ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    );
  }
  const fp = /=([0-9A-F:]+)/.exec(ossl('x509', '-in', 'cert.pem', '-noout', '-fingerprint', '-sha256'))![1]!;
  return {
    dir,
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    ca: opts.withCa ? readFileSync(join(dir, 'ca.pem'), 'utf8') : undefined,
    caFile: opts.withCa ? join(dir, 'ca.pem') : undefined,
    fingerprint: fp,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Form body decoded (POST/PUT). */
  params: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
}

export type FakeAnswer =
  | { status?: number; statusText?: string; data?: unknown; errors?: Record<string, string>; message?: string }
  | 'drop';

export interface FakePve {
  url: string;
  requests: FakeRequest[];
  /** Number of TLS connections the server accepted. */
  connections(): number;
  close(): Promise<void>;
}

export const TOKEN_SECRET = '0d5c3c1e-1111-4222-8333-944455556666';

export async function startFakePve(cert: Cert, handle: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>): Promise<FakePve> {
  const requests: FakeRequest[] = [];
  let conns = 0;
  const server: Server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'https://x');
      const rawBody = Buffer.concat(chunks);
      const fr: FakeRequest = {
        method: req.method ?? 'GET',
        path: u.pathname.replace(/^\/api2\/json/, ''),
        query: Object.fromEntries(u.searchParams),
        params: Object.fromEntries(new URLSearchParams(rawBody.toString('utf8'))),
        headers: req.headers,
        rawBody,
      };
      requests.push(fr);
      let answer: FakeAnswer;
      try {
        answer = await handle(fr);
      } catch (err) {
        answer = { status: 500, statusText: (err as Error).message };
      }
      if (answer === 'drop') {
        req.socket.destroy();
        return;
      }
      const status = answer.status ?? 200;
      const body: Record<string, unknown> = { data: answer.data ?? null };
      if (answer.errors) body.errors = answer.errors;
      if (answer.message) body.message = answer.message;
      res.writeHead(status, answer.statusText ?? (status === 200 ? 'OK' : 'Error'), { 'content-type': 'application/json;charset=UTF-8' });
      res.end(JSON.stringify(body));
    });
  });
  server.on('secureConnection', () => conns++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    connections: () => conns,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
