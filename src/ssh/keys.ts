/**
 * SSH key handling: load a private key file, find the user's default keys and agent, derive the
 * public key line and its OpenSSH fingerprint, and make throwaway ed25519 keypairs.
 * Everything here is local (no network); keys are parsed with ssh2's own parser, so whatever
 * loads here is accepted by the connector.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { lazyRequire } from '../lazy-require.js';
import { UserError } from '../errors.js';

/** ssh2 loads on first use (plan/--help never parse keys). */
const ssh2 = lazyRequire<typeof import('ssh2')>('ssh2');

export interface LoadedKey {
  path: string;
  /** The private key text as read (pass it as SshTarget.privateKey). */
  privateKey: string;
  passphrase?: string;
  /** "ssh-ed25519 AAAA… comment" */
  publicKeyLine: string;
  /** "SHA256:…" */
  fingerprint: string;
}

/** OpenSSH fingerprint of a public key blob (the raw wire-format key): "SHA256:" + unpadded base64. */
export function fingerprintOfBlob(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** OpenSSH fingerprint of a public key line ("ssh-ed25519 AAAA… comment") as ssh-keygen -l prints it. */
export function fingerprintOfPublicKey(line: string): string {
  const parts = line.trim().split(/\s+/);
  // authorized_keys lines may start with options; the base64 blob follows the key type.
  const i = parts.findIndex((p) => /^(ssh-|ecdsa-|sk-)/.test(p));
  const b64 = i >= 0 ? parts[i + 1] : undefined;
  if (!b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) {
    throw new UserError(`Not an OpenSSH public key line: ${JSON.stringify(line.slice(0, 60))}`, {
      fix: 'Give a line like "ssh-ed25519 AAAAC3Nza… user@host" (the contents of a .pub file).',
    });
  }
  return fingerprintOfBlob(Buffer.from(b64, 'base64'));
}

function parsePrivate(text: string | Buffer, where: string, passphrase?: string) {
  const parsed = ssh2().utils.parseKey(text, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || key === undefined) {
    const msg = key instanceof Error ? key.message : 'no key found';
    if (/encrypted/i.test(msg) && passphrase === undefined) {
      throw new UserError(`The SSH key ${where} is protected by a passphrase: ssh-agent or an unencrypted key is needed.`, {
        fix: 'Load it into ssh-agent (`ssh-add ' + where + '`) and make sure SSH_AUTH_SOCK is set, or give a key without a passphrase.',
      });
    }
    if (/bad passphrase|integrity check failed|decrypt/i.test(msg)) {
      throw new UserError(`The passphrase for the SSH key ${where} is wrong.`, { fix: 'Check the passphrase, or use ssh-agent.' });
    }
    throw new UserError(`${where} is not an SSH private key ssh2 can read: ${msg}`, {
      fix: 'Give an OpenSSH or PEM private key (ed25519, ecdsa or rsa), e.g. ~/.ssh/id_ed25519.',
    });
  }
  if (key.getPrivatePEM() === null) {
    throw new UserError(`${where} holds a public key, not a private key.`, { fix: 'Give the private key file (without .pub).' });
  }
  return key;
}

/** Public key line ("<type> <base64> <comment>") of a private key. */
export function publicKeyLineOf(privateKey: string | Buffer, opts: { passphrase?: string; comment?: string } = {}): string {
  const key = parsePrivate(privateKey, 'given', opts.passphrase);
  const comment = opts.comment ?? key.comment ?? '';
  return `${key.type} ${key.getPublicSSH().toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/** Load a private key file. Encrypted keys need `passphrase` (else a UserError pointing at ssh-agent). */
export function loadPrivateKey(path: string, opts: { passphrase?: string } = {}): LoadedKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read the SSH key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      fix: 'Check the path, or leave it out to use ssh-agent or ~/.ssh/id_ed25519.',
      cause: err,
    });
  }
  const key = parsePrivate(text, path, opts.passphrase);
  const blob = key.getPublicSSH();
  const publicKeyLine = `${key.type} ${blob.toString('base64')}${key.comment ? ` ${key.comment}` : ''}`;
  return { path, privateKey: text, passphrase: opts.passphrase, publicKeyLine, fingerprint: fingerprintOfBlob(blob) };
}

export const DEFAULT_KEY_NAMES = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;

/** Existing default private key files, in OpenSSH's order of preference. */
export function findDefaultKeys(home: string = homedir()): string[] {
  return DEFAULT_KEY_NAMES.map((n) => join(home, '.ssh', n)).filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

/** The public key lines of the default keys found (reads the `.pub` beside each key, else derives it). */
export function defaultPublicKeys(home: string = homedir()): string[] {
  const out: string[] = [];
  for (const p of findDefaultKeys(home)) {
    try {
      if (existsSync(`${p}.pub`)) out.push(readFileSync(`${p}.pub`, 'utf8').trim());
      else out.push(publicKeyLineOf(readFileSync(p)));
    } catch {
      // encrypted without .pub, or unreadable: not usable without the agent anyway
    }
  }
  return out;
}

/** The ssh-agent socket from SSH_AUTH_SOCK when it exists and is a socket, else undefined. */
export function agentSocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const sock = env.SSH_AUTH_SOCK;
  if (!sock) return undefined;
  try {
    return statSync(sock).isSocket() ? sock : undefined;
  } catch {
    return undefined;
  }
}

export interface GeneratedKeyPair {
  /** OpenSSH private key ("-----BEGIN OPENSSH PRIVATE KEY-----"), unencrypted. */
  privateKey: string;
  /** "ssh-ed25519 AAAA… comment" */
  publicKeyLine: string;
  fingerprint: string;
}

/** SSH wire-format string: uint32 length + bytes. */
function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/**
 * A throwaway ed25519 keypair in OpenSSH format (for node identities, demo hosts and tests).
 * Built here from node:crypto's raw key bytes, not with ssh2's utils.generateKeyPairSync: that one
 * strips leading zero bytes from the 32-byte public key, so about one key in 256 comes out malformed
 * (ssh2's own parser and OpenSSH reject it) and whatever uses it fails at random.
 */
export function generateEd25519KeyPair(comment = 'flatcar-k3s'): GeneratedKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  if (pub.length !== 32 || seed.length !== 32) throw new Error(`ed25519 key of unexpected size (${pub.length}/${seed.length})`);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  // openssh-key-v1, unencrypted: the private section is two equal check ints, the key, the comment,
  // then padding 1, 2, 3… to the cipher block size (8 for "none").
  const check = randomBytes(4);
  let section = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const nkeys = Buffer.alloc(4);
  nkeys.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    nkeys,
    sshString(blob),
    sshString(section),
  ]);
  const b64 = body.toString('base64').replace(/.{70}/g, '$&\n').replace(/\n$/, '');
  const privateKeyText = `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
  const publicKeyLine = `ssh-ed25519 ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
  return { privateKey: privateKeyText, publicKeyLine, fingerprint: fingerprintOfBlob(blob) };
}
