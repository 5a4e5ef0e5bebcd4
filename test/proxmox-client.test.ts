/**
 * Proxmox client unit tests against a scripted HTTPS server on loopback (no simulator):
 * TLS pinning and CA trust, retry policy, error mapping, byte-correct bodies, tickets, tasks.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeCert, startFakePve, TOKEN_SECRET, type Cert, type FakeAnswer, type FakePve, type FakeRequest } from './proxmox-fake-server.js';
import {
  createProxmoxClient,
  probeFingerprint,
  pveVersionAtLeast,
  encodeSshKeys,
  requireRootPam,
  withLockRetry,
  type ClientTuning,
  TICKET_RENEW_MS,
} from '../src/proxmox/client.js';
import { PveAmbiguousError } from '../src/proxmox/errors.js';
import { RemoteError, UserError } from '../src/errors.js';

const fast: ClientTuning = { sleep: async () => {}, recheckDelayMs: 0, taskPollMs: 1 };
const TOKEN = { tokenId: 'root@pam!flatcar', tokenSecret: TOKEN_SECRET };
const VERSION = { version: '8.4.1', release: '8.4', repoid: 'abc' };

let cert: Cert;
before(() => {
  cert = makeCert();
});
after(() => cert.cleanup());

async function withServer(
  handle: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>,
  fn: (srv: FakePve) => Promise<void>,
  c: Cert = cert,
) {
  const srv = await startFakePve(c, (req) => (req.path === '/version' && req.method === 'GET' ? { data: VERSION } : handle(req)));
  try {
    await fn(srv);
  } finally {
    await srv.close();
  }
}

describe('TLS trust', () => {
  test('probeFingerprint reads the certificate openssl computed', async () => {
    await withServer(
      () => ({ data: null }),
      async (srv) => {
        const info = await probeFingerprint(srv.url);
        assert.equal(info.fingerprint, cert.fingerprint);
        assert.match(info.subject, /CN=pve-test/);
        assert.ok(info.validTo.length > 0);
      },
    );
  });

  test('a matching pin connects and reports the fingerprint', async () => {
    await withServer(
      () => ({ data: null }),
      async (srv) => {
        const { client, fingerprint } = await createProxmoxClient(
          { url: srv.url, ...TOKEN, fingerprint: cert.fingerprint.toLowerCase() },
          fast,
        );
        assert.equal(fingerprint, cert.fingerprint);
        assert.equal((await client.version()).version, '8.4.1');
      },
    );
  });

  test('a changed certificate is refused before any request is sent', async () => {
    const other = makeCert({ cn: 'other' });
    try {
      await withServer(
        () => ({ data: null }),
        async (srv) => {
          await assert.rejects(createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: other.fingerprint }, fast), (err: unknown) => {
            assert.ok(err instanceof UserError);
            assert.equal(err.field, 'proxmox.fingerprint');
            assert.match(
              err.message,
              /^The Proxmox TLS certificate changed: pinned .+ now .+; if you renewed the certificate, update proxmox\.fingerprint$/,
            );
            assert.ok(err.detail?.includes(other.fingerprint) && err.detail.includes(cert.fingerprint));
            return true;
          });
          assert.equal(srv.requests.length, 0, 'no HTTP request may reach a server whose certificate does not match');
        },
      );
    } finally {
      other.cleanup();
    }
  });

  test('an unknown certificate is refused unless the caller trusts it', async () => {
    await withServer(
      () => ({ data: null }),
      async (srv) => {
        let offered = '';
        await assert.rejects(
          createProxmoxClient({ url: srv.url, ...TOKEN, onUnknownFingerprint: (fp) => ((offered = fp), false) }, fast),
          (err: unknown) =>
            err instanceof UserError &&
            err.field === 'proxmox.fingerprint' &&
            /pvenode cert info/.test(err.fix ?? '') &&
            err.message.includes(cert.fingerprint),
        );
        assert.equal(offered, cert.fingerprint);
        assert.equal(srv.requests.length, 0);
        const { fingerprint } = await createProxmoxClient({ url: srv.url, ...TOKEN, onUnknownFingerprint: async () => true }, fast);
        assert.equal(fingerprint, cert.fingerprint);
      },
    );
  });

  test('a CA file verifies the chain; a wrong CA is refused with the field to fix', async () => {
    const signed = makeCert({ withCa: true });
    const otherCa = makeCert({ withCa: true });
    try {
      await withServer(
        () => ({ data: null }),
        async (srv) => {
          const { fingerprint } = await createProxmoxClient({ url: srv.url, ...TOKEN, caFile: signed.caFile }, fast);
          assert.equal(fingerprint, signed.fingerprint);
          await assert.rejects(
            createProxmoxClient({ url: srv.url, ...TOKEN, caFile: otherCa.caFile }, fast),
            (err: unknown) => err instanceof UserError && err.field === 'proxmox.caFile',
          );
          assert.equal(srv.requests.length, 1, 'only the verified connection sent a request');
        },
        signed,
      );
    } finally {
      signed.cleanup();
      otherCa.cleanup();
    }
  });
});

describe('requests', () => {
  test('non-ASCII values are sent with a byte-correct Content-Length', async () => {
    await withServer(
      () => ({ data: null }),
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        const description = 'Zürich ✓ 日本 — flatcar';
        await client.updateVmConfig('pve', 9000, { description, onboot: true, skipped: undefined });
        const put = srv.requests.find((r) => r.method === 'PUT')!;
        assert.equal(Number(put.headers['content-length']), put.rawBody.length);
        assert.equal(put.params.description, description);
        assert.equal(put.params.onboot, '1');
        assert.equal('skipped' in put.params, false);
        assert.equal(put.headers.authorization, `PVEAPIToken=root@pam!flatcar=${TOKEN_SECRET}`);
      },
    );
  });

  test('sshkeys are URI-encoded once before form encoding', async () => {
    await withServer(
      () => ({ data: null }),
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        const keys = ['ssh-ed25519 AAAAC3Nza+/= me@host', 'ssh-rsa AAAAB3= other'];
        await client.updateVmConfig('pve', 9000, { sshkeys: keys.join('\n') });
        await client.updateVmConfig('pve', 9000, { sshkeys: encodeSshKeys(keys) });
        const puts = srv.requests.filter((r) => r.method === 'PUT');
        for (const p of puts) {
          assert.match(p.params.sshkeys!, /^[-%a-zA-Z0-9_.!~*'()]*$/);
          assert.equal(decodeURIComponent(p.params.sshkeys!), keys.join('\n'));
        }
      },
    );
  });

  test('GETs are retried after dropped connections; the library does not add its own retry', async () => {
    let n = 0;
    await withServer(
      (req) => (req.path === '/nodes' ? (++n <= 2 ? 'drop' : { data: [{ node: 'pve', status: 'online' }] }) : { data: null }),
      async (srv) => {
        const lines: string[] = [];
        const { client } = await createProxmoxClient(
          { url: srv.url, ...TOKEN, fingerprint: cert.fingerprint, log: (l) => lines.push(l) },
          fast,
        );
        const nodes = await client.nodes();
        assert.deepEqual(
          nodes.map((x) => x.node),
          ['pve'],
        );
        assert.equal(srv.requests.filter((r) => r.path === '/nodes').length, 3);
        assert.ok(lines.some((l) => /retrying/.test(l)));
      },
    );
  });

  test('GET retries stop at the cap', async () => {
    await withServer(
      (req) => (req.path === '/nodes' ? 'drop' : { data: null }),
      async (srv) => {
        const { client } = await createProxmoxClient(
          { url: srv.url, ...TOKEN, fingerprint: cert.fingerprint },
          { ...fast, getAttempts: 3 },
        );
        await assert.rejects(client.nodes(), RemoteError);
        assert.equal(srv.requests.filter((r) => r.path === '/nodes').length, 3);
      },
    );
  });

  test('a POST whose connection drops is sent exactly once', async () => {
    await withServer(
      (req) => (req.method === 'POST' ? 'drop' : { data: null }),
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        await assert.rejects(
          client.startVm('pve', 9001),
          (err: unknown) => err instanceof PveAmbiguousError && /not sent again/.test(err.message),
        );
        assert.equal(srv.requests.filter((r) => r.method === 'POST').length, 1);
      },
    );
  });

  test('a create whose answer was lost follows the task Proxmox did start', async () => {
    const upid = 'UPID:pve:0001:0002:65000000:qmcreate:9005:root@pam!flatcar:';
    await withServer(
      (req) => {
        if (req.method === 'POST') return 'drop';
        if (req.path === '/nodes/pve/tasks')
          return {
            data: [{ upid, type: 'qmcreate', id: '9005', starttime: Math.floor(Date.now() / 1000), node: 'pve', user: 'root@pam!flatcar' }],
          };
        if (req.path === '/cluster/resources')
          return { data: [{ type: 'qemu', vmid: 9005, node: 'pve', status: 'stopped', lock: 'create' }] };
        return { data: null };
      },
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        assert.equal(await client.createVm('pve', { vmid: 9005, name: 'x' }), upid);
        assert.equal(srv.requests.filter((r) => r.method === 'POST').length, 1);
        const tasksQuery = srv.requests.find((r) => r.path === '/nodes/pve/tasks')!.query;
        assert.equal(tasksQuery.vmid, '9005');
        assert.equal(tasksQuery.typefilter, 'qmcreate');
      },
    );
  });

  test('a clone whose answer was lost and that never arrived says nothing was created', async () => {
    await withServer(
      (req) =>
        req.method === 'POST'
          ? 'drop'
          : req.path === '/nodes/pve/tasks' || req.path === '/cluster/resources'
            ? { data: [] }
            : { data: null },
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        await assert.rejects(
          client.cloneVm('pve', 9000, { newid: 9010 }),
          (err: unknown) => err instanceof PveAmbiguousError && /nothing was created/.test(err.message),
        );
        assert.equal(srv.requests.filter((r) => r.method === 'POST').length, 1);
      },
    );
  });

  test('lock timeouts are retried, other server errors are not', async () => {
    let puts = 0;
    await withServer(
      (req) => {
        if (req.method === 'PUT')
          return ++puts <= 2
            ? { status: 500, statusText: "can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout" }
            : { data: null };
        if (req.path === '/nodes/pve/qemu/9000/config')
          return { status: 500, statusText: "Configuration file 'nodes/pve/qemu-server/9000.conf' does not exist" };
        return { data: null };
      },
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        await client.updateVmConfig('pve', 9000, { memory: 4096 });
        assert.equal(puts, 3);
        await assert.rejects(
          client.vmConfig('pve', 9000),
          (err: unknown) => err instanceof RemoteError && /does not exist/.test(err.message),
        );
        assert.equal(srv.requests.filter((r) => r.path === '/nodes/pve/qemu/9000/config' && r.method === 'GET').length, 1);
      },
    );
  });
});

describe('errors a user can act on', () => {
  async function failing(
    answer: (req: FakeRequest) => FakeAnswer | undefined,
    call: (c: Awaited<ReturnType<typeof createProxmoxClient>>['client']) => Promise<unknown>,
  ) {
    let caught: unknown;
    await withServer(
      (req) => answer(req) ?? { data: null },
      async (srv) => {
        const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
        caught = await call(client).then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
      },
    );
    return caught as Error & { field?: string; fix?: string; detail?: string };
  }

  test('401 names the token and where tokens are managed', async () => {
    const srv = await startFakePve(cert, () => ({ status: 401, statusText: 'authentication failure' }));
    try {
      await assert.rejects(
        createProxmoxClient({ url: srv.url, tokenId: 'root@pam!x', tokenSecret: TOKEN_SECRET, fingerprint: cert.fingerprint }, fast),
        (err: unknown) => {
          assert.ok(err instanceof UserError);
          assert.equal(
            err.message,
            'Proxmox rejected the API token root@pam!x (401). Check proxmox.tokenId/tokenSecret; tokens are shown once at creation: Datacenter → Permissions → API Tokens',
          );
          assert.ok(
            !JSON.stringify({ m: err.message, d: err.detail, f: err.fix }).includes(TOKEN_SECRET),
            'the secret never appears in an error',
          );
          return true;
        },
      );
    } finally {
      await srv.close();
    }
  });

  test('a malformed token secret is refused before connecting', async () => {
    await assert.rejects(
      createProxmoxClient(
        { url: 'https://127.0.0.1:1', tokenId: 'root@pam!x', tokenSecret: 'not-a-uuid', fingerprint: cert.fingerprint },
        fast,
      ),
      (err: unknown) => err instanceof UserError && err.field === 'proxmox.tokenSecret' && !err.message.includes('not-a-uuid'),
    );
  });

  test('403 names the privilege and the path', async () => {
    const err = await failing(
      (r) => (r.method === 'POST' ? { status: 403, statusText: 'Permission check failed (/vms/9000, VM.Allocate)' } : undefined),
      (c) => c.createVm('pve', { vmid: 9000 }),
    );
    assert.ok(err instanceof UserError);
    assert.match(err.message, /VM\.Allocate on \/vms\/9000/);
    assert.match(err.fix!, /pveum acl modify \/vms\/9000 --tokens 'root@pam!flatcar'/);
  });

  test('400 shows every parameter message', async () => {
    const err = await failing(
      (r) =>
        r.method === 'POST'
          ? {
              status: 400,
              statusText: 'Parameter verification failed.',
              errors: {
                cores: 'value must have a minimum value of 1',
                foo: 'property is not defined in schema and the schema does not allow additional properties',
              },
            }
          : undefined,
      (c) => c.createVm('pve', { vmid: 9000, cores: 0, foo: 'x' }),
    );
    assert.ok(err instanceof UserError);
    assert.match(err.message, /cores: value must have a minimum value of 1 \(sent: 0\)/);
    assert.match(err.message, /foo: property is not defined in schema/);
  });

  test('an unknown storage lists the storages of that node', async () => {
    const err = await failing(
      (r) => {
        if (r.path === '/nodes/pve/storage')
          return {
            data: [
              { storage: 'local', type: 'dir', content: 'iso,vztmpl', active: 1 },
              { storage: 'local-lvm', type: 'lvmthin', content: 'images,rootdir', active: 1 },
            ],
          };
        if (r.path.endsWith('/download-url')) return { status: 500, statusText: "storage 'nas' does not exist" };
        return undefined;
      },
      (c) => c.downloadUrl('pve', 'nas', { url: 'https://x/y.img', content: 'iso', filename: 'y.img' }),
    );
    assert.ok(err instanceof UserError);
    assert.match(err.fix!, /local \(iso,vztmpl\), local-lvm \(images,rootdir\)/);
  });

  test('a storage without the content type gives the pvesm command keeping existing types', async () => {
    const err = await failing(
      (r) => {
        if (r.path === '/storage/local')
          return { data: { storage: 'local', type: 'dir', content: 'iso,vztmpl,backup', path: '/var/lib/vz' } };
        if (r.path.endsWith('/download-url')) return { status: 500, statusText: "storage 'local' does not support content-type 'import'" };
        return undefined;
      },
      (c) => c.downloadUrl('pve', 'local', { url: 'https://x/y.qcow2', content: 'import', filename: 'y.qcow2' }),
    );
    assert.ok(err instanceof UserError);
    assert.match(err.fix!, /pvesm set local --content iso,vztmpl,backup,import/);
  });

  test('PVE too old for import content names the version and the fallback', async () => {
    const err = await failing(
      (r) =>
        r.path.endsWith('/download-url')
          ? {
              status: 400,
              statusText: 'Parameter verification failed.',
              errors: { content: "value 'import' does not have a value in the enumeration 'iso, vztmpl'" },
            }
          : undefined,
      (c) => c.downloadUrl('pve', 'local', { url: 'https://x/y.qcow2', content: 'import', filename: 'y.qcow2' }),
    );
    assert.ok(err instanceof UserError);
    assert.match(err.message, /Proxmox VE 8\.4\.1 is too old .* needs Proxmox VE 8\.4/);
    assert.match(err.fix!, /qm disk import/);
  });
});

describe('tickets', () => {
  test('login, CSRF on writes, renewal before expiry and once on 401', async () => {
    let clock = 1_000_000;
    let tickets = 0;
    let rejectNext = false;
    const srv = await startFakePve(cert, (req) => {
      if (req.path === '/access/ticket') {
        if (req.params.password !== 'pässwörd') return { status: 401, statusText: 'authentication failure' };
        tickets++;
        return { data: { ticket: `PVE:root@pam:T${tickets}`, CSRFPreventionToken: `C${tickets}`, username: 'root@pam' } };
      }
      const cookie = String(req.headers.cookie ?? '');
      if (!/PVEAuthCookie=PVE:root@pam:T\d+/.test(cookie)) return { status: 401, statusText: 'invalid PVE ticket' };
      if (rejectNext) {
        rejectNext = false;
        return { status: 401, statusText: 'invalid PVE ticket' };
      }
      if (req.method !== 'GET' && req.headers.csrfpreventiontoken !== `C${/T(\d+)/.exec(cookie)![1]}`)
        return { status: 401, statusText: 'invalid csrf token' };
      return req.path === '/version' ? { data: VERSION } : { data: null };
    });
    try {
      await assert.rejects(
        createProxmoxClient({ url: srv.url, username: 'root@pam', password: 'wrong', fingerprint: cert.fingerprint }, fast),
        (err: unknown) =>
          err instanceof UserError && err.field === 'proxmox.password' && /root@pam/.test(err.message) && !err.message.includes('wrong'),
      );
      const { client } = await createProxmoxClient(
        { url: srv.url, username: 'root@pam', password: 'pässwörd', fingerprint: cert.fingerprint },
        { ...fast, now: () => clock },
      );
      assert.equal(tickets, 1);
      await client.startVm('pve', 100);
      assert.equal(tickets, 1);
      clock += TICKET_RENEW_MS + 1;
      await client.version();
      assert.equal(tickets, 2, 'renewed after 1 h 45');
      rejectNext = true;
      await client.stopVm('pve', 100);
      assert.equal(tickets, 3, 'renewed once on 401');
      const login = srv.requests.find((r) => r.path === '/access/ticket' && r.params.password === 'pässwörd')!;
      assert.equal(Number(login.headers['content-length']), login.rawBody.length);
      assert.doesNotThrow(() => (client as unknown as { requireRootPam(w: string): void }).requireRootPam('setting args'));
    } finally {
      await srv.close();
    }
  });
});

describe('tasks', () => {
  const upid = 'UPID:pve:00001:00002:65000000:qmclone:9000:root@pam!flatcar:';
  function taskServer(final: string, polls = 2) {
    let n = 0;
    return (req: FakeRequest): FakeAnswer => {
      if (req.path.endsWith('/status')) {
        n++;
        return {
          data: {
            upid,
            node: 'pve',
            status: n > polls ? 'stopped' : 'running',
            exitstatus: n > polls ? final : undefined,
            type: 'qmclone',
            id: '9000',
            user: 'root@pam!flatcar',
            starttime: 1,
          },
        };
      }
      if (req.path.endsWith('/log')) {
        const all = [
          'create full clone of drive scsi0',
          'transferred 1.0 GiB of 2.0 GiB (50.00%)',
          'transferred 2.0 GiB of 2.0 GiB (100.00%)',
          final === 'OK' ? 'TASK OK' : `TASK ERROR: ${final}`,
        ];
        const visible = n > polls ? all : all.slice(0, n);
        const start = Number(req.query.start ?? 0);
        return { data: visible.slice(start).map((t, i) => ({ n: start + i + 1, t })) };
      }
      return { data: null };
    };
  }

  test('waitTask streams each log line once and returns on OK', async () => {
    await withServer(taskServer('OK'), async (srv) => {
      const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
      const lines: string[] = [];
      const st = await client.waitTask('pve', upid, { onLog: (l) => lines.push(l) });
      assert.equal(st.exitstatus, 'OK');
      assert.deepEqual(lines, [
        'create full clone of drive scsi0',
        'transferred 1.0 GiB of 2.0 GiB (50.00%)',
        'transferred 2.0 GiB of 2.0 GiB (100.00%)',
        'TASK OK',
      ]);
    });
  });

  test('a failed task is a RemoteError with the exit status and the log tail', async () => {
    await withServer(taskServer('unable to create VM 9001: config file already exists'), async (srv) => {
      const { client } = await createProxmoxClient({ url: srv.url, ...TOKEN, fingerprint: cert.fingerprint }, fast);
      await assert.rejects(
        client.waitTask('pve', upid),
        (err: unknown) =>
          err instanceof RemoteError && /config file already exists/.test(err.message) && /TASK ERROR/.test(err.detail ?? ''),
      );
    });
  });

  test('a task that does not finish in time is reported, not waited on forever', async () => {
    await withServer(taskServer('OK', 1_000_000), async (srv) => {
      let clock = 0;
      const { client } = await createProxmoxClient(
        { url: srv.url, ...TOKEN, fingerprint: cert.fingerprint },
        { ...fast, now: () => (clock += 1000) },
      );
      await assert.rejects(
        client.waitTask('pve', upid, { timeoutMs: 5000 }),
        (err: unknown) => err instanceof RemoteError && /still runs after 5 s/.test(err.message),
      );
    });
  });
});

describe('helpers', () => {
  test('pveVersionAtLeast', () => {
    assert.equal(pveVersionAtLeast('8.4.1', '8.4'), true);
    assert.equal(pveVersionAtLeast('8.3.5', '8.4'), false);
    assert.equal(pveVersionAtLeast('9.0', '8.4'), true);
    assert.equal(pveVersionAtLeast('8.10.0', '8.4'), true);
    assert.equal(pveVersionAtLeast('7.4-3', '8.0'), false);
  });

  test('requireRootPam accepts only a root@pam ticket', () => {
    assert.doesNotThrow(() => requireRootPam('setting args', { kind: 'ticket', user: 'root@pam' }));
    assert.throws(
      () => requireRootPam('setting args', { kind: 'token', user: 'root@pam', tokenId: 'root@pam!x' }),
      (e: unknown) => e instanceof UserError && /root@pam!x/.test(e.message) && /setting args/.test(e.message),
    );
    assert.throws(() => requireRootPam('import-from an absolute path', { kind: 'ticket', user: 'admin@pve' }), UserError);
  });

  test('withLockRetry retries lock errors only, up to the cap', async () => {
    let n = 0;
    const ok = await withLockRetry(
      async () => {
        if (++n < 3)
          throw new RemoteError(
            "Proxmox task qmclone 9000 on pve failed: can't lock file '/var/lock/qemu-server/lock-9001.conf' - got timeout",
          );
        return 'done';
      },
      { sleep: async () => {} },
    );
    assert.equal(ok, 'done');
    assert.equal(n, 3);
    let m = 0;
    await assert.rejects(withLockRetry(async () => void (m++, assert.fail('boom')), { sleep: async () => {} }));
    assert.equal(m, 1);
    let k = 0;
    await assert.rejects(
      withLockRetry(
        async () =>
          void (k++,
          (() => {
            throw new Error("can't lock file 'x' - got timeout");
          })()),
        { sleep: async () => {}, attempts: 3 },
      ),
    );
    assert.equal(k, 3);
  });
});
