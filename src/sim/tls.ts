/** A self-signed certificate for the simulator, made with the openssl CLI in a temp dir. */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  /** SHA-256 fingerprint, colon hex, uppercase (as Proxmox shows it) */
  fingerprint: string;
}

export function makeSelfSignedCert(commonName: string, altNames: string[]): SelfSigned {
  const dir = mkdtempSync(join(tmpdir(), 'pve-sim-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '3650',
        '-subj',
        `/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=${commonName}`,
        '-addext',
        `subjectAltName=${altNames.join(',')}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const certPem = readFileSync(cert, 'utf8');
    return { certPem, keyPem: readFileSync(key, 'utf8'), fingerprint: new X509Certificate(certPem).fingerprint256.toUpperCase() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
