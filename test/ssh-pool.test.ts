/**
 * One SSH connection per host per run (src/ssh/pool.ts), against a real OpenSSH sshd on loopback:
 * every lease on a host runs over the same TCP connection (the server sees one client port), closing a
 * lease keeps it open, and after the host reboots (every connection dropped, sshd down, then back
 * with the same host key) the next command through the same lease reconnects and runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectWithRetry, createSshConnector } from '../src/ssh/client.js';
import { MAX_CHANNELS, SshPool } from '../src/ssh/pool.js';
import { SshConnectError } from '../src/ssh/errors.js';
import type { SshSession, SshTarget } from '../src/ssh/types.js';
import { startSshd, type Sshd } from './helpers/sshd.js';

/** The client side of the connection as the server sees it ("ip port"). */
const clientEnd = async (s: SshSession) => (await s.run('echo "$SSH_CONNECTION"')).trim().split(/\s+/).slice(0, 2).join(' ');

describe('SSH connection pool against a real sshd', () => {
  let sshd: Sshd;
  let target: SshTarget;
  const connector = createSshConnector({ keepaliveIntervalMs: 1000 });
  const pool = new SshPool();
  const made: SshSession[] = [];
  const connect = async () => {
    const s = await connectWithRetry(connector, target, { timeoutMs: 60_000, initialDelayMs: 50, maxDelayMs: 200 });
    made.push(s);
    return s;
  };

  before(async () => {
    sshd = await startSshd();
    target = {
      host: sshd.host,
      port: sshd.port,
      username: sshd.user,
      privateKey: sshd.clientKey,
      hostKeyFingerprint: sshd.hostKeyFingerprint,
      label: 'pool-node',
    };
  });
  after(async () => {
    await pool.closeAll();
    await sshd?.stop();
  });

  it('reuses one connection for every check and run on the host', async () => {
    // as a check, then a run, then another step's check would: each gets a lease and closes it
    const a = await pool.get(target, connect);
    const endA = await clientEnd(a);
    await a.close();
    const b = await pool.get(target, connect);
    const [endB, endC] = await Promise.all([clientEnd(b), pool.get(target, connect).then(clientEnd)]);
    await b.close();
    assert.equal(endB, endA);
    assert.equal(endC, endA);
    assert.equal(made.length, 1);
    assert.equal(pool.stats.connects, 1);
    assert.equal(pool.stats.reuses, 2);
  });

  it('runs more commands at once than one connection has channels for (they queue)', async () => {
    const s = await pool.get(target, connect);
    const n = MAX_CHANNELS + 4;
    const outs = await Promise.all(Array.from({ length: n }, (_, i) => s.run(`echo ${i}`)));
    assert.deepEqual(
      outs.map((o) => o.trim()),
      Array.from({ length: n }, (_, i) => String(i)),
    );
    assert.equal(made.length, 1);
  });

  it('reconnects after the host reboots, through the lease it already had', async () => {
    const lease = await pool.get(target, connect);
    const before = await clientEnd(lease);
    const first = made[0]!;
    await sshd.reboot(async () => {
      // the drop is noticed (keep-alives / the socket closing) while the host is down
      const deadline = Date.now() + 20_000;
      while (first.isOpen?.() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(first.isOpen?.(), false);
    });
    const after = await clientEnd(lease);
    assert.notEqual(after, before);
    assert.equal(made.length, 2);
    assert.equal(made[1]!.hostKeyFingerprint, sshd.hostKeyFingerprint);
    // and the new connection is the one everybody shares from now on
    assert.equal(await clientEnd(await pool.get(target, connect)), after);
    assert.equal(made.length, 2);
  });

  it('closeAll closes the shared connections', async () => {
    await pool.closeAll();
    assert.ok(made.every((s) => s.isOpen?.() === false));
  });
});

it('connectWithRetry: nextDelayMs sets each wait from the time waited; final errors are not retried', async () => {
  let attempts = 0;
  const session = { hostKeyFingerprint: 'SHA256:x' } as unknown as SshSession;
  const connector = {
    connect: async () => {
      if (++attempts < 5) throw new SshConnectError('connection refused', { retryable: true, code: 'ECONNREFUSED' });
      return session;
    },
  } as never;
  const waited: number[] = [];
  const got = await connectWithRetry(connector, { host: '127.0.0.1', port: 1, username: 'core', label: 'n' } as never, {
    initialDelayMs: 1,
    nextDelayMs: (w) => {
      waited.push(w);
      return 3;
    },
  });
  assert.equal(got, session);
  assert.equal(attempts, 5);
  assert.equal(waited.length, 4, 'asked after each of the four waits (the first is initialDelayMs)');
  for (let i = 1; i < waited.length; i++) assert.ok(waited[i]! >= waited[i - 1]! + 2, `waits grow: ${waited.join(', ')}`);
  const final = { connect: async () => Promise.reject(new SshConnectError('auth failed', { retryable: false })) } as never;
  await assert.rejects(
    connectWithRetry(final, { host: '127.0.0.1', port: 1, username: 'core', label: 'n' } as never, { nextDelayMs: () => 1 }),
    /auth failed/,
  );
});
