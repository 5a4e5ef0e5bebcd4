/**
 * The ssh2 connector against a real OpenSSH sshd on 127.0.0.2 (test/helpers/sshd.ts):
 * exec and streaming, run() errors, stdin, SFTP, sudo, ssh-agent, dropped connections, aborts.
 * Host key pinning and connectWithRetry are in ssh-hostkeys.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AbortedError, BugError, RemoteError, UserError } from '../src/errors.js';
import { sh } from '../src/shell/quote.js';
import { createSshConnector } from '../src/ssh/client.js';
import { generateEd25519KeyPair } from '../src/ssh/keys.js';
import type { SshSession, SshTarget } from '../src/ssh/types.js';
import { descendantPids, startSshd, type Sshd } from './helpers/sshd.js';

const execFileP = promisify(execFile);

function targetFor(sshd: Sshd, extra: Partial<SshTarget> = {}): SshTarget {
  return {
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    privateKey: sshd.clientKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
    label: 'test-node',
    ...extra,
  };
}

/** Poll until `pred` holds (no timing asserts: a generous deadline only to avoid hanging forever). */
async function waitFor(pred: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function cmdlineOf(pid: number): Promise<string> {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

describe('ssh exec and sftp against a real sshd', () => {
  let sshd: Sshd;
  let session: SshSession;
  const ssh = createSshConnector();

  before(async () => {
    sshd = await startSshd();
    session = await ssh.connect(targetFor(sshd));
  });
  after(async () => {
    await session?.close();
    await sshd?.stop();
  });

  it('reports the pinned host key it verified', () => {
    assert.equal(session.hostKeyFingerprint, sshd.hostKeyFingerprint);
    assert.match(session.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('streams stdout and stderr line by line and returns the exit code without throwing', async () => {
    const lines: Array<[string, string]> = [];
    const r = await session.exec(sh`printf ${'one\ntwo\n'}; printf ${'oops\n'} >&2; printf ${'no newline at end'}; exit 3`, {
      onLine: (line, stream) => lines.push([stream, line]),
    });
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'one\ntwo\nno newline at end');
    assert.equal(r.stderr, 'oops\n');
    assert.deepEqual(
      lines.filter(([s]) => s === 'stdout').map(([, l]) => l),
      ['one', 'two', 'no newline at end'],
    );
    assert.deepEqual(
      lines.filter(([s]) => s === 'stderr').map(([, l]) => l),
      ['oops'],
    );
  });

  it('delivers every line of a large output in order, UTF-8 intact across chunk boundaries', async () => {
    const seen: string[] = [];
    const r = await session.exec(sh`for i in $(seq 1 20000); do echo "$i ünïcødé ✓"; done`, { onLine: (l) => seen.push(l) });
    assert.equal(r.code, 0);
    assert.equal(seen.length, 20000);
    assert.equal(seen[0], '1 ünïcødé ✓');
    assert.equal(seen[19999], '20000 ünïcødé ✓');
    assert.ok(seen.every((l, i) => l === `${i + 1} ünïcødé ✓`));
  });

  it('run() returns stdout, and on failure throws RemoteError with the exit code and the last 20 stderr lines', async () => {
    assert.equal(await session.run(sh`echo ${'hello world'}`), 'hello world\n');
    const err = await session.run(sh`for i in $(seq 1 30); do echo "err $i" >&2; done; exit 7`).then(
      () => assert.fail('run() should throw on exit 7'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RemoteError, String(err));
    assert.match(err.message, /exit code 7/);
    assert.match(err.message, /test-node/);
    const detail = (err.detail ?? '').split('\n');
    assert.equal(detail.length, 20);
    assert.equal(detail[0], 'err 11');
    assert.equal(detail[19], 'err 30');
  });

  it('quoted values reach the remote program byte-identical through the login shell', async () => {
    const values = ['', "it's", '$(touch PWNED)', '`id`', 'a b\nc', '*', 'ünïcødé ✓', '"; exit 9; "'];
    const r = await session.exec(sh`cd ${sshd.dir} && printf '%s\\0' ${values}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), values);
    assert.equal(existsSync(join(sshd.dir, 'PWNED')), false);
  });

  it('refuses a command containing a NUL byte instead of sending it (sshd would drop the connection)', async () => {
    await assert.rejects(session.exec('echo a\0b'), (e: unknown) => e instanceof BugError && /NUL/.test(e.message));
    assert.equal(await session.run(sh`echo alive`), 'alive\n');
  });

  it('passes stdin to the command', async () => {
    const input = 'first line\nsecond: $(not run) `nor this` ✓\n';
    const r = await session.exec(sh`cat`, { stdin: input });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, input);
    const bin = Buffer.from([0, 1, 2, 255, 10, 13]);
    const r2 = await session.exec(sh`od -An -tx1`, { stdin: bin });
    assert.equal(r2.stdout.trim().split(/\s+/).join(' '), '00 01 02 ff 0a 0d');
  });

  it('closes stdin when none is given, so commands reading it do not hang', async () => {
    const r = await session.exec(sh`cat; echo done`);
    assert.equal(r.stdout, 'done\n');
  });

  it('runs several commands concurrently over one connection', async () => {
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => session.exec(sh`sleep 0.2; echo ${n}; exit ${n}`)));
    assert.deepEqual(
      results.map((r) => [r.code, r.stdout]),
      [1, 2, 3, 4, 5].map((n) => [n, `${n}\n`]),
    );
  });

  it('writes files over SFTP with the given mode, reads them back, and stats them', async () => {
    const path = join(sshd.dir, 'upload', 'snippet.ign');
    await session.run(sh`mkdir -p ${join(sshd.dir, 'upload')}`);
    await session.writeFile(path, '{"ignition":{"version":"3.3.0"}}\n', 0o600);
    assert.equal(readFileSync(path, 'utf8'), '{"ignition":{"version":"3.3.0"}}\n');
    assert.equal(statSync(path).mode & 0o7777, 0o600);
    assert.deepEqual(await session.stat(path), { size: 33, mode: 0o600 });
    assert.equal((await session.readFile(path)).toString('utf8'), '{"ignition":{"version":"3.3.0"}}\n');

    const exe = join(sshd.dir, 'upload', 'tool');
    await session.writeFile(exe, Buffer.from('#!/bin/sh\necho tool ran\n'), 0o755);
    assert.equal(statSync(exe).mode & 0o7777, 0o755);
    assert.equal(await session.run(sh`${exe}`), 'tool ran\n');
  });

  it('overwrites atomically: a new file renamed over the old one, no temp files left', async () => {
    const dir = join(sshd.dir, 'atomic');
    const path = join(dir, 'config.yaml');
    await session.run(sh`mkdir -p ${dir}`);
    await session.writeFile(path, 'version: 1\n', 0o644);
    const inoBefore = statSync(path).ino;
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    await session.writeFile(path, big, 0o640);
    const st = statSync(path);
    assert.notEqual(st.ino, inoBefore, 'the file was replaced (rename), not rewritten in place');
    assert.equal(st.size, big.length);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.ok(readFileSync(path).equals(big));
    assert.deepEqual(readdirSync(dir), ['config.yaml']);
  });

  it('stat returns null for a missing file; readFile of a missing file is a RemoteError naming the path', async () => {
    const missing = join(sshd.dir, 'does-not-exist');
    assert.equal(await session.stat(missing), null);
    await assert.rejects(session.readFile(missing), (e: unknown) => e instanceof RemoteError && e.message.includes(missing));
  });

  it('a failed upload (missing directory) is a RemoteError and leaves nothing behind', async () => {
    const path = join(sshd.dir, 'no', 'such', 'dir', 'f');
    await assert.rejects(session.writeFile(path, 'x'), (e: unknown) => e instanceof RemoteError && e.message.includes(path));
    assert.equal(existsSync(join(sshd.dir, 'no')), false);
  });

  it('runs sudo -n when sudo is installed', async (t) => {
    const which = await session.exec(sh`command -v sudo`);
    if (which.code !== 0) {
      t.skip('sudo is not installed here (CI installs it)');
      return;
    }
    const r = await session.exec(sh`sudo -n true && sudo -n id -u`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '0');
  });

  it('aborts a long command through an AbortSignal, and the session stays usable', async () => {
    const ac = new AbortController();
    const p = session.exec(sh`echo started; sleep 30`, {
      signal: ac.signal,
      onLine: (line) => {
        if (line === 'started') ac.abort();
      },
    });
    await assert.rejects(p, (e: unknown) => e instanceof AbortedError);
    assert.equal(await session.run(sh`echo still here`), 'still here\n');
  });

  it('an onLine callback that throws fails that exec (not the process), and the session stays usable', async () => {
    await assert.rejects(
      session.exec(sh`echo one; echo two`, {
        onLine: () => {
          throw new Error('ui gone');
        },
      }),
      /ui gone/,
    );
    await assert.rejects(
      session.exec(sh`printf ${'last line without newline'}`, {
        onLine: (l) => {
          if (l === 'last line without newline') throw new Error('saw the partial last line');
        },
      }),
      /saw the partial last line/,
    );
    assert.equal(await session.run(sh`echo fine`), 'fine\n');
  });

  it('a command already aborted is not started', async () => {
    const marker = join(sshd.dir, 'should-not-exist');
    await assert.rejects(session.exec(sh`touch ${marker}`, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof AbortedError);
    assert.equal(existsSync(marker), false);
  });

  it('stops a command that exceeds timeoutMs with a RemoteError', async () => {
    await assert.rejects(
      session.exec(sh`sleep 30`, { timeoutMs: 300 }),
      (e: unknown) => e instanceof RemoteError && /did not finish within/.test(e.message) && e.message.includes('sleep 30'),
    );
    assert.equal(await session.run(sh`echo ok`), 'ok\n');
  });
});

describe('ssh-agent authentication', () => {
  let sshd: Sshd;
  let agentPid: number | undefined;
  let sock: string;

  before(async () => {
    sshd = await startSshd();
    sock = join(sshd.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    agentPid = agent.pid;
    await waitFor(() => existsSync(sock), 'ssh-agent socket');
    await execFileP('ssh-add', [sshd.clientKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
  });
  after(async () => {
    if (agentPid) process.kill(agentPid, 'SIGTERM');
    await sshd?.stop();
  });

  it('falls back to the agent when the given key is not accepted', async () => {
    const stranger = generateEd25519KeyPair('not-authorized');
    const session = await createSshConnector().connect(targetFor(sshd, { privateKey: stranger.privateKey, agent: sock }));
    try {
      assert.equal(await session.run(sh`echo ${'agent after key'}`), 'agent after key\n');
    } finally {
      await session.close();
    }
  });

  it('uses an encrypted key when its passphrase is given', async () => {
    const path = join(sshd.dir, 'id_encrypted');
    await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'open sesame', '-f', path]);
    const pub = readFileSync(`${path}.pub`, 'utf8').trim();
    writeFileSync(join(sshd.dir, 'authorized_keys'), `${sshd.clientPublicKey}\n${pub}\n`);
    const key = readFileSync(path, 'utf8');
    const session = await createSshConnector().connect(targetFor(sshd, { privateKey: key, passphrase: 'open sesame' }));
    await session.close();
    await assert.rejects(
      createSshConnector().connect(targetFor(sshd, { privateKey: key })),
      (e: unknown) => e instanceof UserError && /ssh-agent or an unencrypted key is needed/.test(e.message),
    );
  });

  it('logs in with the agent only (no private key given)', async () => {
    const session = await createSshConnector().connect(targetFor(sshd, { privateKey: undefined, agent: sock }));
    try {
      assert.equal(await session.run(sh`echo ${'via agent'}`), 'via agent\n');
    } finally {
      await session.close();
    }
  });
});

describe('a connection dropped mid-command', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd({ address: '127.0.0.3' });
  });
  after(async () => {
    await sshd?.stop();
  });

  it('rejects with "connection lost during `cmd`", and a new connection runs the retry', async () => {
    const ssh = createSshConnector();
    const session = await ssh.connect(targetFor(sshd));
    const running = session.exec(sh`sleep 30`);
    running.catch(() => {}); // observed below
    // Wait until the command really runs under this sshd, then kill the per-connection sshd processes.
    await waitFor(async () => {
      for (const pid of await descendantPids(sshd.pid())) if ((await cmdlineOf(pid)).startsWith('sleep 30')) return true;
      return false;
    }, 'sleep 30 to start under sshd');
    assert.ok((await sshd.killSessionChildren()) >= 1);

    const err = await running.then(
      (r) => assert.fail(`exec should reject when the connection drops, got ${JSON.stringify(r)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RemoteError, String(err));
    assert.match(err.message, /connection to test-node was lost during `sleep 30`/);
    await assert.rejects(session.exec(sh`true`), (e: unknown) => e instanceof RemoteError && /lost|closed/.test(e.message));
    await session.close();

    const again = await ssh.connect(targetFor(sshd));
    try {
      assert.equal(await again.run(sh`echo retried`), 'retried\n');
    } finally {
      await again.close();
    }
  });
});
