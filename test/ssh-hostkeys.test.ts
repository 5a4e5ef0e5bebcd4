/**
 * Host key pinning, auth failures and connectWithRetry against a real OpenSSH sshd.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { AbortedError, RemoteError, UserError } from '../src/errors.js';
import { sh } from '../src/shell/quote.js';
import {
  connectWithRetry,
  createSshConnector,
  HostKeyMismatchError,
  SshAuthError,
  SshConnectError,
  UnknownHostKeyError,
} from '../src/ssh/client.js';
import { generateEd25519KeyPair } from '../src/ssh/keys.js';
import type { SshTarget } from '../src/ssh/types.js';
import { freePort, startSshd, type Sshd } from './helpers/sshd.js';

function targetFor(sshd: Sshd, extra: Partial<SshTarget> = {}): SshTarget {
  return {
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    privateKey: sshd.clientKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
    label: 'homelab-server-1',
    ...extra,
  };
}

/** sshd log lines written after `from` chars (to see whether anyone logged in). */
function logSince(sshd: Sshd, from: number): string {
  return sshd.log().slice(from);
}

describe('host keys', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd({ address: '127.0.0.4' });
  });
  after(async () => {
    await sshd?.stop();
  });

  it('refuses an unknown host key when nobody decides (no onNewHostKey), before logging in', async () => {
    const mark = sshd.log().length;
    const err = await createSshConnector()
      .connect(targetFor(sshd, { hostKeyFingerprint: undefined }))
      .then(
        () => assert.fail('must refuse'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof UnknownHostKeyError, String(err));
    assert.ok(err instanceof RemoteError);
    assert.ok(err.message.includes(sshd.hostKeyFingerprint), err.message);
    assert.match(err.message, /homelab-server-1/);
    assert.doesNotMatch(logSince(sshd, mark), /Accepted publickey/);
  });

  it('refuses an unknown host key when onNewHostKey says no', async () => {
    const seen: string[] = [];
    await assert.rejects(
      createSshConnector().connect(targetFor(sshd, { hostKeyFingerprint: undefined, onNewHostKey: (fp) => (seen.push(fp), false) })),
      (e: unknown) => e instanceof UnknownHostKeyError,
    );
    assert.deepEqual(seen, [sshd.hostKeyFingerprint]);
  });

  it('accepts an unknown host key when onNewHostKey says yes, and reports the fingerprint it was given', async () => {
    const seen: string[] = [];
    const session = await createSshConnector().connect(
      targetFor(sshd, { hostKeyFingerprint: undefined, onNewHostKey: (fp) => (seen.push(fp), true) }),
    );
    try {
      assert.deepEqual(seen, [sshd.hostKeyFingerprint]);
      assert.equal(session.hostKeyFingerprint, sshd.hostKeyFingerprint);
      assert.equal(await session.run(sh`echo trusted`), 'trusted\n');
    } finally {
      await session.close();
    }
  });

  it('a throwing onNewHostKey counts as "no"', async () => {
    await assert.rejects(
      createSshConnector().connect(
        targetFor(sshd, {
          hostKeyFingerprint: undefined,
          onNewHostKey: () => {
            throw new Error('prompt failed');
          },
        }),
      ),
      (e: unknown) => e instanceof UnknownHostKeyError,
    );
  });

  it('refuses a changed host key, naming the node, both fingerprints and the fix; nothing runs', async () => {
    const pinned = sshd.hostKeyFingerprint;
    await sshd.restartWithNewHostKey();
    const presented = sshd.hostKeyFingerprint;
    assert.notEqual(presented, pinned);
    const mark = sshd.log().length;
    const onNewHostKey = () => assert.fail('a pinned target must never ask about a new key');
    const waits: number[] = [];
    const err = await connectWithRetry(
      createSshConnector(),
      targetFor(sshd, { hostKeyFingerprint: pinned, onNewHostKey, forgetPinHint: '`flatcar-k3s forget-host-key homelab-server-1`' }),
      { timeoutMs: 30_000, onWait: (a) => waits.push(a) },
    ).then(
      () => assert.fail('must refuse'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof HostKeyMismatchError, String(err));
    assert.ok(err instanceof RemoteError);
    assert.ok(err.message.includes('homelab-server-1'));
    assert.ok(err.message.includes(pinned), 'names the pinned fingerprint');
    assert.ok(err.message.includes(presented), 'names the presented fingerprint');
    assert.match(err.fix ?? '', /if the VM was re-created, forget the pin with `flatcar-k3s forget-host-key homelab-server-1`/i);
    assert.deepEqual(waits, [], 'a host key mismatch is never retried');
    assert.doesNotMatch(logSince(sshd, mark), /Accepted publickey/);

    // With the new key pinned, the same host is fine.
    const session = await createSshConnector().connect(targetFor(sshd, { hostKeyFingerprint: presented }));
    await session.close();
    assert.match(logSince(sshd, mark), /Accepted publickey/, 'the log check above can see a login');
  });
});

describe('authentication failures', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd({ address: '127.0.0.5' });
  });
  after(async () => {
    await sshd?.stop();
  });

  it('a key the server does not accept is final: SshAuthError naming node and user, never retried', async () => {
    const stranger = generateEd25519KeyPair('stranger');
    const waits: number[] = [];
    const err = await connectWithRetry(createSshConnector(), targetFor(sshd, { privateKey: stranger.privateKey }), {
      timeoutMs: 30_000,
      onWait: (a) => waits.push(a),
    }).then(
      () => assert.fail('must be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SshAuthError, String(err));
    assert.match(err.message, new RegExp(`SSH to homelab-server-1 as ${sshd.user} was refused: no accepted key`));
    assert.match(err.fix ?? '', /nodes\.sshKeys/);
    assert.deepEqual(waits, []);
  });

  it('no key and no agent is a UserError before any connection', async () => {
    await assert.rejects(
      createSshConnector().connect(targetFor(sshd, { privateKey: undefined, agent: undefined })),
      (e: unknown) => e instanceof UserError && /No SSH key/.test(e.message),
    );
  });
});

describe('connectWithRetry', () => {
  const started: Sshd[] = [];
  after(async () => {
    for (const s of started) await s.stop();
  });

  it('waits for a port that opens late, reporting each wait', async () => {
    const host = '127.0.0.6';
    const port = await freePort(host);
    const waits: Array<{ attempt: number; err: Error }> = [];
    let opened = false;
    const trusted: string[] = [];
    // Our key is authorized up front; the host key is generated by startSshd later, so this test
    // trusts on first use and checks the fingerprint afterwards.
    const me = generateEd25519KeyPair('late-node-client');
    const target: SshTarget = {
      host,
      port,
      username: userInfo().username,
      privateKey: me.privateKey,
      label: 'late-node',
      onNewHostKey: (fp) => (trusted.push(fp), true),
    };
    let sshd: Sshd | undefined;
    const connecting = connectWithRetry(createSshConnector(), target, {
      timeoutMs: 60_000,
      initialDelayMs: 100,
      maxDelayMs: 400,
      onWait: (attempt, err) => {
        waits.push({ attempt, err });
        if (attempt === 3 && !opened) {
          opened = true; // open the port only after a few refused attempts
          void startSshd({ address: host, port, authorizedKeys: [me.publicKeyLine] }).then((s) => {
            started.push(s);
            sshd = s;
          });
        }
      },
    });
    const session = await connecting;
    try {
      assert.ok(sshd, 'sshd was started before the connection succeeded');
      assert.ok(waits.length >= 3);
      assert.deepEqual(
        waits.slice(0, 3).map((w) => w.attempt),
        [1, 2, 3],
      );
      for (const w of waits.slice(0, 3)) {
        assert.ok(w.err instanceof SshConnectError && w.err.retryable, String(w.err));
        assert.equal((w.err as SshConnectError).code, 'ECONNREFUSED');
      }
      assert.deepEqual(trusted, [sshd.hostKeyFingerprint]);
      assert.equal(await session.run(sh`echo up`), 'up\n');
    } finally {
      await session.close();
    }
  });

  it('gives up at the deadline with a clear error when nothing ever listens', async () => {
    // Port 1 on an otherwise unused loopback address: nothing listens there, and unlike a port freed by
    // freePort() no other test's server can grab it in the meantime.
    const host = '127.0.0.7';
    const port = 1;
    const waits: number[] = [];
    const err = await connectWithRetry(
      createSshConnector(),
      {
        host,
        port,
        username: 'root',
        privateKey: generateEd25519KeyPair().privateKey,
        label: 'ghost',
        hostKeyFingerprint: 'SHA256:' + 'A'.repeat(43),
      },
      { timeoutMs: 1500, initialDelayMs: 100, maxDelayMs: 200, onWait: (a) => waits.push(a) },
    ).then(
      () => assert.fail('must give up'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SshConnectError, String(err));
    assert.equal(err.retryable, false);
    assert.match(err.message, /SSH on ghost \(127\.0\.0\.7:1\) did not come up within 2 s/);
    assert.ok(waits.length >= 1);
  });

  it('retries a host that accepts TCP but does not answer SSH yet (handshake timeout), then gives up', async () => {
    const silent = createServer((sock) => {
      sock.on('error', () => {});
      held.push(sock);
    });
    const held: Socket[] = [];
    await new Promise<void>((r) => silent.listen(0, '127.0.0.8', r));
    const port = (silent.address() as { port: number }).port;
    const waits: Error[] = [];
    try {
      const err = await connectWithRetry(
        createSshConnector(),
        {
          host: '127.0.0.8',
          port,
          username: 'root',
          privateKey: generateEd25519KeyPair().privateKey,
          label: 'booting',
          readyTimeoutMs: 500,
        },
        { timeoutMs: 4000, initialDelayMs: 100, maxDelayMs: 200, onWait: (_a, e) => waits.push(e) },
      ).then(
        () => assert.fail('must give up'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SshConnectError, String(err));
      assert.match(err.message, /did not come up/);
      assert.ok(waits.length >= 1);
      assert.ok(
        waits.every((e) => e instanceof SshConnectError && e.retryable && /handshake/.test(e.message)),
        waits.map(String).join('\n'),
      );
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('retries a host that closes the connection before the SSH banner (sshd still starting)', async () => {
    const closing = createServer((sock) => sock.destroy());
    await new Promise<void>((r) => closing.listen(0, '127.0.0.8', r));
    const port = (closing.address() as { port: number }).port;
    const waits: Error[] = [];
    try {
      const err = await connectWithRetry(
        createSshConnector(),
        { host: '127.0.0.8', port, username: 'root', privateKey: generateEd25519KeyPair().privateKey, label: 'booting' },
        { timeoutMs: 1500, initialDelayMs: 100, maxDelayMs: 200, onWait: (_a, e) => waits.push(e) },
      ).then(
        () => assert.fail('must give up'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SshConnectError, String(err));
      assert.ok(waits.length >= 1);
      assert.ok(
        waits.every((e) => e instanceof SshConnectError && e.retryable),
        waits.map(String).join('\n'),
      );
    } finally {
      await new Promise<void>((r) => closing.close(() => r()));
    }
  });

  it('stops waiting when aborted', async () => {
    const host = '127.0.0.7';
    const port = 1;
    const ac = new AbortController();
    const err = await connectWithRetry(
      createSshConnector(),
      { host, port, username: 'root', privateKey: generateEd25519KeyPair().privateKey, label: 'ghost' },
      { signal: ac.signal, timeoutMs: 60_000, initialDelayMs: 100, onWait: (a) => a >= 2 && ac.abort() },
    ).then(
      () => assert.fail('must stop'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AbortedError, String(err));
  });
});
