/**
 * ha preset end to end (3 servers with embedded etcd behind a kube-vip VIP, 3 agents) on the simulator:
 * VIP everywhere (tls-san, joins, kubeconfig), serialized server joins, the token kept out of logs and
 * state, ~/.kube/config merged with a backup; and on a 3-host PVE cluster with shared storage the
 * servers land on different hosts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import type { RunEvent } from '../src/events.js';

const envs: E2eEnv[] = [];
after(async () => {
  for (const e of envs) await e.close();
});

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    if (f.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

test('ha: from nothing to a kubeconfig on the VIP, joins one at a time, token never in clear outside the secrets file', async () => {
  const env = await startE2e({ preset: 'ha' });
  envs.push(env);
  // An existing ~/.kube/config with another cluster: kept, backed up, ours merged in.
  mkdirSync(join(env.homeDir, '.kube'), { recursive: true });
  const other =
    'apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://10.9.9.9:6443\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user:\n    token: abc\ncurrent-context: other\n';
  writeFileSync(join(env.homeDir, '.kube', 'config'), other, { mode: 0o600 });

  const r = await env.up();
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));

  // kubeconfig: the VIP, renamed, 0600
  const kc = join(env.stateDir, 'clusters', 'ha', 'kubeconfig');
  const doc = parse(readFileSync(kc, 'utf8'));
  assert.equal(doc.clusters[0].cluster.server, 'https://127.0.50.10:6443');
  assert.equal(doc.clusters[0].name, 'ha');
  assert.equal(doc.users[0].name, 'ha');
  assert.equal(statSync(kc).mode & 0o777, 0o600);
  // merged: both clusters, ours current, a backup of the old file
  const merged = parse(readFileSync(join(env.homeDir, '.kube', 'config'), 'utf8'));
  assert.deepEqual(merged.contexts.map((c: { name: string }) => c.name).sort(), ['ha', 'other']);
  assert.equal(merged['current-context'], 'ha');
  const backups = readdirSync(join(env.homeDir, '.kube')).filter((f) => f.startsWith('config.bak-'));
  assert.equal(backups.length, 1);
  assert.equal(readFileSync(join(env.homeDir, '.kube', backups[0]!), 'utf8'), other);

  // every node is in the one demo cluster and Ready; the first server did cluster-init, others joined the VIP
  const s1 = env.guests.node('ha-server-1')!;
  const cluster = s1.cluster!;
  assert.deepEqual([...cluster.nodes.keys()].sort(), [
    'ha-agent-1',
    'ha-agent-2',
    'ha-agent-3',
    'ha-server-1',
    'ha-server-2',
    'ha-server-3',
  ]);
  const cfg1 = parse(s1.readText('/etc/rancher/k3s/config.yaml')!);
  assert.equal(cfg1['cluster-init'], true);
  assert.ok(cfg1['tls-san'].includes('127.0.50.10'));
  assert.equal(s1.fs.get('/etc/rancher/k3s/config.yaml')!.mode, 0o600);
  for (const n of ['ha-server-2', 'ha-server-3', 'ha-agent-1']) {
    const c = parse(env.guests.node(n)!.readText('/etc/rancher/k3s/config.yaml')!);
    assert.equal(c.server, 'https://127.0.50.10:6443', n);
    assert.equal(c['cluster-init'], undefined);
  }
  for (const n of ['ha-server-1', 'ha-server-2', 'ha-server-3'])
    assert.ok(env.guests.node(n)!.fs.has('/var/lib/rancher/k3s/server/manifests/flatcar-k3s-kube-vip.yaml'), n);
  assert.ok(!env.guests.node('ha-agent-1')!.fs.has('/var/lib/rancher/k3s/server/manifests/flatcar-k3s-kube-vip.yaml'));
  assert.equal(env.guests.node('ha-agent-2')!.fs.get('/opt/bin/k3s')!.mode, 0o755);

  // server joins never overlap (a slot of the k3s-server-join lane, from starting k3s to Ready): one
  // server starts k3s only once the other joining server's step is done (it ends when the node is Ready)
  const at = (id: string, f: (e: RunEvent) => boolean) => {
    const e = env.events.find((x) => 'id' in x && x.id === id && f(x));
    return e && 'at' in e ? e.at : undefined;
  };
  const starting = (n: string) => at(`node:${n}:k3s`, (e) => e.type === 'progress' && /^starting k3s/.test(e.message));
  const done = (n: string) => at(`node:${n}:k3s`, (e) => e.type === 'step' && e.status === 'done');
  const [s2start, s3start, s2done, s3done] = [starting('ha-server-2'), starting('ha-server-3'), done('ha-server-2'), done('ha-server-3')];
  assert.ok(s2start && s3start && s2done && s3done);
  assert.ok(s3start >= s2done || s2start >= s3done, 'server joins overlapped');
  // the joins came after the first server was up
  assert.ok(Math.min(s2start, s3start) >= done('ha-server-1')!);

  // the token: in the 0600 secrets file only
  const secrets = JSON.parse(readFileSync(join(env.stateDir, 'clusters', 'ha', 'secrets.json'), 'utf8'));
  const token = secrets.k3sToken as string;
  assert.match(token, /^[0-9a-f]{64}$/);
  for (const f of filesUnder(env.stateDir)) {
    if (f.endsWith('secrets.json') || f.includes(`${join('demo', '')}`)) continue;
    assert.ok(!readFileSync(f, 'utf8').includes(token), `token in clear in ${f}`);
  }
  const logText = env.events.map((e) => JSON.stringify(e)).join('\n');
  assert.ok(!logText.includes(token), 'token in the event stream');

  // each node's SSH output streamed as log events grouped under the node
  assert.ok(env.events.some((e) => e.type === 'log' && e.group === 'ha-agent-3' && /flatcar-k3s: (downloading|installed)/.test(e.line)));
  // the first server waited for the VIP before anyone joined it
  assert.ok(
    env.events.some((e) => e.type === 'log' && e.group === 'ha-server-1' && e.line === 'The control-plane VIP 127.0.50.10 answers'),
  );
  // where each VM went, in the log and the outputs
  assert.ok(env.events.some((e) => e.type === 'log' && e.line === 'ha-server-2 → pve1'));

  // second run: nothing changes on Proxmox
  const mark = env.sim.requests().length;
  const again = await env.up();
  assert.equal(again.status, 'succeeded');
  assert.deepEqual(env.changingSince(mark), []);
});

test('ha on 3 PVE hosts with shared storage: servers on different hosts, agents balanced', async () => {
  const env = await startE2e({ preset: 'ha', pveNodes: 3, sharedStorage: true });
  envs.push(env);
  const r = await env.up();
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));
  const hostOf = (name: string) => [...env.sim.state.vms.values()].find((v) => v.config.name === name)!.node;
  const servers = ['ha-server-1', 'ha-server-2', 'ha-server-3'].map(hostOf);
  assert.equal(new Set(servers).size, 3, `servers on ${servers.join(', ')}`);
  const agents = ['ha-agent-1', 'ha-agent-2', 'ha-agent-3'].map(hostOf);
  assert.equal(new Set(agents).size, 3, `agents on ${agents.join(', ')}`);
  // clones to other hosts went through the template host with target=
  const clones = env.sim.requests().filter((q) => q.method === 'POST' && q.path.endsWith('/clone'));
  assert.ok(clones.some((q) => q.params.target && q.params.target !== 'pve1'));
  assert.ok(clones.every((q) => q.path.startsWith('/nodes/pve1/')));
  // the clone steps read their own VM where it belongs; the cluster listing (which grows with every
  // guest) is fetched about once per run, not once per node and step
  const reqs = env.sim.requests();
  const firstClone = reqs.findIndex((q) => q.method === 'POST' && q.path.endsWith('/clone'));
  const listings = reqs.slice(firstClone).filter((q) => q.method === 'GET' && q.path === '/cluster/resources').length;
  assert.ok(listings <= 1, `${listings} GET /cluster/resources from the first clone on (6 nodes)`);
});
