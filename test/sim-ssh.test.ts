/**
 * The simulated PVE host's SSH: public-key auth, SFTP confined to the `local` storage directory (an
 * uploaded snippet becomes a volume the API lists and cicustom accepts), pveversion/sha256sum, and
 * 127 for anything else.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { createSshConnector } from '../src/ssh/client.js';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { sshFingerprint } from '../src/sim/ssh-host.js';
import { simClient, type SimClient } from './sim-client.js';
import { generateEd25519KeyPair } from '../src/ssh/keys.js'; // ssh2's generator makes a malformed key ~1 in 256

let sim: Simulator;
let c: SimClient;

before(async () => {
  sim = await startSimulator({ speed: 0 });
  c = simClient(sim);
});
after(async () => {
  await c.close();
  await sim.close();
});

function connect(privateKey = sim.ssh!.privateKey): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let seen = '';
    client.on('ready', () => resolve(client)).on('error', reject);
    client.connect({
      host: sim.ssh!.host,
      port: sim.ssh!.port,
      username: 'root',
      privateKey,
      hostVerifier: (key: Buffer) => {
        seen = 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
        return seen === sim.ssh!.hostKeyFingerprint;
      },
      readyTimeout: 10000,
    });
  });
}

const sftpOf = (client: ssh2.Client): Promise<SFTPWrapper> => new Promise((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
const exec = (client: ssh2.Client, cmd: string): Promise<{ code: number; out: string; err: string }> =>
  new Promise((res, rej) =>
    client.exec(cmd, (e, stream) => {
      if (e) return rej(e);
      let out = '';
      let err = '';
      stream.on('data', (d: Buffer) => (out += d)).stderr.on('data', (d: Buffer) => (err += d));
      stream.on('close', (code: number) => res({ code, out, err }));
    }),
  );

describe('simulated PVE host SSH', () => {
  it('reports its host key fingerprint in OpenSSH format and a 0600 client key file', () => {
    assert.match(sim.ssh!.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(statSync(sim.ssh!.privateKeyPath).mode & 0o777, 0o600);
    assert.equal(readFileSync(sim.ssh!.privateKeyPath, 'utf8'), sim.ssh!.privateKey);
    assert.equal(
      sshFingerprint('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'),
      'SHA256:' +
        createHash('sha256')
          .update(Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', 'base64'))
          .digest('base64')
          .replace(/=+$/, ''),
    );
  });

  it('refuses another key', async () => {
    const other = generateEd25519KeyPair('other');
    await assert.rejects(connect(other.privateKey), /authentication/i);
  });

  it('uploads a snippet over SFTP (temp name + rename) that the API then lists and cicustom accepts', async () => {
    const client = await connect();
    try {
      const sftp = await sftpOf(client);
      const storagePath = (await c.ok<{ path: string }>('GET', '/storage/local')).path;
      assert.equal(storagePath, sim.storageRoot);
      const dir = `${storagePath}/snippets`;
      const tmp = `${dir}/.homelab-server-1.ign.tmp`;
      await new Promise<void>((res, rej) =>
        sftp.writeFile(tmp, '{"ignition":{"version":"3.4.0"}}', { mode: 0o600 }, (e) => (e ? rej(e) : res())),
      );
      await new Promise<void>((res, rej) => sftp.rename(tmp, `${dir}/homelab-server-1.ign`, (e) => (e ? rej(e) : res())));
      const st = await new Promise<{ size: number }>((res, rej) =>
        sftp.stat(`${dir}/homelab-server-1.ign`, (e, s) => (e ? rej(e) : res(s))),
      );
      assert.equal(st.size, 32);
      const list = await new Promise<string[]>((res, rej) => sftp.readdir(dir, (e, l) => (e ? rej(e) : res(l.map((x) => x.filename)))));
      assert.deepEqual(list, ['homelab-server-1.ign']);
    } finally {
      client.end();
    }
    const vols = await c.ok<Array<{ volid: string }>>('GET', '/nodes/pve1/storage/local/content', { content: 'snippets' });
    assert.deepEqual(
      vols.map((v) => v.volid),
      ['local:snippets/homelab-server-1.ign'],
    );
    const create = await c.task('POST', '/nodes/pve1/qemu', {
      vmid: 120,
      cicustom: 'user=local:snippets/homelab-server-1.ign',
      ide2: 'local-lvm:cloudinit',
    });
    assert.equal(create.exitstatus, 'OK');
  });

  it('refuses SFTP paths outside the storage directory', async () => {
    const client = await connect();
    try {
      const sftp = await sftpOf(client);
      await assert.rejects(
        new Promise<void>((res, rej) => sftp.writeFile('/tmp/escape.txt', 'x', (e) => (e ? rej(e) : res()))),
        /Permission denied/,
      );
      await assert.rejects(
        new Promise<void>((res, rej) => sftp.writeFile(`${sim.storageRoot}/../escape.txt`, 'x', (e) => (e ? rej(e) : res()))),
        /Permission denied/,
      );
      assert.ok(!existsSync(join(sim.storageRoot, '..', 'escape.txt')));
    } finally {
      client.end();
    }
  });

  it('runs pveversion and sha256sum; anything else is "command not found" (127)', async () => {
    const client = await connect();
    try {
      const v = await exec(client, 'pveversion');
      assert.equal(v.code, 0);
      assert.match(v.out, /^pve-manager\/8\.4\.1\//);
      const file = `${sim.storageRoot}/snippets/homelab-server-1.ign`;
      const sum = await exec(client, `sha256sum '${file}'`);
      assert.equal(sum.code, 0);
      assert.equal(sum.out, `${createHash('sha256').update(readFileSync(file)).digest('hex')}  ${file}\n`);
      const missing = await exec(client, `sha256sum '${sim.storageRoot}/snippets/nope.ign'`);
      assert.equal(missing.code, 1);
      const other = await exec(client, 'qm list');
      assert.equal(other.code, 127);
      assert.match(other.err, /qm: command not found/);
    } finally {
      client.end();
    }
  });

  it("works with the project's SSH connector (pinned host key, atomic writeFile, stat)", async () => {
    const s = await createSshConnector().connect({
      host: sim.ssh!.host,
      port: sim.ssh!.port,
      username: sim.ssh!.user,
      privateKey: sim.ssh!.privateKey,
      hostKeyFingerprint: sim.ssh!.hostKeyFingerprint,
      label: 'PVE host pve1',
    });
    try {
      const path = `${sim.storageRoot}/snippets/homelab-agent-1.ign`;
      await s.writeFile(path, '{"ignition":{"version":"3.4.0"},"x":1}', 0o600);
      assert.equal(readFileSync(path, 'utf8'), '{"ignition":{"version":"3.4.0"},"x":1}');
      assert.equal((await s.stat(path))?.size, 38);
      assert.equal(await s.stat(`${sim.storageRoot}/snippets/none.ign`), null);
    } finally {
      await s.close();
    }
  });
});
