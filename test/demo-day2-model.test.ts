/**
 * The demo k3s model's day-2 side (src/demo/kube-api.ts, k3s-model.ts), through the real SSH connector:
 * a node reports the k3s version it runs (the old one until k3s restarts), cordon/drain/delete of Node
 * objects, and etcd member removal by k3s's annotation. The demo mirror serves two releases.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDemoGuests, sshKeyPair, type DemoGuests } from '../src/demo/flatcar-node.js';
import { createSshConnector, connectWithRetry } from '../src/ssh/client.js';
import type { SshSession } from '../src/ssh/types.js';
import { installCommand, installScriptText, STAGED } from '../src/k3s/install-script.js';
import { demoK3sBinary, fillK3sMirror, DEMO_K3S_LATEST, DEMO_K3S_VERSION } from '../src/k3s/demo-mirror.js';
import { sha256Hex, k3sDownloadUrl, resolveK3sVersion, fetchK3sSha256 } from '../src/k3s/release.js';
import { startMirror, type Mirror } from '../src/sim/mirror.js';

const port = 20000 + Math.floor(Math.random() * 12000);
const kp = sshKeyPair('day2-test');
const key = { privateKey: kp.private, publicKeyLine: kp.public };

function ignition(name: string, address: string): string {
  const net = `[Match]\nMACAddress=bc:24:11:00:00:01\n\n[Network]\nAddress=${address}/24\n`;
  return JSON.stringify({
    ignition: { version: '3.3.0' },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: [key.publicKeyLine] }] },
    storage: {
      files: [
        { path: '/etc/hostname', contents: { source: `data:,${encodeURIComponent(name + '\n')}` } },
        { path: `/etc/systemd/network/00-${name}.network`, contents: { source: `data:,${encodeURIComponent(net)}` } },
      ],
    },
  });
}

interface NodeItem {
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status: { conditions: Array<{ type: string; status: string }>; nodeInfo: { kubeletVersion: string } };
}

describe('demo k3s model: versions, cordon/drain/delete, etcd removal', () => {
  let guests: DemoGuests;
  let mirror: Mirror;
  let releaseUrl: string;
  const sessions = new Map<string, SshSession>();
  const ssh = createSshConnector();
  const addr = (name: string) => `127.0.71.${10 + Number(name.split('-').pop()) + (name.includes('agent') ? 10 : 0)}`;
  const connect = async (name: string) => {
    let s = sessions.get(name);
    if (s) return s;
    s = await connectWithRetry(
      ssh,
      { host: addr(name), port, username: 'core', privateKey: key.privateKey, onNewHostKey: () => true, label: name },
      { timeoutMs: 10_000 },
    );
    sessions.set(name, s);
    return s;
  };
  const install = async (name: string, role: 'server' | 'agent', version: string, opts: { config?: string; binaryOnly?: boolean }) => {
    const s = await connect(name);
    await s.writeFile(STAGED.script, installScriptText(), 0o755);
    if (opts.config) await s.writeFile(STAGED.config, opts.config, 0o600);
    const sha256 = sha256Hex(demoK3sBinary(version));
    const url = k3sDownloadUrl(releaseUrl, version, 'amd64');
    const cmd = opts.binaryOnly
      ? installCommand({ binaryOnly: true, version, sha256, url })
      : installCommand({ role, version, sha256, url, ...(opts.config ? { config: STAGED.config } : {}) });
    const r = await s.exec(cmd);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const nodes = async (via = 'demo-server-1'): Promise<NodeItem[] | undefined> => {
    const r = await (await connect(via)).exec('sudo /opt/bin/k3s kubectl get nodes -o json');
    return r.code === 0 ? (JSON.parse(r.stdout) as { items: NodeItem[] }).items : undefined;
  };
  const ready = (i: NodeItem) => i.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
  async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const kubectl = async (args: string, via = 'demo-server-1') => (await connect(via)).exec(`sudo /opt/bin/k3s kubectl ${args}`);
  const cluster = () => guests.node('demo-server-1')!.cluster!;

  before(async () => {
    guests = createDemoGuests({ speed: 0.002, sshPort: port, bootSeconds: 0 });
    mirror = await startMirror();
    releaseUrl = fillK3sMirror(mirror).cluster.k3sReleaseUrl;
    const boot = (vmid: number, name: string) =>
      guests.boot({
        node: 'pve1',
        vmid,
        name,
        config: { net0: `virtio=BC:24:11:00:01:${vmid % 100},bridge=vmbr0` },
        userData: ignition(name, addr(name)),
      });
    await Promise.all([boot(901, 'demo-server-1'), boot(902, 'demo-server-2'), boot(903, 'demo-server-3'), boot(911, 'demo-agent-1')]);
    const token = 'token: day2-token\n';
    await install('demo-server-1', 'server', DEMO_K3S_VERSION, { config: `node-name: demo-server-1\n${token}cluster-init: true\n` });
    await waitFor(async () => ((await nodes())?.every(ready) ? true : undefined));
    for (const n of ['demo-server-2', 'demo-server-3']) {
      await install(n, 'server', DEMO_K3S_VERSION, { config: `node-name: ${n}\n${token}server: https://${addr('demo-server-1')}:6443\n` });
      await waitFor(async () => ((await nodes())?.find((i) => i.metadata.name === n && ready(i)) ? true : undefined));
    }
    await install('demo-agent-1', 'agent', DEMO_K3S_VERSION, {
      config: `node-name: demo-agent-1\n${token}server: https://${addr('demo-server-1')}:6443\n`,
    });
    await waitFor(async () => ((await nodes())?.length === 4 && (await nodes())!.every(ready) ? true : undefined));
  });
  after(async () => {
    for (const s of sessions.values()) await s.close();
    await guests.close();
    await mirror.close();
  });

  test('the demo mirror serves two k3s releases: stable and a newer latest', async () => {
    const channels = `${mirror.url}/k3s-channels`;
    assert.equal(await resolveK3sVersion(channels, 'stable'), DEMO_K3S_VERSION);
    assert.equal(await resolveK3sVersion(channels, 'latest'), DEMO_K3S_LATEST);
    assert.notEqual(DEMO_K3S_VERSION, DEMO_K3S_LATEST);
    assert.equal(await fetchK3sSha256(releaseUrl, DEMO_K3S_LATEST, 'amd64'), sha256Hex(demoK3sBinary(DEMO_K3S_LATEST)));
  });

  test('etcd has the three servers as members and quorum', () => {
    assert.deepEqual([...cluster().members].sort(), ['demo-server-1', 'demo-server-2', 'demo-server-3']);
    assert.ok(cluster().etcdHealthy());
  });

  test('a new binary in place: k3s --version says new, kubeletVersion keeps the running one until k3s restarts', async () => {
    const out = await install('demo-agent-1', 'agent', DEMO_K3S_LATEST, { binaryOnly: true });
    assert.match(out, /RESULT binary/);
    const s = await connect('demo-agent-1');
    assert.match(await s.run('/opt/bin/k3s --version'), new RegExp(DEMO_K3S_LATEST.replace(/[.+]/g, '\\$&')));
    const before = (await nodes())!.find((i) => i.metadata.name === 'demo-agent-1')!;
    assert.equal(before.status.nodeInfo.kubeletVersion, DEMO_K3S_VERSION);
    assert.equal((await s.exec('sudo systemctl restart k3s-agent')).code, 0);
    const after = await waitFor(async () => {
      const i = (await nodes())?.find((x) => x.metadata.name === 'demo-agent-1');
      return i && ready(i) ? i : undefined;
    });
    assert.equal(after.status.nodeInfo.kubeletVersion, DEMO_K3S_LATEST);
    assert.equal((await nodes())!.find((i) => i.metadata.name === 'demo-server-1')!.status.nodeInfo.kubeletVersion, DEMO_K3S_VERSION);
  });

  test('restarting a server keeps etcd healthy when the others run; its Node stays cordoned across the restart', async () => {
    assert.equal((await kubectl('cordon demo-server-2')).code, 0);
    const gen = guests.node('demo-server-2')!.units.get('k3s')!.generation;
    assert.equal((await (await connect('demo-server-2')).exec('sudo systemctl restart k3s')).code, 0);
    assert.equal(guests.node('demo-server-2')!.units.get('k3s')!.generation, gen + 1, 'k3s started again');
    assert.ok(cluster().etcdHealthy(), 'two of three members up');
    const back = await waitFor(async () => {
      const i = (await nodes())?.find((x) => x.metadata.name === 'demo-server-2');
      return i && ready(i) ? i : undefined;
    });
    assert.equal(back.spec?.unschedulable, true);
    assert.match((await kubectl('uncordon demo-server-2')).stdout, /node\/demo-server-2 uncordoned/);
    assert.equal((await nodes())!.find((i) => i.metadata.name === 'demo-server-2')!.spec?.unschedulable, undefined);
  });

  test('drain refuses without --ignore-daemonsets, cordons and drains with the usual flags', async () => {
    const refused = await kubectl('drain demo-agent-1 --timeout=60s');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /use --ignore-daemonsets/);
    const r = await kubectl('drain demo-agent-1 --ignore-daemonsets --delete-emptydir-data --timeout=60s');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node\/demo-agent-1 drained/);
    assert.equal((await nodes())!.find((i) => i.metadata.name === 'demo-agent-1')!.spec?.unschedulable, true);
  });

  test('delete node removes the Node object; a missing one is NotFound', async () => {
    assert.match((await kubectl('delete node demo-agent-1')).stdout, /node "demo-agent-1" deleted/);
    assert.deepEqual((await nodes())!.map((i) => i.metadata.name).sort(), ['demo-server-1', 'demo-server-2', 'demo-server-3']);
    const again = await kubectl('delete node demo-agent-1');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /NotFound/);
  });

  test('the etcd removal annotation takes a server out of etcd; k3s marks the Node; quorum holds with two', async () => {
    assert.equal((await kubectl('annotate node demo-server-3 etcd.k3s.cattle.io/remove=true --overwrite')).code, 0);
    const marked = await waitFor(async () => {
      const i = (await nodes())?.find((x) => x.metadata.name === 'demo-server-3');
      return i?.metadata.annotations?.['etcd.k3s.cattle.io/removed-node-name'] ? i : undefined;
    });
    assert.equal(marked.metadata.annotations!['etcd.k3s.cattle.io/removed-node-name'], 'demo-server-3');
    assert.deepEqual([...cluster().members].sort(), ['demo-server-1', 'demo-server-2']);
    assert.ok(cluster().etcdHealthy());
    assert.equal((await kubectl('delete node demo-server-3')).code, 0);
    assert.equal(cluster().nodes.has('demo-server-3'), false);
  });
});
