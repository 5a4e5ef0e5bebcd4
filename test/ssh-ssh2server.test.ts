/**
 * The connector against a minimal ssh2 *server* (the kind the demo nodes use) instead of OpenSSH:
 * SFTP without posix-rename@openssh.com (writeFile falls back to remove + rename), exit statuses,
 * a channel closed without an exit status, and a server that drops the connection mid-command.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel, SFTPWrapper } from 'ssh2';
import { RemoteError } from '../src/errors.js';
import { sh } from '../src/shell/quote.js';
import { createSshConnector } from '../src/ssh/client.js';
import { generateEd25519KeyPair } from '../src/ssh/keys.js';
import type { SshSession } from '../src/ssh/types.js';

const { Server, utils } = ssh2;
const { OPEN_MODE, STATUS_CODE } = utils.sftp;

interface MemFile {
  data: Buffer;
  mode: number;
}

/** In-memory SFTP v3 with plain RENAME (fails when the target exists, as the protocol says). */
function serveSftp(sftp: SFTPWrapper, files: Map<string, MemFile>, log: string[]): void {
  const handles = new Map<number, string>();
  let next = 1;
  const hb = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const hn = (b: Buffer) => b.readUInt32BE(0);
  const attrs = (f: MemFile) => ({ mode: 0o100000 | f.mode, uid: 0, gid: 0, size: f.data.length, atime: 0, mtime: 0 });
  sftp.on('OPEN', (id, path, flags, a) => {
    if (flags & OPEN_MODE.WRITE) files.set(path, { data: Buffer.alloc(0), mode: a.mode !== undefined ? a.mode & 0o7777 : 0o644 });
    else if (!files.has(path)) return sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    const h = next++;
    handles.set(h, path);
    sftp.handle(id, hb(h));
  });
  sftp.on('WRITE', (id, handle, offset, data) => {
    const f = files.get(handles.get(hn(handle)) ?? '');
    if (!f) return sftp.status(id, STATUS_CODE.FAILURE);
    const end = offset + data.length;
    if (f.data.length < end) f.data = Buffer.concat([f.data, Buffer.alloc(end - f.data.length)]);
    data.copy(f.data, offset);
    sftp.status(id, STATUS_CODE.OK);
  });
  sftp.on('READ', (id, handle, offset, length) => {
    const f = files.get(handles.get(hn(handle)) ?? '');
    if (!f) return sftp.status(id, STATUS_CODE.FAILURE);
    if (offset >= f.data.length) return sftp.status(id, STATUS_CODE.EOF);
    sftp.data(id, f.data.subarray(offset, Math.min(f.data.length, offset + length)));
  });
  sftp.on('FSTAT', (id, handle) => {
    const f = files.get(handles.get(hn(handle)) ?? '');
    if (!f) return sftp.status(id, STATUS_CODE.FAILURE);
    sftp.attrs(id, attrs(f));
  });
  const stat = (id: number, path: string) => {
    const f = files.get(path);
    if (!f) return sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    sftp.attrs(id, attrs(f));
  };
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);
  const setstat = (id: number, path: string, a: { mode?: number }) => {
    const f = files.get(path);
    if (!f) return sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    if (a.mode !== undefined) f.mode = a.mode & 0o7777;
    sftp.status(id, STATUS_CODE.OK);
  };
  sftp.on('SETSTAT', (id, path, a) => setstat(id, path, a));
  sftp.on('FSETSTAT', (id, handle, a) => setstat(id, handles.get(hn(handle)) ?? '', a));
  sftp.on('CLOSE', (id, handle) => {
    handles.delete(hn(handle));
    sftp.status(id, STATUS_CODE.OK);
  });
  sftp.on('REMOVE', (id, path) => {
    log.push(`remove ${path}`);
    if (!files.delete(path)) return sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    sftp.status(id, STATUS_CODE.OK);
  });
  sftp.on('RENAME', (id, from, to) => {
    log.push(`rename ${from} -> ${to}`);
    const f = files.get(from);
    if (!f) return sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    if (files.has(to)) return sftp.status(id, STATUS_CODE.FAILURE);
    files.delete(from);
    files.set(to, f);
    sftp.status(id, STATUS_CODE.OK);
  });
}

describe('the connector against an ssh2 server', () => {
  const hostKey = generateEd25519KeyPair('demo-host');
  const clientKey = generateEd25519KeyPair('demo-client');
  const files = new Map<string, MemFile>();
  const sftpLog: string[] = [];
  const clients = new Set<Connection>();
  let server: InstanceType<typeof Server>;
  let port: number;
  let session: SshSession;

  before(async () => {
    const authorized = utils.parseKey(clientKey.publicKeyLine);
    assert.ok(!(authorized instanceof Error));
    server = new Server({ hostKeys: [hostKey.privateKey] }, (client) => {
      clients.add(client);
      client.on('close', () => clients.delete(client));
      client.on('error', () => {});
      client.on('authentication', (ctx) => {
        if (ctx.method !== 'publickey' || !ctx.key.data.equals(authorized.getPublicSSH())) return ctx.reject(['publickey']);
        if (ctx.signature && ctx.blob && authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
          return ctx.reject(['publickey']);
        ctx.accept();
      });
      client.on('ready', () => {
        client.on('session', (acceptSession) => {
          const s = acceptSession();
          s.on('sftp', (accept) => serveSftp(accept(), files, sftpLog));
          s.on('exec', (accept, _reject, info) => {
            const ch: ServerChannel = accept();
            if (info.command === 'no-exit-status') {
              ch.end();
            } else if (info.command === 'drop-connection') {
              ch.write('partial output\n');
              setTimeout(() => client.end(), 50);
            } else if (info.command.startsWith('fail ')) {
              ch.stderr.write('something broke\n');
              ch.exit(Number(info.command.slice(5)));
              ch.end();
            } else {
              ch.write(`ran: ${info.command}\n`);
              ch.exit(0);
              ch.end();
            }
          });
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    session = await createSshConnector().connect({
      host: '127.0.0.1',
      port,
      username: 'core',
      privateKey: clientKey.privateKey,
      hostKeyFingerprint: hostKey.fingerprint,
      label: 'demo-node',
    });
  });
  after(async () => {
    await session?.close();
    for (const c of clients) c.end();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('pins the ssh2 server host key like any other', () => {
    assert.equal(session.hostKeyFingerprint, hostKey.fingerprint);
  });

  it('exec returns output and exit codes; run() throws with the stderr tail', async () => {
    assert.equal(await session.run(sh`echo ${'hi there'}`), "ran: echo 'hi there'\n");
    const r = await session.exec('fail 4');
    assert.equal(r.code, 4);
    await assert.rejects(
      session.run('fail 2'),
      (e: unknown) => e instanceof RemoteError && /exit code 2/.test(e.message) && e.detail === 'something broke',
    );
  });

  it('a channel closed without an exit status is a RemoteError, not exit 0', async () => {
    await assert.rejects(
      session.exec('no-exit-status'),
      (e: unknown) => e instanceof RemoteError && /without an exit status/.test(e.message),
    );
    assert.equal(await session.run('still-ok'), 'ran: still-ok\n');
  });

  it('writeFile without posix-rename removes the old file and renames the new one over it', async () => {
    await session.writeFile('/home/core/a.txt', 'first', 0o600);
    assert.equal(files.get('/home/core/a.txt')?.data.toString(), 'first');
    assert.equal(files.get('/home/core/a.txt')?.mode, 0o600);
    sftpLog.length = 0;
    await session.writeFile('/home/core/a.txt', 'second', 0o644);
    assert.equal(files.get('/home/core/a.txt')?.data.toString(), 'second');
    assert.equal(files.get('/home/core/a.txt')?.mode, 0o644);
    assert.equal(sftpLog[0], 'remove /home/core/a.txt');
    assert.match(sftpLog[1] ?? '', /^rename \/home\/core\/a\.txt\.tmp-[0-9a-f]+ -> \/home\/core\/a\.txt$/);
    assert.deepEqual(
      [...files.keys()].filter((k) => k.startsWith('/home/core/a.txt')),
      ['/home/core/a.txt'],
    );
    assert.equal((await session.readFile('/home/core/a.txt')).toString(), 'second');
    assert.deepEqual(await session.stat('/home/core/a.txt'), { size: 6, mode: 0o644 });
    assert.equal(await session.stat('/home/core/missing'), null);
  });

  it('a server that drops the connection mid-command gives "connection lost during `cmd`"', async () => {
    const s2 = await createSshConnector().connect({
      host: '127.0.0.1',
      port,
      username: 'core',
      privateKey: clientKey.privateKey,
      hostKeyFingerprint: hostKey.fingerprint,
      label: 'demo-node',
    });
    const lines: string[] = [];
    await assert.rejects(
      s2.exec('drop-connection', { onLine: (l) => lines.push(l) }),
      (e: unknown) => e instanceof RemoteError && /connection to demo-node was lost during `drop-connection`/.test(e.message),
    );
    assert.deepEqual(lines, ['partial output']);
    await s2.close();
  });
});
