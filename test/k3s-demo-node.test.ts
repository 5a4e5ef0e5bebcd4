/**
 * The demo Flatcar node (src/demo/flatcar-node.ts) through the real SSH connector: it accepts only the
 * Ignition's key, refuses unknown commands, installs k3s from the installer invocation, and rejects what
 * a real node/k3s would (wrong token, concurrent etcd joins).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDemoGuests, sshKeyPair, type DemoGuests } from '../src/demo/flatcar-node.js';
import { createSshConnector, connectWithRetry } from '../src/ssh/client.js';
import type { SshSession } from '../src/ssh/types.js';
import { installCommand, installScriptText, STAGED } from '../src/k3s/install-script.js';
import { demoK3sBinary, DEMO_K3S_VERSION } from '../src/k3s/demo-mirror.js';
import { sha256Hex, k3sDownloadUrl } from '../src/k3s/release.js';
import { sh } from '../src/shell/quote.js';

const port = 20000 + Math.floor(Math.random() * 12000);
// sshKeyPair: the shared ed25519 generator (src/ssh/keys.ts) with the demo node's field names.
const pair = (c: string) => {
  const k = sshKeyPair(c);
  return { privateKey: k.private, publicKeyLine: k.public };
};
const key = pair('demo-test');
const otherKey = pair('stranger');
const bin = demoK3sBinary();
const SHA = sha256Hex(bin);

function ignition(name: string, address: string, keys = [key.publicKeyLine]): string {
  const net = `[Match]\nMACAddress=bc:24:11:00:00:01\n\n[Network]\nAddress=${address}/24\n`;
  return JSON.stringify({
    ignition: { version: '3.3.0' },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: keys }] },
    storage: {
      files: [
        { path: '/etc/hostname', contents: { source: `data:,${encodeURIComponent(name + '\n')}` } },
        { path: `/etc/systemd/network/00-${name}.network`, contents: { source: `data:,${encodeURIComponent(net)}` } },
      ],
    },
  });
}

describe('demo Flatcar node', () => {
  let guests: DemoGuests;
  let mirrorUrl: string;
  const mirror = createServer((req, res) => {
    if (req.url?.endsWith('/k3s')) res.end(bin);
    else res.writeHead(404).end();
  });
  const sessions: SshSession[] = [];
  const ssh = createSshConnector();
  const connect = async (host: string, privateKey = key.privateKey) => {
    const s = await connectWithRetry(
      ssh,
      { host, port, username: 'core', privateKey, onNewHostKey: () => true, label: host },
      { timeoutMs: 10_000 },
    );
    sessions.push(s);
    return s;
  };
  const boot = (vmid: number, name: string, address: string) =>
    guests.boot({
      node: 'pve1',
      vmid,
      name,
      config: { net0: `virtio=BC:24:11:00:00:${vmid % 100},bridge=vmbr0` },
      userData: ignition(name, address),
    });

  async function install(s: SshSession, role: 'server' | 'agent', config: string) {
    await s.writeFile(STAGED.script, installScriptText(), 0o755);
    await s.writeFile(STAGED.config, config, 0o600);
    return s.exec(
      installCommand({
        role,
        version: DEMO_K3S_VERSION,
        sha256: SHA,
        url: k3sDownloadUrl(mirrorUrl, DEMO_K3S_VERSION, 'amd64'),
        config: STAGED.config,
      }),
    );
  }
  async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  before(async () => {
    guests = createDemoGuests({ speed: 0.002, sshPort: port });
    await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
    mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}/releases`;
  });
  after(async () => {
    for (const s of sessions) await s.close();
    await guests.close();
    await new Promise((r) => mirror.close(r));
  });

  test('boots on its loopback address, reports it through the guest agent, and has its own host key', async () => {
    const a = await boot(801, 'demo-server-1', '127.0.70.11');
    const b = await boot(802, 'demo-server-2', '127.0.70.12');
    const eth0 = a.interfaces.find((i) => i.name === 'eth0')!;
    assert.equal(eth0['ip-addresses']![0]!['ip-address'], '127.0.70.11');
    const s = await connect('127.0.70.11');
    assert.equal(s.hostKeyFingerprint, guests.node('demo-server-1')!.hostKey.fingerprint);
    assert.notEqual(guests.node('demo-server-1')!.hostKey.fingerprint, guests.node('demo-server-2')!.hostKey.fingerprint);
    assert.equal((await s.run('hostname')).trim(), 'demo-server-1');
    assert.ok(b);
  });

  test('refuses a key that is not in the Ignition config', async () => {
    await assert.rejects(connect('127.0.70.11', otherKey.privateKey), (e: Error) => e.name === 'SshAuthError');
  });

  test('unknown commands exit 127 "command not found"; root-only files need sudo', async () => {
    const s = await connect('127.0.70.11');
    const r = await s.exec('apt-get install k3s');
    assert.equal(r.code, 127);
    assert.match(r.stderr, /apt-get: command not found/);
    await s.writeFile('/home/core/x.txt', 'hello', 0o600);
    assert.equal((await s.stat('/home/core/x.txt'))!.mode, 0o600);
    await assert.rejects(s.writeFile('/etc/x.txt', 'nope'), /Permission denied|permission/i);
  });

  test('installs k3s as the first server; kubectl answers with a Ready node; re-running changes nothing', async () => {
    const s = await connect('127.0.70.11');
    const cfg = 'node-name: demo-server-1\ntoken: secret-token\ncluster-init: true\n';
    const r = await install(s, 'server', cfg);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /RESULT installed/);
    assert.ok(!guests.node('demo-server-1')!.fs.has(STAGED.config), 'staged config removed');
    assert.equal((await s.exec(sh`sudo sha256sum /etc/rancher/k3s/config.yaml`)).stdout.split(' ')[0], sha256Hex(cfg));
    assert.equal((await s.exec('cat /etc/rancher/k3s/config.yaml')).code, 1, 'config.yaml is root-only');
    const list = await waitFor(async () => {
      const out = await s.exec('sudo /opt/bin/k3s kubectl get nodes -o json');
      if (out.code !== 0) return undefined;
      const l = JSON.parse(out.stdout) as {
        items: Array<{ metadata: { name: string }; status: { conditions: Array<{ type: string; status: string }> } }>;
      };
      return l.items.every((i) => i.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True')) ? l : undefined;
    });
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      ['demo-server-1'],
    );
    assert.match((await s.run('/opt/bin/k3s --version')).trim(), /v1\.33\.4\+k3s1/);
    assert.match(await s.run('sudo cat /etc/rancher/k3s/k3s.yaml'), /server: https:\/\/127\.0\.0\.1:6443/);
    const again = await install(s, 'server', cfg);
    assert.match(again.stdout, /RESULT unchanged/);
  });

  test('a join with the wrong token fails the way k3s does, and the node never joins', async () => {
    await boot(803, 'demo-agent-1', '127.0.70.21');
    const s = await connect('127.0.70.21');
    const r = await install(s, 'agent', 'node-name: demo-agent-1\ntoken: wrong\nserver: https://127.0.70.11:6443\n');
    assert.equal(r.code, 0);
    const journal = await waitFor(async () => {
      const j = await s.run('journalctl -u k3s-agent -n 5 --no-pager');
      return /failed to validate token: invalid token/.test(j) ? j : undefined;
    });
    assert.match(journal, /level=fatal/);
    assert.notEqual((await s.exec('systemctl is-active k3s-agent')).stdout.trim(), 'active');
  });

  test('two servers joining at once: etcd refuses the second learner', async () => {
    await boot(804, 'demo-server-3', '127.0.70.13');
    const a = await connect('127.0.70.12');
    const b = await connect('127.0.70.13');
    const cfg = (n: string) => `node-name: ${n}\ntoken: secret-token\nserver: https://127.0.70.11:6443\n`;
    await Promise.all([install(a, 'server', cfg('demo-server-2')), install(b, 'server', cfg('demo-server-3'))]);
    const journals = await waitFor(async () => {
      const j = (await a.run('journalctl -u k3s -n 20 --no-pager')) + (await b.run('journalctl -u k3s -n 20 --no-pager'));
      return /too many learner members/.test(j) ? j : undefined;
    });
    assert.match(journals, /too many learner members in cluster/);
  });

  test('a sha256 mismatch is refused', async () => {
    await boot(805, 'demo-agent-2', '127.0.70.22');
    const s = await connect('127.0.70.22');
    await s.writeFile(STAGED.script, installScriptText(), 0o755);
    const r = await s.exec(
      installCommand({
        role: 'agent',
        version: DEMO_K3S_VERSION,
        sha256: 'a'.repeat(64),
        url: k3sDownloadUrl(mirrorUrl, DEMO_K3S_VERSION, 'amd64'),
      }),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sha256 mismatch/);
    assert.equal((await s.exec('/opt/bin/k3s --version')).code, 127);
  });
  test("secure token: a CA hash other than the server's is refused; the server's own hash joins", async () => {
    const server = await connect('127.0.70.11');
    const caHash = (await server.exec('sudo sha256sum /var/lib/rancher/k3s/server/tls/server-ca.crt')).stdout.split(' ')[0]!;
    assert.match(caHash, /^[0-9a-f]{64}$/);
    await boot(806, 'demo-agent-3', '127.0.70.23');
    const s = await connect('127.0.70.23');
    const wrong = caHash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    await install(s, 'agent', `node-name: demo-agent-3\ntoken: K10${wrong}::server:secret-token\nserver: https://127.0.70.11:6443\n`);
    const journal = await waitFor(async () => {
      const j = await s.run('journalctl -u k3s-agent -n 5 --no-pager');
      return /token CA hash does not match/.test(j) ? j : undefined;
    });
    assert.match(journal, /level=fatal/);
    await install(s, 'agent', `node-name: demo-agent-3\ntoken: K10${caHash}::server:secret-token\nserver: https://127.0.70.11:6443\n`);
    const listed = await waitFor(async () => {
      const out = await server.exec('sudo /opt/bin/k3s kubectl get nodes -o json');
      return out.code === 0 && out.stdout.includes('"demo-agent-3"') ? true : undefined;
    });
    assert.ok(listed);
  });
});
