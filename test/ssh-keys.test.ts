/**
 * Key handling (src/ssh/keys.ts), checked against OpenSSH's own tools (ssh-keygen) on temp files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { UserError } from '../src/errors.js';
import {
  agentSocket,
  defaultPublicKeys,
  findDefaultKeys,
  fingerprintOfPublicKey,
  generateEd25519KeyPair,
  loadPrivateKey,
  publicKeyLineOf,
} from '../src/ssh/keys.js';

const run = promisify(execFile);

async function sshKeygenFingerprint(pubPath: string): Promise<string> {
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubPath]);
  return stdout.split(/\s+/)[1]!;
}

describe('ssh keys', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fk3s-keys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [type, args] of [
    ['ed25519', ['-t', 'ed25519']],
    ['ecdsa', ['-t', 'ecdsa', '-b', '256']],
    ['rsa', ['-t', 'rsa', '-b', '2048']],
  ] as const) {
    it(`loads an unencrypted ${type} key: public line and fingerprint match ssh-keygen`, async () => {
      const path = join(dir, `id_${type}`);
      await run('ssh-keygen', ['-q', ...args, '-N', '', '-C', `me@${type}`, '-f', path]);
      const key = loadPrivateKey(path);
      const pub = (await readFile(`${path}.pub`, 'utf8')).trim();
      assert.equal(key.publicKeyLine.split(' ').slice(0, 2).join(' '), pub.split(' ').slice(0, 2).join(' '));
      assert.equal(key.fingerprint, await sshKeygenFingerprint(`${path}.pub`));
      assert.equal(fingerprintOfPublicKey(pub), key.fingerprint);
      assert.equal(publicKeyLineOf(key.privateKey, { comment: 'x' }), `${pub.split(' ').slice(0, 2).join(' ')} x`);
    });
  }

  it('an encrypted key without passphrase is a UserError pointing at ssh-agent; with the passphrase it loads', async () => {
    const path = join(dir, 'id_encrypted');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', path]);
    assert.throws(
      () => loadPrivateKey(path),
      (e: unknown) => e instanceof UserError && /ssh-agent or an unencrypted key is needed/.test(e.message) && e.message.includes(path),
    );
    assert.throws(
      () => loadPrivateKey(path, { passphrase: 'wrong' }),
      (e: unknown) => e instanceof UserError && /passphrase/.test(e.message),
    );
    const key = loadPrivateKey(path, { passphrase: 'correct horse' });
    assert.equal(key.fingerprint, await sshKeygenFingerprint(`${path}.pub`));
  });

  it('a missing file, a public key and garbage are UserErrors naming the file', async () => {
    const missing = join(dir, 'nope');
    assert.throws(
      () => loadPrivateKey(missing),
      (e: unknown) => e instanceof UserError && e.message.includes(missing),
    );
    const garbage = join(dir, 'garbage');
    writeFileSync(garbage, 'not a key\n');
    assert.throws(
      () => loadPrivateKey(garbage),
      (e: unknown) => e instanceof UserError && e.message.includes(garbage),
    );
    const pubOnly = join(dir, 'id_pubonly');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', pubOnly]);
    assert.throws(
      () => loadPrivateKey(`${pubOnly}.pub`),
      (e: unknown) => e instanceof UserError && e.message.includes(`${pubOnly}.pub`) && /public key, not a private key/.test(e.message),
    );
  });

  it('fingerprints public key lines with options in front, and rejects non-keys', async () => {
    const path = join(dir, 'id_opts');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
    const pub = (await readFile(`${path}.pub`, 'utf8')).trim();
    assert.equal(fingerprintOfPublicKey(`no-pty,command="x" ${pub}`), await sshKeygenFingerprint(`${path}.pub`));
    assert.throws(() => fingerprintOfPublicKey('hello world'), UserError);
  });

  it('generates ed25519 keypairs that OpenSSH accepts, each one different', async () => {
    const a = generateEd25519KeyPair('node-identity');
    const b = generateEd25519KeyPair();
    assert.notEqual(a.fingerprint, b.fingerprint);
    assert.match(a.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.match(a.publicKeyLine, /^ssh-ed25519 [A-Za-z0-9+/]+=* node-identity$/);
    const path = join(dir, 'generated');
    writeFileSync(path, a.privateKey, { mode: 0o600 });
    // ssh-keygen -y derives the public key from the private key file: proves OpenSSH can read it.
    const { stdout } = await run('ssh-keygen', ['-y', '-f', path]);
    assert.equal(stdout.trim().split(' ').slice(0, 2).join(' '), a.publicKeyLine.split(' ').slice(0, 2).join(' '));
    writeFileSync(`${path}.pub`, a.publicKeyLine + '\n');
    assert.equal(a.fingerprint, await sshKeygenFingerprint(`${path}.pub`));
    assert.equal(loadPrivateKey(path).fingerprint, a.fingerprint);
  });

  it('every generated ed25519 key parses and round-trips, including public keys with leading zero bytes', async () => {
    // ssh2's own generator dropped a leading zero byte of the public key (~1 key in 256): 600 keys
    // make such a key very likely here (≈ 90 %), and each one must parse and sign/verify.
    let leadingZero = 0;
    for (let i = 0; i < 600; i++) {
      const k = generateEd25519KeyPair(i % 2 ? `k${i}` : '');
      const priv = ssh2.utils.parseKey(k.privateKey);
      const pub = ssh2.utils.parseKey(k.publicKeyLine);
      assert.ok(!(priv instanceof Error) && !Array.isArray(priv), `private key ${i} does not parse: ${String(priv)}`);
      assert.ok(!(pub instanceof Error) && !Array.isArray(pub), `public key ${i} does not parse: ${String(pub)}`);
      const blob = Buffer.from(k.publicKeyLine.split(' ')[1]!, 'base64');
      assert.equal(blob.length, 51, `public key ${i} blob is ${blob.length} bytes`);
      if (blob[19] === 0) leadingZero++;
      assert.deepEqual(priv.getPublicSSH(), blob);
      assert.deepEqual(pub.getPublicSSH(), blob);
      const data = Buffer.from(`message ${i}`);
      assert.ok(pub.verify(data, priv.sign(data) as Buffer), `key ${i} signature does not verify`);
      assert.equal(k.fingerprint, fingerprintOfPublicKey(k.publicKeyLine));
    }
    // A key whose public part starts with zero, as OpenSSH sees it (not only our parser).
    for (let i = 0; i < 5000; i++) {
      const k = generateEd25519KeyPair('zero');
      if (Buffer.from(k.publicKeyLine.split(' ')[1]!, 'base64')[19] !== 0) continue;
      const path = join(dir, 'leading-zero');
      writeFileSync(path, k.privateKey, { mode: 0o600 });
      const { stdout } = await run('ssh-keygen', ['-y', '-f', path]);
      assert.equal(stdout.trim().split(' ').slice(0, 2).join(' '), k.publicKeyLine.split(' ').slice(0, 2).join(' '));
      leadingZero++;
      break;
    }
    assert.ok(leadingZero > 0, 'no key with a leading zero byte was generated');
  });

  it('finds default keys in OpenSSH order and reads their public lines', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    assert.deepEqual(findDefaultKeys(home), []);
    await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'rsa', '-f', join(home, '.ssh', 'id_rsa')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ed', '-f', join(home, '.ssh', 'id_ed25519')]);
    assert.deepEqual(findDefaultKeys(home), [join(home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'id_rsa')]);
    const pubs = defaultPublicKeys(home);
    assert.equal(pubs.length, 2);
    assert.match(pubs[0]!, /^ssh-ed25519 .* ed$/);
    assert.match(pubs[1]!, /^ssh-rsa .* rsa$/);
  });

  it('detects SSH_AUTH_SOCK only when it names a socket', async () => {
    assert.equal(agentSocket({}), undefined);
    assert.equal(agentSocket({ SSH_AUTH_SOCK: join(dir, 'missing.sock') }), undefined);
    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    assert.equal(agentSocket({ SSH_AUTH_SOCK: file }), undefined);
    const sock = join(dir, 'agent.sock');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(sock, r));
    try {
      assert.equal(agentSocket({ SSH_AUTH_SOCK: sock }), sock);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
