/**
 * TLS to Proxmox without ever turning verification off globally: either the cluster CA (proxmox.caFile)
 * verifies the chain, or the server certificate's SHA-256 fingerprint is pinned and checked on every new
 * connection. Proxmox's self-signed node certificates make pinning the usual case.
 */
import type { TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Agent, buildConnector } from 'undici';
import { lazyRequire } from '../lazy-require.js';
import { UserError } from '../errors.js';
import { tlsPinMismatchError } from './errors.js';

export interface CertificateInfo {
  /** "AA:BB:…" (upper-case, colon-separated SHA-256 of the DER certificate). */
  fingerprint: string;
  subject: string;
  issuer: string;
  validTo: string;
}

/** "aa:bb…", "AABB…" → "AA:BB:…". */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  return hex.match(/.{1,2}/g)?.join(':') ?? '';
}

export function sameFingerprint(a: string, b: string): boolean {
  return normalizeFingerprint(a) === normalizeFingerprint(b) && normalizeFingerprint(a).length === 95;
}

export function hostPort(url: string): { host: string; port: number; servername?: string } {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { host, port: u.port ? Number(u.port) : 8006, servername: isIP(host) ? undefined : host };
}

function dn(d: unknown): string {
  if (!d || typeof d !== 'object') return '';
  return Object.entries(d as Record<string, string | string[]>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ');
}

/**
 * Read the server certificate without trusting it (first contact, to show the user what to pin).
 * Only the fingerprint is meaningful here: the rest is whatever the server claims.
 */
export function probeFingerprint(url: string, timeoutMs = 10_000): Promise<CertificateInfo> {
  const { host, port, servername } = hostPort(url);
  return new Promise((resolve, reject) => {
    const socket = nodeTls().connect({ host, port, servername, rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(unreachable(url, new Error(`no TLS handshake within ${Math.round(timeoutMs / 1000)} s`)));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate();
      socket.end();
      if (!cert || !cert.fingerprint256)
        return reject(
          new UserError(`${url} did not present a TLS certificate`, {
            field: 'proxmox.url',
            fix: 'Point proxmox.url at the Proxmox web/API port, e.g. https://pve.example.lan:8006',
          }),
        );
      resolve({
        fingerprint: normalizeFingerprint(cert.fingerprint256),
        subject: dn(cert.subject),
        issuer: dn(cert.issuer),
        validTo: cert.valid_to,
      });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(unreachable(url, err));
    });
  });
}

export function unreachable(url: string, err: Error): UserError {
  const code = (err as NodeJS.ErrnoException).code;
  return new UserError(`Cannot reach Proxmox at ${url}: ${code ? `${code} ` : ''}${err.message}`, {
    field: 'proxmox.url',
    fix: 'Check proxmox.url (https://<host>:8006), that this machine can reach the host, and that pveproxy runs on it (systemctl status pveproxy).',
    cause: err,
  });
}

/** node:tls (~9 ms) loads on the first probe, not at import. */
const nodeTls = lazyRequire<typeof import('node:tls')>('node:tls');

/** undici loads when an agent is built, not at import (plan/--help build steps that import this module). */
const undici = lazyRequire<typeof import('undici')>('undici');

export interface TlsAgent {
  agent: Agent;
  /** Fingerprint of the last verified server certificate (CA mode) or the pin. */
  seenFingerprint(): string | undefined;
}

/**
 * An undici Agent for Proxmox. With `ca`: normal verification against that CA (and the pin too, when
 * both are given). Without: the chain is not verified but the leaf must match `pin`, checked on every
 * new connection; a mismatch destroys the socket before any request is written.
 */
export function proxmoxAgent(opts: { pin?: string; caFile?: string; connectTimeoutMs?: number }): TlsAgent {
  let ca: string | undefined;
  if (opts.caFile) {
    try {
      ca = readFileSync(opts.caFile, 'utf8');
    } catch (err) {
      throw new UserError(`Cannot read the Proxmox CA file ${opts.caFile}: ${(err as Error).message}`, {
        field: 'proxmox.caFile',
        fix: 'Copy /etc/pve/pve-root-ca.pem from the PVE host to this machine and set proxmox.caFile to its path, or remove proxmox.caFile to pin the certificate fingerprint instead.',
      });
    }
  }
  if (!ca && !opts.pin) throw new Error('proxmoxAgent: need a CA or a fingerprint pin');
  const pin = opts.pin ? normalizeFingerprint(opts.pin) : undefined;
  let seen: string | undefined = pin;
  // No session cache: every connection does a full handshake, so the certificate is always there to check.
  const { Agent, buildConnector } = undici();
  const base = buildConnector({
    ...(ca ? { ca, rejectUnauthorized: true } : { rejectUnauthorized: false }),
    maxCachedSessions: 0,
    timeout: opts.connectTimeoutMs ?? 10_000,
  });
  const connect: buildConnector.connector = (options, callback) => {
    base(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('TLS connect failed'), null);
      const cert = (socket as TLSSocket).getPeerCertificate?.();
      const fp = cert?.fingerprint256 ? normalizeFingerprint(cert.fingerprint256) : undefined;
      if (pin && fp !== pin) {
        socket.destroy();
        return callback(tlsPinMismatchError(pin, fp), null);
      }
      seen = fp;
      callback(null, socket);
    });
  };
  return { agent: new Agent({ connect, keepAliveTimeout: 4_000 }), seenFingerprint: () => seen };
}
