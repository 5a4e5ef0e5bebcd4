/**
 * `destroy --demo` through the real CLI against the persisted demo world of `up --demo`: every VM of
 * the cluster and its snippets go (the template too, or not with --keep-template), the Flatcar image
 * stays, kubeconfig entries leave ~/.kube/config with a backup, the secrets go and the run log stays;
 * a second destroy does nothing; a SIGKILLed destroy resumes; without --yes and a TTY it refuses;
 * `up` after `destroy` builds the cluster again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readState } from '../src/runner/state.js';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { runCliProcess, spawnCli, tempDir, waitFor, writeConfig, type CliResult } from './helpers/cli.js';

const cleanups: Array<() => void> = [];
after(() => cleanups.forEach((c) => c()));

const demoEnv = (home: string, speed = '0.02') => ({ FLATCAR_K3S_DEMO_SPEED: speed, HOME: home });

function setup(): { dir: string; stateDir: string } {
  const t = tempDir('destroy-cli-');
  cleanups.push(t.cleanup);
  return { dir: t.dir, stateDir: join(t.dir, 'state') };
}

const world = (stateDir: string) =>
  JSON.parse(readFileSync(join(stateDir, 'demo', 'sim.json'), 'utf8')) as {
    vms: Array<{ vmid: number; config: Record<string, string | number> }>;
    volumes: Array<{ volid: string }>;
  };
const vmids = (stateDir: string) =>
  world(stateDir)
    .vms.map((v) => v.vmid)
    .sort((a, b) => a - b);
const snippets = (stateDir: string) => readdirSync(join(stateDir, 'demo', 'pve', 'pve1', 'snippets')).sort();
const clusterDir = (stateDir: string) => join(stateDir, 'clusters', 'homelab');

function ok(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /run succeeded/, what);
}

/** Step transition lines: "HH:MM:SS <status> <step id> <title>…". */
const transitions = (stdout: string) =>
  stdout
    .split('\n')
    .map((line) => ({ line, m: /^\d\d:\d\d:\d\d (running|done|skipped|failed|pending)\s+(\S+)\s/.exec(line) }))
    .filter((x) => x.m)
    .map((x) => ({ status: x.m![1]!, id: x.m![2]!, line: x.line }));

async function up(dir: string, stateDir: string): Promise<number[]> {
  const r = await runCliProcess(['up', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir) });
  ok(r, 'up');
  const ids = vmids(stateDir);
  assert.equal(ids.length, 4, `template + 3 nodes after up: ${ids.join(',')}`);
  return ids;
}

describe('destroy --demo', { timeout: 300_000 }, () => {
  it('deletes the VMs, snippets and template, removes the kubeconfig entries with a backup, forgets the secrets; again it is a no-op; up builds the cluster again', async () => {
    const { dir, stateDir } = setup();
    const ids = await up(dir, stateDir);
    const state = readState(clusterDir(stateDir))!;
    const server = state.steps['cluster:kubeconfig']!.outputs!.server as string;
    assert.ok(existsSync(join(clusterDir(stateDir), 'secrets.json')));
    assert.equal(snippets(stateDir).length, 4);
    // The user's kubeconfig: our cluster (as `up` merges it on a real host) next to somebody else's.
    const kube = join(dir, '.kube', 'config');
    mkdirSync(join(dir, '.kube'), { recursive: true });
    const other = { name: 'work', cluster: { server: 'https://10.9.9.9:6443' } };
    writeFileSync(
      kube,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [other, { name: 'homelab', cluster: { server } }],
        contexts: [
          { name: 'work', context: { cluster: 'work', user: 'work' } },
          { name: 'homelab', context: { cluster: 'homelab', user: 'homelab' } },
        ],
        users: [
          { name: 'work', user: { token: 'w' } },
          { name: 'homelab', user: { token: 'h' } },
        ],
        'current-context': 'homelab',
      }),
      { mode: 0o600 },
    );
    const before = readFileSync(kube, 'utf8');
    // Pulumi state of the apps (written by `up` where the Pulumi CLI is installed)
    mkdirSync(join(clusterDir(stateDir), 'pulumi', 'backend'), { recursive: true });
    writeFileSync(join(clusterDir(stateDir), 'pulumi', 'backend', 'stack.json'), '{}');

    const r = await runCliProcess(['destroy', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir) });
    ok(r, 'destroy');
    // The plan named what goes: every VMID, the PVE node, the snippets and the template; and what stays.
    for (const id of ids) assert.match(r.stdout, new RegExp(`VM(ID)? ${id}\\b`));
    assert.match(r.stdout, /on pve1/);
    assert.match(r.stdout, /Kept: the downloaded Flatcar image local:import\/\S+\.qcow2/);
    assert.deepEqual(vmids(stateDir), [], 'no VM left');
    assert.deepEqual(snippets(stateDir), [], 'no snippet left');
    assert.ok(!world(stateDir).volumes.some((v) => /vm-900\d|base-900\d/.test(v.volid)), 'the disks went with the VMs');
    assert.equal(
      readdirSync(join(stateDir, 'demo', 'pve', 'pve1', 'import')).filter((f) => f.endsWith('.qcow2')).length,
      1,
      'the Flatcar image stays',
    );
    // kubeconfig: ours removed, the other kept, a backup of the old file
    const after1 = parse(readFileSync(kube, 'utf8')) as {
      clusters: Array<{ name: string }>;
      contexts: Array<{ name: string }>;
      users: Array<{ name: string }>;
      'current-context'?: string;
    };
    assert.deepEqual(
      after1.clusters.map((c) => c.name),
      ['work'],
    );
    assert.deepEqual(
      after1.contexts.map((c) => c.name),
      ['work'],
    );
    assert.deepEqual(
      after1.users.map((c) => c.name),
      ['work'],
    );
    assert.notEqual(after1['current-context'], 'homelab');
    const backups = readdirSync(join(dir, '.kube')).filter((f) => f.startsWith('config.bak-'));
    assert.equal(backups.length, 1);
    assert.equal(readFileSync(join(dir, '.kube', backups[0]!), 'utf8'), before);
    // local: secrets and the cluster's kubeconfig gone, the run log kept, no records of the cluster's steps
    assert.ok(!existsSync(join(clusterDir(stateDir), 'secrets.json')));
    assert.ok(!existsSync(join(clusterDir(stateDir), 'kubeconfig')));
    assert.ok(!existsSync(join(clusterDir(stateDir), 'pulumi')), "the apps' Pulumi state went with the cluster");
    assert.match(readFileSync(join(clusterDir(stateDir), 'run.log'), 'utf8'), /destroy/);
    const after2 = readState(clusterDir(stateDir))!;
    assert.deepEqual(
      Object.keys(after2.steps).filter((id) => !id.startsWith('destroy:') && id !== 'proxmox:connect'),
      [],
    );
    assert.deepEqual(
      Object.keys(after2.pins).filter((k) => k.startsWith('node-ssh:')),
      [],
    );

    // again: every step finds its part gone
    const again = await runCliProcess(['destroy', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir) });
    ok(again, 'second destroy');
    const steps = transitions(again.stdout);
    assert.ok(steps.length >= 7, again.stdout);
    assert.deepEqual(
      steps.filter((s) => s.status !== 'done' || !/already done/.test(s.line)).map((s) => s.line),
      [],
    );
    assert.equal(readdirSync(join(dir, '.kube')).filter((f) => f.startsWith('config.bak-')).length, 1, 'no new backup');

    // up after destroy builds the cluster again
    assert.deepEqual(await up(dir, stateDir), ids);
    assert.ok(existsSync(join(clusterDir(stateDir), 'secrets.json')));
  });

  it('--keep-template keeps the template and its snippet', async () => {
    const { dir, stateDir } = setup();
    const ids = await up(dir, stateDir);
    const template = world(stateDir).vms.find((v) => v.config.template === 1)!.vmid;
    const r = await runCliProcess(['destroy', '--demo', '--yes', '--keep-template', '--state-dir', stateDir], {
      cwd: dir,
      env: demoEnv(dir),
    });
    ok(r, 'destroy --keep-template');
    assert.match(r.stdout, /Kept: .*the template flatcar-\S+ \(VMID \d+\) and its snippet \(--keep-template\)/);
    assert.doesNotMatch(r.stdout, /destroy:template/);
    assert.deepEqual(vmids(stateDir), [template]);
    assert.ok(ids.includes(template));
    assert.deepEqual(
      snippets(stateDir).map((f) => f.replace(/-[0-9a-f]{12}\.ign$/, '')),
      ['flatcar-k3s-homelab-template'],
    );
    // the next up reuses the kept template
    const again = await runCliProcess(['up', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir) });
    ok(again, 'up after destroy --keep-template');
    assert.match(again.stdout, /done\s+template:vm\s.*already done/);
    assert.deepEqual(vmids(stateDir), ids);
  });

  it('a destroy killed with SIGKILL resumes on the next run', async () => {
    const { dir, stateDir } = setup();
    await up(dir, stateDir);
    // Proxmox at real speed, so the kill lands while VMs are being deleted
    const s = spawnCli(['destroy', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir, '1') });
    await waitFor(() => /running\s+destroy:\S+:vm/.test(s.stdout()), 60_000, 'a VM deletion to start');
    s.child.kill('SIGKILL');
    const killed = await s.done;
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(vmids(stateDir).length > 0, 'the kill came before the end');
    assert.ok(existsSync(join(clusterDir(stateDir), 'secrets.json')));
    const r = await runCliProcess(['destroy', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir) });
    ok(r, 'resumed destroy');
    assert.deepEqual(vmids(stateDir), []);
    assert.deepEqual(snippets(stateDir), []);
    assert.ok(!existsSync(join(clusterDir(stateDir), 'secrets.json')));
  });

  it('Ctrl-C stops a destroy (exit 130, resume command printed); running it again finishes', async () => {
    const { dir, stateDir } = setup();
    await up(dir, stateDir);
    const s = spawnCli(['destroy', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir, '0.3') });
    await waitFor(() => /running\s+destroy:\S+:vm/.test(s.stdout()), 60_000, 'a VM deletion to start');
    s.child.kill('SIGINT');
    const stopped = await s.done;
    assert.equal(stopped.code, 130, stopped.stdout + stopped.stderr);
    assert.match(stopped.stderr, /flatcar-k3s destroy --demo --yes --state-dir/);
    const r = await runCliProcess(['destroy', '--demo', '--yes', '--state-dir', stateDir], { cwd: dir, env: demoEnv(dir) });
    ok(r, 'destroy after Ctrl-C');
    assert.deepEqual(vmids(stateDir), []);
  });

  it('refuses without --yes when stdin is no terminal, before touching anything', async () => {
    const { dir, stateDir } = setup();
    const cfg = writeConfig(dir);
    const r = await runCliProcess(['destroy', '--config', cfg, '--state-dir', stateDir], { cwd: dir, env: { HOME: dir } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not a terminal/);
    assert.match(r.stderr, /--yes/);
    assert.ok(!existsSync(join(stateDir, 'clusters')), 'no state written');
  });
});
