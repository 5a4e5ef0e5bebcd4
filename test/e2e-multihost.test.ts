/**
 * HA across PVE hosts (issue 12), on the simulator through the real runner: with only local storage
 * each host that gets VMs gets its own template and its VMs are linked clones of it; with the shared
 * storage one template serves every host; a second up changes nothing; destroy leaves no template and
 * no snippet on any host.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RunEvents, type RunEvent } from '../src/events.js';
import { ClusterRun } from '../src/runner/session.js';
import type { RunResult } from '../src/runner/driver.js';
import { destroySteps, recordedNodes, storeForget } from '../steps/destroy/index.js';
import { readState } from '../src/runner/state.js';
import { clusterDirFor } from '../src/store/layout.js';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { startE2e, type E2eEnv } from './e2e-harness.js';

const envs: E2eEnv[] = [];
after(async () => {
  for (const e of envs) await e.close();
});

async function destroy(e: E2eEnv): Promise<RunResult> {
  const ev = new RunEvents();
  const events: RunEvent[] = [];
  ev.onEvent((x) => events.push(x));
  let run: ClusterRun | undefined;
  const state = storeForget(() => run!.store);
  const recorded = recordedNodes(e.config, readState(clusterDirFor(e.stateDir, e.config.cluster.name)));
  run = await ClusterRun.open({
    config: e.config,
    stateDir: e.stateDir,
    options: { parallel: 8, yes: true, homeDir: e.homeDir },
    env: {},
    events: ev,
    buildSteps: (c, o) => destroySteps(c, o, { keepTemplate: false, state, recorded }),
  });
  try {
    return await run.execute(new AbortController().signal, 'destroy');
  } finally {
    run.close();
  }
}

const vmsOf = (e: E2eEnv) => [...e.sim.state.vms.values()];
const hostOf = (e: E2eEnv, name: string) => vmsOf(e).find((v) => v.config.name === name)!.node;
/** The template VMID a linked clone's disk is based on ("local-lvm:base-9100-disk-0/vm-9001-disk-0"). */
const baseOf = (scsi0: unknown) => Number(/base-(\d+)-disk/.exec(String(scsi0))?.[1]);

/** Snippet files of the cluster on every host's storages (files under each node's local dir and the shared one). */
function snippetFiles(e: E2eEnv): string[] {
  const out: string[] = [];
  for (const node of e.sim.nodes) {
    for (const st of e.sim.state.storages.values()) {
      const root = e.sim.state.dirRoot(st, node);
      if (!root) continue;
      for (const f of readdirSync(join(root, 'snippets'))) if (f.startsWith('flatcar-k3s-')) out.push(`${node}:${st.storage}:${f}`);
    }
  }
  return [...new Set(out)];
}

describe('HA over several PVE hosts', { timeout: 300_000 }, () => {
  it('local storage only: servers on 3 hosts, each cloned from a template on its own host; second up changes nothing; destroy cleans every host', async () => {
    const env = await startE2e({ preset: 'ha', pveNodes: 3 });
    envs.push(env);
    const r = await env.up();
    assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));
    const servers = ['ha-server-1', 'ha-server-2', 'ha-server-3'].map((n) => hostOf(env, n));
    assert.deepEqual([...servers].sort(), ['pve1', 'pve2', 'pve3']);

    const templates = vmsOf(env).filter((v) => v.config.template);
    assert.deepEqual(templates.map((t) => t.node).sort(), ['pve1', 'pve2', 'pve3'], 'one template per host');
    assert.equal(new Set(templates.map((t) => t.vmid)).size, 3);
    for (const t of templates.filter((x) => x.node !== 'pve1'))
      assert.match(String(t.config.name), new RegExp(`-${t.node}$`), 'the host is in the name');
    for (const vm of vmsOf(env).filter((v) => !v.config.template)) {
      const base = env.sim.state.vms.get(baseOf(vm.config.scsi0))!;
      assert.equal(base.node, vm.node, `${vm.config.name} is a linked clone of the template on its own host`);
      assert.equal(base.config.template, 1);
    }
    // no clone asked Proxmox to cross hosts; each host downloaded its own image
    const clones = env.sim.requests().filter((q) => q.method === 'POST' && q.path.endsWith('/clone'));
    assert.ok(
      clones.every((q) => q.params.target === undefined),
      JSON.stringify(clones.map((q) => q.params)),
    );
    const downloads = env.sim.requests().filter((q) => q.method === 'POST' && q.path.endsWith('/download-url'));
    assert.deepEqual(downloads.map((q) => q.path.split('/')[2]).sort(), ['pve1', 'pve2', 'pve3']);
    // each VM's snippet is on the host it runs on
    for (const vm of vmsOf(env).filter((v) => !v.config.template)) {
      const file = String(vm.config.cicustom).replace(/^user=local:snippets\//, '');
      assert.ok(snippetFiles(env).includes(`${vm.node}:local:${file}`), `${vm.config.name}'s snippet on ${vm.node}`);
    }
    // the log says which host gets what and why
    assert.ok(env.events.some((e) => e.type === 'log' && /not shared.*a template on each of pve1, pve2, pve3/.test(e.line)));

    const mark = env.sim.requests().length;
    const again = await env.up();
    assert.equal(again.status, 'succeeded');
    assert.deepEqual(env.changingSince(mark), []);

    // a node's snippet missing on its host (the VM moved, or the file was lost) is put back by the node's check
    const moved = vmsOf(env).find((v) => v.config.name === 'ha-agent-2')!;
    const snippet = String(moved.config.cicustom).replace(/^user=local:snippets\//, '');
    const { rmSync } = await import('node:fs');
    rmSync(join(env.sim.state.dirRoot(env.sim.state.storages.get('local')!, moved.node)!, 'snippets', snippet));
    const third = await env.up();
    assert.equal(third.status, 'succeeded');
    assert.ok(snippetFiles(env).includes(`${moved.node}:local:${snippet}`));

    // one agent fewer: its VM goes, and its snippet goes from the host it was on (not only the first host)
    const leaving = vmsOf(env).find((v) => v.config.name === 'ha-agent-3')!;
    const leavingSnippet = String(leaving.config.cicustom).replace(/^user=local:snippets\//, '');
    assert.ok(snippetFiles(env).includes(`${leaving.node}:local:${leavingSnippet}`));
    const fewer = resolveConfig(deepMerge(env.raw, { nodes: { agents: { count: 2 } } }) as Record<string, unknown>, { env: {} });
    const down = await env.up({ config: fewer });
    assert.equal(down.status, 'succeeded', JSON.stringify(down.failed, null, 2));
    assert.ok(!vmsOf(env).some((v) => v.config.name === 'ha-agent-3'));
    assert.ok(!snippetFiles(env).some((f) => f.includes('-ha-agent-3-')), `ha-agent-3's snippet left: ${snippetFiles(env).join(', ')}`);

    const d = await destroy(env);
    assert.equal(d.status, 'succeeded', JSON.stringify(d.failed, null, 2));
    assert.deepEqual(
      vmsOf(env).map((v) => v.vmid),
      [],
      'no VM and no template on any host',
    );
    assert.deepEqual(snippetFiles(env), [], 'no snippet on any host');
  });

  it('shared storage: one template serves all hosts, servers still spread, destroy cleans up', async () => {
    const env = await startE2e({ preset: 'ha', pveNodes: 3, sharedStorage: true });
    envs.push(env);
    const r = await env.up();
    assert.equal(r.status, 'succeeded', JSON.stringify(r.failed, null, 2));
    const templates = vmsOf(env).filter((v) => v.config.template);
    assert.equal(templates.length, 1);
    assert.deepEqual(['ha-server-1', 'ha-server-2', 'ha-server-3'].map((n) => hostOf(env, n)).sort(), ['pve1', 'pve2', 'pve3']);
    const clones = env.sim.requests().filter((q) => q.method === 'POST' && q.path.endsWith('/clone'));
    assert.ok(clones.some((q) => q.params.target === 'pve2') && clones.every((q) => q.path.startsWith('/nodes/pve1/')));
    const mark = env.sim.requests().length;
    assert.equal((await env.up()).status, 'succeeded');
    assert.deepEqual(env.changingSince(mark), []);
    const d = await destroy(env);
    assert.equal(d.status, 'succeeded', JSON.stringify(d.failed, null, 2));
    assert.deepEqual(
      vmsOf(env).map((v) => v.vmid),
      [],
    );
    assert.deepEqual(snippetFiles(env), []);
  });
});
