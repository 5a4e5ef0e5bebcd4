/** homelab preset from nothing to a kubeconfig on the simulator with demo Flatcar nodes, through the runner. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import { readdirSync } from 'node:fs';
import { ignitionValidate } from './helpers/ignition.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

test('homelab: up from nothing gives a working kubeconfig; a second up changes nothing', async () => {
  env = await startE2e({ preset: 'homelab' });
  const r = await env.up();
  const errors = env.events.filter((e) => e.type === 'step' && e.status === 'failed');
  assert.equal(r.status, 'succeeded', JSON.stringify(errors, null, 2) + JSON.stringify(r.blocked));
  const kc = join(env.stateDir, 'clusters', 'homelab', 'kubeconfig');
  assert.ok(existsSync(kc));
  assert.equal(statSync(kc).mode & 0o777, 0o600);
  const doc = parse(readFileSync(kc, 'utf8'));
  assert.equal(doc['current-context'], 'homelab');
  assert.match(doc.clusters[0].cluster.server, /^https:\/\/127\.0\.\d+\.\d+:6443$/);
  const logs = env.events.filter((e) => e.type === 'log').map((e) => (e as { line: string }).line);
  assert.ok(logs.some((l) => l === `Try it: kubectl --kubeconfig ${kc} get nodes`));

  // Each node booted from its own snippet (cicustom), valid for ignition-validate, with its hostname and our key.
  const dir = join(env.sim.storageRoot, 'snippets');
  for (const n of ['homelab-server-1', 'homelab-agent-1', 'homelab-agent-2']) {
    const file = readdirSync(dir).find((f) => f.startsWith(`flatcar-k3s-homelab-${n}-`) && f.endsWith('.ign'));
    assert.ok(file, `snippet of ${n}`);
    const json = readFileSync(join(dir, file!), 'utf8');
    const v = await ignitionValidate(json);
    assert.ok(v.ok, v.messages.join('\n'));
    const vm: { config: Record<string, string | number> } = [...env.sim.state.vms.values()].find((x) => x.config.name === n)!;
    assert.equal(vm.config.cicustom, `user=local:snippets/${file}`);
    assert.match(String(vm.config.tags), /flatcar-k3s/);
    assert.match(JSON.parse(json).passwd.users[0].sshAuthorizedKeys[0], /^ssh-ed25519 /);
  }

  const mark = env.sim.requests().length;
  const again = await env.up();
  assert.equal(again.status, 'succeeded');
  assert.deepEqual(env.changingSince(mark), []);
});

test('homelab grown by an agent: up again adds just that node', async () => {
  const e = await startE2e({ preset: 'homelab', config: { cluster: { k3sVersion: 'stable' } } });
  try {
    assert.equal((await e.up()).status, 'succeeded');
    const rel = e.events.find((x) => x.type === 'log' && /k3s channel "stable" is v1\.33\.4\+k3s1/.test(x.line));
    assert.ok(rel, 'the stable channel was resolved through the redirect');
    const mark = e.sim.requests().length;
    const { resolveConfig, deepMerge } = await import('../src/config/load.js');
    const grown = resolveConfig(deepMerge(e.raw, { nodes: { agents: { count: 3 } } }) as Record<string, unknown>, { env: {} });
    const r = await e.up({ config: grown });
    assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));
    const changing = e.changingSince(mark);
    assert.ok(changing.length > 0);
    const vmPaths = changing.filter((c) => /\/qemu\/\d+/.test(c));
    const clones = changing.filter((c) => c.endsWith('/clone'));
    assert.equal(clones.length, 1, changing.join('\n'));
    const newVmid = e.sim
      .requests()
      .slice(mark)
      .find((q) => q.path.endsWith('/clone'))!.params.newid;
    // every other VM-level change is on the new VM (config, resize, start)
    assert.ok(
      vmPaths.filter((p) => !p.endsWith('/clone')).every((p) => p.includes(`/qemu/${newVmid}/`)),
      vmPaths.join('\n'),
    );
    assert.equal(e.guests.node('homelab-server-1')!.cluster!.nodes.size, 4);
    // the pinned version did not move
    assert.ok(e.guests.node('homelab-agent-3')!.readText('/etc/rancher/k3s/config.yaml'));
  } finally {
    await e.close();
  }
});

test('air-gapped homelab: k3s downloaded once here, verified, uploaded to each node', async () => {
  const e = await startE2e({ preset: 'homelab', config: { cluster: { airgap: true } } });
  try {
    const r = await e.up();
    assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));
    const uploaded = e.events.flatMap((x) => (x.type === 'log' && /installing the uploaded k3s/.test(x.line) ? [x.group] : [])).sort();
    assert.deepEqual(uploaded, ['homelab-agent-1', 'homelab-agent-2', 'homelab-server-1']);
    assert.ok(!e.events.some((x) => x.type === 'log' && /downloading k3s/.test(x.line)), 'no node downloaded k3s');
    assert.ok(e.events.some((x) => x.type === 'log' && x.group === 'k3s' && /Downloaded and verified/.test(x.line)));
  } finally {
    await e.close();
  }
});
