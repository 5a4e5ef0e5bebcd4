/**
 * Kill anywhere, resume: a run of the ha preset is aborted at many points (mid-clone, mid-install,
 * mid-join, while waiting for readiness…) and started again each time. The end state has no
 * duplicate VM, each server joined etcd once, and a final run changes nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import type { RunEvent } from '../src/events.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

type KillPoint = { what: string; when: (e: RunEvent) => boolean };
const running = (id: string): KillPoint => ({
  what: `${id} running`,
  when: (e) => e.type === 'step' && e.id === id && e.status === 'running',
});
const logged = (group: string, re: RegExp): KillPoint => ({
  what: `${group} logs ${re}`,
  when: (e) => e.type === 'log' && e.group === group && re.test(e.line),
});

test('ha: killed at many points and resumed, without duplicate VMs or double joins', async () => {
  env = await startE2e({ preset: 'ha' });
  const points: KillPoint[] = [
    running('template:vm'),
    running('node:ha-server-1:clone'),
    running('node:ha-agent-2:start'),
    running('node:ha-server-3:ssh'),
    logged('ha-server-1', /starting k3s/),
    logged('ha-server-2', /starting k3s/), // mid-join: etcd learner being added
    logged('ha-server-3', /uploading|installing|starting k3s/),
    running('cluster:kubeconfig'),
  ];
  for (const p of points) {
    let fired = false;
    const r = await env.up({
      onEvent: (e, abort) => {
        if (!fired && p.when(e)) {
          fired = true;
          abort();
        }
      },
    });
    assert.ok(fired, `the run never reached ${p.what}: ${r.status} ${JSON.stringify(r.failed)}`);
    assert.equal(r.status, 'interrupted', `run killed at ${p.what}: ${JSON.stringify(r.failed)}`);
  }
  const final = await env.up();
  assert.equal(final.status, 'succeeded', JSON.stringify(final.failed, null, 2));

  const vms = [...env.sim.state.vms.values()];
  assert.equal(vms.filter((v) => v.config.template).length, 1, 'one template');
  const names = vms
    .filter((v) => !v.config.template)
    .map((v) => String(v.config.name))
    .sort();
  assert.deepEqual(names, ['ha-agent-1', 'ha-agent-2', 'ha-agent-3', 'ha-server-1', 'ha-server-2', 'ha-server-3']);
  const clones = env.sim.requests().filter((q) => q.method === 'POST' && q.path.endsWith('/clone') && q.status < 300);
  assert.equal(new Set(clones.map((q) => q.params.newid)).size, clones.length, 'a VMID was cloned twice');

  const cluster = env.guests.node('ha-server-1')!.cluster!;
  assert.equal(cluster.nodes.size, 6);
  for (const n of ['ha-server-2', 'ha-server-3']) {
    const joins: string[] = env.guests
      .node(n)!
      .units.get('k3s')!
      .journal.filter((l) => /Adding member to etcd cluster as learner/.test(l));
    assert.equal(joins.length, 1, `${n} joined ${joins.length} times`);
  }

  const mark = env.sim.requests().length;
  assert.equal((await env.up()).status, 'succeeded');
  assert.deepEqual(env.changingSince(mark), []);
});
