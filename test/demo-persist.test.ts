/**
 * The demo's world persists in <stateDir>/demo: the real CLI (`up --demo --yes`) run twice on one state
 * dir finds every step done the second time and creates nothing; killed with SIGKILL in the middle, the
 * next run finishes without a duplicate VM and without redoing the steps that were done.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCliProcess, spawnCli, tempDir, waitFor, type CliResult } from './helpers/cli.js';

const cleanups: Array<() => void> = [];
after(() => cleanups.forEach((c) => c()));

// a fast demo: the assertions are about what runs, not how long it takes
const demoEnv = (home: string) => ({ FLATCAR_K3S_DEMO_SPEED: '0.02', HOME: home });

function setup(): { dir: string; stateDir: string } {
  const t = tempDir('demo-persist-');
  cleanups.push(t.cleanup);
  return { dir: t.dir, stateDir: join(t.dir, 'state') };
}

interface SavedVm {
  vmid: number;
  node: string;
  status: string;
  config: Record<string, string | number>;
}

const simWorld = (stateDir: string) =>
  JSON.parse(readFileSync(join(stateDir, 'demo', 'sim.json'), 'utf8')) as {
    vms: SavedVm[];
    ports: { api: number };
    tls: { fingerprint: string };
  };
const guestWorld = (stateDir: string) =>
  JSON.parse(readFileSync(join(stateDir, 'demo', 'guests.json'), 'utf8')) as {
    nodes: Array<{ vm: { vmid: number }; hostKey: { fingerprint: string }; address: string }>;
  };

/** Step transition lines: "HH:MM:SS <status> <step id> <title>…". */
function transitions(stdout: string): Array<{ status: string; id: string; line: string }> {
  const out: Array<{ status: string; id: string; line: string }> = [];
  for (const line of stdout.split('\n')) {
    const m = /^\d\d:\d\d:\d\d (running|done|skipped|failed|pending)\s+(\S+)\s/.exec(line);
    if (m) out.push({ status: m[1]!, id: m[2]!, line });
  }
  return out;
}

/** The VMIDs the run plans: the template's and each node's, from the printed summary. */
function plannedVmids(stdout: string): number[] {
  const template = Number(/template VMID (\d+)/.exec(stdout)?.[1]);
  const nodes = [...stdout.matchAll(/^\s+\S+\s+(?:server|agent)\s+vmid (\d+)/gm)].map((m) => Number(m[1]));
  assert.ok(template > 0 && nodes.length > 0, `no plan in:\n${stdout}`);
  return [template, ...nodes].sort((a, b) => a - b);
}

function assertSucceeded(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /run succeeded/);
}

describe('up --demo keeps its world between runs', { timeout: 240_000 }, () => {
  it('a second run on the same state dir finds every step done and creates no VM', async () => {
    const { dir, stateDir } = setup();
    const args = ['up', '--demo', '--yes', '--state-dir', stateDir];
    const first = await runCliProcess(args, { cwd: dir, env: demoEnv(dir) });
    assertSucceeded(first, 'first run');
    const vmsBefore = simWorld(stateDir).vms;
    const guestsBefore = guestWorld(stateDir);
    assert.deepEqual(
      vmsBefore.map((v) => v.vmid).sort((a, b) => a - b),
      plannedVmids(first.stdout),
    );

    const second = await runCliProcess(args, { cwd: dir, env: demoEnv(dir) });
    assertSucceeded(second, 'second run');
    // same settings (URL, ports, fingerprints): nothing re-opened
    assert.doesNotMatch(second.stdout, /Settings changed since the last run/);
    const steps = transitions(second.stdout);
    assert.ok(steps.length > 10, second.stdout);
    const ran = steps.filter(
      (s) => s.status === 'running' || s.status === 'failed' || (s.status === 'done' && !/\(already done\)/.test(s.line)),
    );
    assert.deepEqual(
      ran.map((s) => s.line),
      [],
      'every step is found done by its check',
    );
    for (const s of steps) assert.ok(s.status === 'done' || s.status === 'skipped', s.line);
    // the same VMs, not re-created: each keeps its config (SMBIOS UUID, creation time), the template stays a template
    const vmsAfter = simWorld(stateDir).vms;
    assert.deepEqual(vmsAfter, vmsBefore);
    assert.ok(vmsAfter.some((v) => v.config.template === 1));
    // the nodes kept their identities (host keys pinned by the first run, addresses)
    const guestsAfter = guestWorld(stateDir);
    assert.deepEqual(
      guestsAfter.nodes.map((n) => [n.vm.vmid, n.hostKey.fingerprint, n.address]),
      guestsBefore.nodes.map((n) => [n.vm.vmid, n.hostKey.fingerprint, n.address]),
    );
    // secrets live there: private to the user
    assert.equal(statSync(join(stateDir, 'demo')).mode & 0o777, 0o700);
    for (const f of ['sim.json', 'guests.json', 'demo.json', 'pve-host-ssh-key'])
      assert.equal(statSync(join(stateDir, 'demo', f)).mode & 0o777, 0o600, f);
    // the PVE node's local storage is a real directory in the world (snippets and the image persist)
    assert.ok(statSync(join(stateDir, 'demo', 'pve', 'pve1', 'import')).isDirectory());
  });

  it('a run killed (SIGKILL) while nodes come up resumes: it finishes, no duplicate VM, done steps are not run again', async () => {
    const { dir, stateDir } = setup();
    const args = ['up', '--demo', '--yes', '--state-dir', stateDir];
    const killed = spawnCli(args, { cwd: dir, env: demoEnv(dir) });
    try {
      await waitFor(() => /^\d\d:\d\d:\d\d running\s+node:\S+:ssh\s/m.test(killed.stdout()), 120_000, 'a node:*:ssh step to run');
    } finally {
      killed.child.kill('SIGKILL');
    }
    const k = await killed.done;
    assert.equal(k.signal, 'SIGKILL');
    const doneBefore = new Set(
      transitions(k.stdout)
        .filter((s) => s.status === 'done')
        .map((s) => s.id),
    );
    assert.ok(doneBefore.size > 0, k.stdout);

    const again = await runCliProcess(args, { cwd: dir, env: demoEnv(dir) });
    assertSucceeded(again, 'the resumed run');
    const steps = transitions(again.stdout);
    for (const id of doneBefore) {
      const lines = steps.filter((s) => s.id === id);
      assert.ok(lines.length > 0, `step ${id} not reported in the resumed run`);
      for (const s of lines)
        assert.ok(s.status === 'done' && /\(already done\)/.test(s.line), `step ${id} was done before the kill, but: ${s.line}`);
    }
    // exactly the planned VMs: nothing created twice, nothing half-made left behind
    const vms = simWorld(stateDir).vms;
    assert.deepEqual(
      vms.map((v) => v.vmid).sort((a, b) => a - b),
      plannedVmids(again.stdout),
    );
    for (const v of vms) assert.equal(v.config.lock, undefined, `VM ${v.vmid} is still locked`);
    for (const v of vms.filter((x) => !x.config.template)) assert.equal(v.status, 'running', `VM ${v.vmid}`);

    // and a third run has nothing left to do
    const third = await runCliProcess(args, { cwd: dir, env: demoEnv(dir) });
    assertSucceeded(third, 'third run');
    assert.deepEqual(
      transitions(third.stdout)
        .filter((s) => s.status === 'running')
        .map((s) => s.line),
      [],
    );
  });
});
