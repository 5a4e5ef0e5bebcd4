/** Pure parts: config.yaml per node, kube-vip manifest, release URLs and channel resolution, kubeconfig rewrite and merge. */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { resolveConfig } from '../src/config/load.js';
import { planNodes } from '../src/config/layout.js';
import { nodeK3sConfig, nodeK3sConfigYaml } from '../src/k3s/config.js';
import { kubeVipManifest } from '../src/k3s/kube-vip.js';
import {
  fetchK3sSha256,
  k3sChecksumsUrl,
  k3sDownloadUrl,
  resolveK3sVersion,
  sha256FromChecksums,
  downloadK3sBinary,
  sha256Hex,
} from '../src/k3s/release.js';
import { mergeIntoUserKubeconfig, rewriteKubeconfig } from '../src/kubeconfig/kubeconfig.js';
import { installCommand } from '../src/k3s/install-script.js';
import { RemoteError, UserError } from '../src/errors.js';

const proxmox = { url: 'https://pve.test:8006', tokenId: 'root@pam!t', tokenSecret: '00000000-0000-0000-0000-000000000000' };
const ha = resolveConfig(
  {
    preset: 'ha',
    proxmox,
    cluster: { name: 'ha', disable: ['traefik', 'servicelb'] },
    nodes: { agents: { labels: { zone: 'a' }, taints: ['dedicated=gpu:NoSchedule'] } },
  },
  { env: {} },
);
const nodes = planNodes(ha);
const token = 'x'.repeat(64);
const cfg = (name: string) =>
  nodeK3sConfig({
    config: ha,
    node: nodes.find((n) => n.name === name)!,
    address: nodes.find((n) => n.name === name)!.address!.split('/')[0]!,
    token,
    firstServerAddress: '192.168.50.11',
  });

describe('config.yaml', () => {
  test('HA servers share cidrs, disable and secrets-encryption; only the first has cluster-init', () => {
    const [a, b, c] = [cfg('ha-server-1'), cfg('ha-server-2'), cfg('ha-server-3')];
    for (const k of ['cluster-cidr', 'service-cidr', 'disable', 'secrets-encryption', 'write-kubeconfig-mode']) {
      assert.deepEqual(a[k], b[k], k);
      assert.deepEqual(b[k], c[k], k);
    }
    assert.deepEqual(a.disable, ['servicelb', 'traefik']);
    assert.equal(a['cluster-init'], true);
    assert.equal(b['cluster-init'], undefined);
    assert.equal(b.server, 'https://192.168.50.10:6443');
    assert.deepEqual(b['tls-san'], ['192.168.50.10', '192.168.50.12', 'ha-server-2']);
    assert.equal(a['write-kubeconfig-mode'], '0600');
  });
  test('agents: server on the VIP, token, labels and taints; no server-only keys', () => {
    const a = cfg('ha-agent-1');
    assert.equal(a.server, 'https://192.168.50.10:6443');
    assert.equal(a.token, token);
    assert.deepEqual(a['node-label'], ['zone=a', 'flatcar-k3s/cluster=ha']);
    assert.deepEqual(a['node-taint'], ['dedicated=gpu:NoSchedule']);
    for (const k of ['cluster-init', 'tls-san', 'cluster-cidr', 'secrets-encryption', 'disable']) assert.equal(a[k], undefined, k);
  });
  test('without a VIP, joins go to the first server; the YAML is deterministic', () => {
    const c = resolveConfig({ preset: 'homelab', proxmox }, { env: {} });
    const agent = planNodes(c).find((n) => n.role === 'agent')!;
    const y1 = nodeK3sConfigYaml({ config: c, node: agent, address: '10.0.0.7', token, firstServerAddress: '10.0.0.5' });
    assert.equal(parse(y1).server, 'https://10.0.0.5:6443');
    assert.equal(y1, nodeK3sConfigYaml({ config: c, node: agent, address: '10.0.0.7', token, firstServerAddress: '10.0.0.5' }));
  });
  test('the token is never on the installer command line', () => {
    const cmd = installCommand({
      role: 'server',
      version: 'v1.33.4+k3s1',
      sha256: 'a'.repeat(64),
      url: 'https://x/k3s',
      config: '/home/core/flatcar-k3s-config.yaml',
    });
    assert.ok(!cmd.includes(token));
    assert.match(cmd, /^sudo sh \/home\/core\/flatcar-k3s-install-k3s\.sh --role server --version v1\.33\.4\+k3s1 /);
  });
});

test('kube-vip manifest: ARP, leader election, the VIP, RBAC', () => {
  const docs = parseAllDocuments(kubeVipManifest({ vip: '192.168.50.10', interface: 'eth0' })).map((d) => d.toJS());
  assert.deepEqual(
    docs.map((d) => d.kind),
    ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet'],
  );
  const env = Object.fromEntries(
    docs[3].spec.template.spec.containers[0].env
      .filter((e: { value?: string }) => e.value !== undefined)
      .map((e: { name: string; value: string }) => [e.name, e.value]),
  );
  assert.equal(env.address, '192.168.50.10');
  assert.equal(env.vip_arp, 'true');
  assert.equal(env.vip_leaderelection, 'true');
  assert.equal(env.vip_interface, 'eth0');
  assert.equal(docs[3].spec.template.spec.hostNetwork, true);
});

describe('k3s releases', () => {
  const sum = 'b'.repeat(64);
  const server = createServer((req, res) => {
    if (req.url === '/channels/stable')
      return res.writeHead(302, { Location: 'https://github.com/k3s-io/k3s/releases/tag/v1.33.4%2Bk3s1' }).end();
    if (req.url === '/channels/broken') return res.writeHead(200).end('no redirect');
    if (req.url === '/rel/download/v1.33.4%2Bk3s1/sha256sum-amd64.txt')
      return res.end(`${'c'.repeat(64)}  k3s-airgap-images-amd64.tar\n${sum}  k3s\n`);
    if (req.url === '/rel/download/v1.33.4%2Bk3s1/k3s') return res.end('binary');
    res.writeHead(404).end();
  });
  let base = '';
  const ready = new Promise<void>((r) =>
    server.listen(0, '127.0.0.1', () => ((base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`), r())),
  );
  const dirs: string[] = [];
  after(() => {
    server.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('URLs encode "+" as %2B', () => {
    assert.equal(
      k3sDownloadUrl('https://github.com/k3s-io/k3s/releases/', 'v1.33.4+k3s1', 'amd64'),
      'https://github.com/k3s-io/k3s/releases/download/v1.33.4%2Bk3s1/k3s',
    );
    assert.equal(k3sDownloadUrl('https://x', 'v1.33.4+k3s1', 'arm64'), 'https://x/download/v1.33.4%2Bk3s1/k3s-arm64');
    assert.equal(k3sChecksumsUrl('https://x', 'v1.33.4+k3s1', 'arm64'), 'https://x/download/v1.33.4%2Bk3s1/sha256sum-arm64.txt');
  });
  test('a channel resolves to the last path segment of its redirect; no redirect is an error', async () => {
    await ready;
    assert.equal(await resolveK3sVersion(`${base}/channels`, 'stable'), 'v1.33.4+k3s1');
    await assert.rejects(
      resolveK3sVersion(`${base}/channels`, 'broken'),
      (e: Error) => e instanceof RemoteError && /did not redirect/.test(e.message),
    );
  });
  test('the sha256 of the binary is read from the release checksums', async () => {
    await ready;
    assert.equal(await fetchK3sSha256(`${base}/rel`, 'v1.33.4+k3s1', 'amd64'), sum);
    assert.equal(sha256FromChecksums(`${sum}  k3s-arm64\n`, 'k3s'), undefined);
    await assert.rejects(fetchK3sSha256(`${base}/rel`, 'v9.9.9+k3s1', 'amd64'), /HTTP 404/);
  });
  test('air-gap download: verified, kept; a mismatch is refused and nothing is written', async () => {
    await ready;
    const dir = mkdtempSync(join(tmpdir(), 'k3s-dl-'));
    dirs.push(dir);
    await assert.rejects(
      downloadK3sBinary(`${base}/rel/download/v1.33.4%2Bk3s1/k3s`, sum, join(dir, 'k3s')),
      (e: Error) => e instanceof UserError && /does not match its published sha256/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir), []);
    await downloadK3sBinary(`${base}/rel/download/v1.33.4%2Bk3s1/k3s`, sha256Hex('binary'), join(dir, 'k3s'));
    assert.equal(readFileSync(join(dir, 'k3s'), 'utf8'), 'binary');
  });
});

describe('kubeconfig', () => {
  const k3sYaml = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`;
  const home = mkdtempSync(join(tmpdir(), 'kube-home-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  test('rewritten to the VIP and renamed to the cluster', () => {
    const doc = parse(rewriteKubeconfig(k3sYaml, { server: 'https://192.168.50.10:6443', name: 'ha' }));
    assert.equal(doc.clusters[0].cluster.server, 'https://192.168.50.10:6443');
    assert.equal(doc.clusters[0].cluster['certificate-authority-data'], 'Q0E=');
    assert.deepEqual(doc.contexts[0], { name: 'ha', context: { cluster: 'ha', user: 'ha' } });
    assert.equal(doc.users[0].name, 'ha');
    assert.equal(doc.users[0].user['client-key-data'], 'S0VZ');
    assert.equal(doc['current-context'], 'ha');
  });

  test('merged into ~/.kube/config: created 0600; existing entries kept; backup first; same content = no write', async () => {
    const ours = rewriteKubeconfig(k3sYaml, { server: 'https://192.168.50.10:6443', name: 'ha' });
    const first = await mergeIntoUserKubeconfig(home, ours, new Date('2026-01-02T03:04:05Z'));
    assert.equal(first.changed, true);
    assert.equal(first.backup, undefined);
    const path = join(home, '.kube', 'config');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    // someone adds another cluster; then ours changes (new server)
    const doc = parse(readFileSync(path, 'utf8'));
    doc.clusters.push({ name: 'other', cluster: { server: 'https://1.2.3.4:6443' } });
    writeFileSync(path, JSON.stringify(doc));
    const before = readFileSync(path, 'utf8');
    const ours2 = rewriteKubeconfig(k3sYaml, { server: 'https://192.168.50.20:6443', name: 'ha' });
    const second = await mergeIntoUserKubeconfig(home, ours2, new Date('2026-01-02T03:04:06Z'));
    assert.equal(second.changed, true);
    assert.ok(second.backup?.endsWith('config.bak-2026-01-02T03-04-06-000Z'));
    assert.equal(readFileSync(second.backup!, 'utf8'), before);
    const merged = parse(readFileSync(path, 'utf8'));
    assert.deepEqual(
      merged.clusters.map((c: { name: string }) => c.name),
      ['ha', 'other'],
    );
    assert.equal(merged.clusters[0].cluster.server, 'https://192.168.50.20:6443');
    const third = await mergeIntoUserKubeconfig(home, ours2);
    assert.equal(third.changed, false);
  });

  test('an unreadable ~/.kube/config is left alone with a clear error', async () => {
    const h2 = join(home, 'h2');
    mkdirSync(join(h2, '.kube'), { recursive: true });
    writeFileSync(join(h2, '.kube', 'config'), '- just\n- a list\n');
    await assert.rejects(
      mergeIntoUserKubeconfig(h2, rewriteKubeconfig(k3sYaml, { server: 'https://x:6443', name: 'ha' })),
      (e: Error) => e instanceof UserError && /left alone/.test(e.message),
    );
    assert.equal(readFileSync(join(h2, '.kube', 'config'), 'utf8'), '- just\n- a list\n');
  });
});
