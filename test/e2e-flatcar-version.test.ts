/**
 * Day 2, Flatcar version change (issue 11) on the simulator (homelab: one server, one agent): a new
 * flatcar.version builds a new template next to the old one; the nodes that exist keep running (not
 * re-created: Flatcar updates them in place); a node added later comes from the new template; `plan`
 * says so; `status --json` shows each node's Flatcar release.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { planRun } from '../src/runner/session.js';
import { startE2e, type E2eEnv } from './e2e-harness.js';
import { runCliProcess } from './helpers/cli.js';
import type { StatusDocument } from '../src/cli/status-view.js';

let env: E2eEnv | undefined;
after(async () => env?.close());

test('homelab: a new flatcar.version gets a new template; existing nodes stay, new ones use it', async () => {
  env = await startE2e({ preset: 'homelab', config: { flatcar: { version: '4593.2.4' }, nodes: { agents: { count: 1 } } } });
  const e = env;
  assert.equal((await e.up()).status, 'succeeded');
  const vms = () => [...e.sim.state.vms.values()];
  const templates = () =>
    vms()
      .filter((v) => v.config.template)
      .map((v) => ({ vmid: v.vmid, name: String(v.config.name) }));
  const nodes = () =>
    new Map(
      vms()
        .filter((v) => !v.config.template)
        .map((v) => [String(v.config.name), v.vmid]),
    );
  const [oldTemplate] = templates();
  const before = nodes();

  const raw = (o: Record<string, unknown>) => resolveConfig(deepMerge(e.raw, o) as Record<string, unknown>, { env: {} });
  const newer = raw({ flatcar: { version: '4593.2.5' } });
  const plan = await planRun({ config: newer, stateDir: e.stateDir, options: { parallel: 8, yes: true } });
  const rel = plan.lines.find((l) => l.id === 'template:release')!;
  assert.match(rel.describe, /new template next to it; the nodes that exist keep running .* new nodes are cloned from the new template/);

  assert.equal((await e.up({ config: newer })).status, 'succeeded');
  assert.equal(templates().length, 2, JSON.stringify(templates()));
  assert.ok(
    templates().some((t) => t.vmid === oldTemplate!.vmid && t.name === oldTemplate!.name),
    'the old template is kept',
  );
  const newTemplate = templates().find((t) => t.vmid !== oldTemplate!.vmid)!;
  assert.match(newTemplate.name, /4593-2-5|4593\.2\.5/);
  assert.deepEqual(nodes(), before, 'existing nodes were not re-created');

  const more = raw({ flatcar: { version: '4593.2.5' }, nodes: { agents: { count: 2 } } });
  assert.equal((await e.up({ config: more })).status, 'succeeded');
  const clone = e.sim
    .requests()
    .filter((q) => q.method === 'POST' && /\/clone$/.test(q.path) && q.status < 300 && String(q.params.name) === 'homelab-agent-2');
  assert.equal(clone.length, 1);
  assert.match(clone[0]!.path, new RegExp(`/qemu/${newTemplate.vmid}/clone$`));

  const r = await runCliProcess(['status', '--json', '--cluster', 'homelab', '--state-dir', e.stateDir], { cwd: e.stateDir });
  const doc = JSON.parse(r.stdout) as StatusDocument;
  const flatcar = Object.fromEntries(doc.nodes.map((n) => [n.name, n.flatcar]));
  assert.deepEqual(flatcar, { 'homelab-server-1': '4593.2.4', 'homelab-agent-1': '4593.2.4', 'homelab-agent-2': '4593.2.5' });
});
