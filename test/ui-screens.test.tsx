import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { StartScreen, type StartChoice } from '../screens/StartScreen.js';
import { FlatcarScreen, type FlatcarResult } from '../screens/FlatcarScreen.js';
import { NodesScreen, type NodesResult } from '../screens/NodesScreen.js';
import { AppsScreen, type AppsResult } from '../screens/AppsScreen.js';
import { ReviewScreen, summarize, type ReviewResult } from '../screens/ReviewScreen.js';
import { DoneScreen } from '../screens/DoneScreen.js';
import { parseReleasesFeed, proxmoxReleases } from '../src/flatcar/releases.js';
import { resolveConfig } from '../src/config/load.js';
import { mergeDraft } from '../src/ui/state.js';
import type { FlatcarReleases, UnfinishedRun } from '../src/ui/types.js';
import { render, KEYS } from './helpers/ink.js';

const presets = [
  { name: 'homelab', summary: '1 server + 2 agents, DHCP' },
  { name: 'ha', summary: '3 servers + 3 agents, VIP' },
  { name: 'custom', summary: 'start from the defaults' },
];

test('Start: without an unfinished run, presets are offered and a file path can be entered; Esc returns to the list', async () => {
  const out: StartChoice[] = [];
  const r = render(<StartScreen unfinished={[]} presets={presets} onSubmit={(c) => out.push(c)} />);
  try {
    let f = await r.waitFor('Choose a starting point');
    assert.match(f, /❯ homelab — 1 server \+ 2 agents/);
    assert.ok(!f.includes('Resume'));
    await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 1);
    assert.deepEqual(out[0], { kind: 'preset', name: 'ha' });
    await r.press(KEYS.down);
    await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor('Path of a config file');
    await r.type('./c.yaml');
    await r.press(KEYS.esc);
    f = await r.waitFor('Choose a starting point');
    for (let i = 0; i < 3; i++) await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor('Path of a config file');
    await r.waitFor('./c.yaml');
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 2);
    assert.deepEqual(out[1], { kind: 'file', path: './c.yaml' });
  } finally {
    r.unmount();
  }
});

test('Start: an unfinished run is offered for resume, showing where it stopped and why', async () => {
  const run: UnfinishedRun = {
    cluster: 'homelab',
    clusterDir: '/s/clusters/homelab',
    configPath: '/s/clusters/homelab/cluster.yaml',
    status: 'failed',
    stoppedAt: 'Download Flatcar image',
    reason: 'storage "local" has no import content',
    updatedAt: 1000,
    done: 3,
    total: 20,
  };
  const out: StartChoice[] = [];
  const r = render(<StartScreen unfinished={[run]} presets={presets} now={() => 1000 + 5 * 60_000} onSubmit={(c) => out.push(c)} />);
  try {
    const f = await r.waitFor('An unfinished run was found');
    assert.match(f, /❯ Resume homelab — 3\/20 steps done/);
    assert.match(f.replace(/\n\s*/g, ' '), /homelab stopped at "Download Flatcar image" 5m00s ago: storage "local" has no import content/);
    assert.match(f, /Start over: a new cluster/);
    assert.match(f, /Open another cluster/);
    await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor('Choose a starting point');
    await r.press(KEYS.esc);
    await r.waitFor('An unfinished run was found');
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 1);
    assert.deepEqual(out[0], { kind: 'resume', run });
  } finally {
    r.unmount();
  }
});

test('Start: a file that failed to load shows its error under the path, keeping the path', async () => {
  const r = render(
    <StartScreen
      unfinished={[]}
      presets={presets}
      initialPath="./bad.yaml"
      fileError="./bad.yaml: not valid YAML at line 2"
      onSubmit={() => {}}
    />,
  );
  try {
    const f = await r.waitFor('not valid YAML');
    assert.match(f, /\.\/bad\.yaml/);
  } finally {
    r.unmount();
  }
});

const sample = proxmoxReleases(
  parseReleasesFeed(JSON.parse(readFileSync(new URL('./fixtures/flatcar-releases-sample.json', import.meta.url), 'utf8'))),
);
const feed = (fail?: Error): FlatcarReleases => ({
  async list(channel) {
    if (fail) throw fail;
    return sample.map((x) => ({ ...x, channel }));
  },
});

test('Flatcar: channel then versions newest first with dates and kernel; an existing template is marked and can be recreated', async () => {
  const out: FlatcarResult[] = [];
  const newest = sample[0]!;
  const templates = [
    {
      type: 'qemu' as const,
      vmid: 9000,
      node: 'pve1',
      name: `flatcar-stable-${newest.version.replaceAll('.', '-')}`,
      status: 'stopped',
      template: true,
    },
  ];
  const r = render(<FlatcarScreen initial={{}} releases={feed()} templates={templates} recreate={false} onSubmit={(x) => out.push(x)} />, {
    columns: 120,
    rows: 30,
  });
  try {
    await r.waitFor('release channel');
    await r.press(KEYS.enter);
    const f = await r.waitFor(`now ${newest.version}`);
    assert.match(f, new RegExp(`${newest.version.replaceAll('.', '\\.')} — ${newest.releaseDate.slice(0, 10)}`));
    if (newest.kernel) assert.ok(f.includes(`kernel ${newest.kernel}`));
    assert.match(f, /● template exists \(VMID 9000 on pve1\)/);
    const order = sample.map((x) => x.version).filter((v) => f.includes(v));
    assert.ok(order.length >= 2 && f.indexOf(order[0]!) < f.indexOf(order[1]!), 'newest first');
    await r.press(KEYS.enter);
    await r.waitFor('already exists');
    await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 1);
    assert.deepEqual(out[0], { back: false, flatcar: { channel: 'stable', version: 'current' }, recreateTemplate: true });
  } finally {
    r.unmount();
  }
});

test('Flatcar: a feed error is shown with its fix and "current" can still be chosen; Esc goes back', async () => {
  const out: FlatcarResult[] = [];
  const err = Object.assign(new Error('Cannot read the Flatcar feed: ECONNREFUSED'), {
    fix: 'Check the network or set flatcar.feedBaseUrl to a mirror.',
  });
  const r = render(
    <FlatcarScreen initial={{ channel: 'beta' }} releases={feed(err)} templates={[]} recreate={false} onSubmit={(x) => out.push(x)} />,
    { columns: 100 },
  );
  try {
    await r.waitFor('❯ beta');
    await r.press(KEYS.enter);
    const f = await r.waitFor('ECONNREFUSED');
    assert.match(f, /Fix: Check the network/);
    await r.press(KEYS.esc);
    await r.waitFor('release channel');
    await r.press(KEYS.esc);
    await r.waitFor(() => out.length === 1);
    assert.equal(out[0]!.back, true);
    assert.equal(out[0]!.flatcar.channel, 'beta');
  } finally {
    r.unmount();
  }
});

const proxmox = { url: 'https://pve.lan:8006', tokenId: 'root@pam!x', tokenSecret: '0d5c7a4e-1234-4abc-9def-0123456789ab' };

test('Nodes: an even server count is refused with why, the VIP is required for HA, and the placement preview follows the values', async () => {
  const out: NodesResult[] = [];
  const draft = { preset: 'homelab', cluster: { name: 'homelab' }, proxmox };
  const r = render(<NodesScreen draft={draft} pveNodes={['pve1', 'pve2']} onSubmit={(x) => out.push(x)} />, { columns: 100, rows: 30 });
  try {
    let f = await r.waitFor('Placement preview');
    assert.match(f, /homelab-server-1\s+VMID 9001\s+2c\/4096M\/20G → pve1\s+dhcp/);
    assert.match(f, /homelab-agent-2/);
    await r.press(KEYS.backspace);
    await r.type('2');
    f = await r.waitFor('even number of servers');
    assert.match(f, /odd number/);
    await r.press(KEYS.enter);
    await r.waitFor('nodes.vip');
    assert.equal(out.length, 0, 'Enter does not leave with errors');
    await r.press(KEYS.backspace);
    await r.type('3');
    await r.waitFor((x) => !x.includes('even number'));
    // Tab to the VIP field: 8 size fields, then mode, then VIP.
    for (let i = 0; i < 9; i++) await r.press(KEYS.tab);
    await r.type('192.168.1.40');
    f = await r.waitFor('homelab-server-3');
    assert.match(f, /homelab-server-2.*→ pve2/);
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 1);
    const c = resolveConfig(mergeDraft(draft, out[0]!.patch), { env: {} });
    assert.equal(c.nodes.servers.count, 3);
    assert.equal(c.nodes.vip, '192.168.1.40');
    assert.equal(c.nodes.agents.count, 2);
  } finally {
    r.unmount();
  }
});

test('Nodes: static addressing shows its fields and checks them; Esc returns what was typed', async () => {
  const out: NodesResult[] = [];
  const draft = { cluster: { name: 'lab' }, proxmox };
  const r = render(<NodesScreen draft={draft} pveNodes={['pve1']} onSubmit={(x) => out.push(x)} />, { columns: 100, rows: 30 });
  try {
    await r.waitFor('Placement preview');
    for (let i = 0; i < 8; i++) await r.press(KEYS.tab);
    await r.press(' ');
    let f = await r.waitFor('Static IPs');
    await r.press(KEYS.tab);
    await r.press(KEYS.tab);
    await r.type('10.0.0.0/24');
    await r.press(KEYS.tab);
    await r.type('10.0.0.1');
    await r.press(KEYS.tab);
    await r.type('10.0.1.5');
    f = await r.waitFor('is outside 10.0.0.0/24');
    for (let i = 0; i < 3; i++) await r.press(KEYS.backspace);
    await r.type('0.50');
    f = await r.waitFor('10.0.0.50/24');
    await r.press(KEYS.esc);
    await r.waitFor(() => out.length === 1);
    assert.equal(out[0]!.back, true);
    assert.deepEqual((out[0]!.patch.nodes as Record<string, unknown>).network as Record<string, unknown>, {
      mode: 'static',
      cidr: '10.0.0.0/24',
      gateway: '10.0.0.1',
      firstAddress: '10.0.0.50',
    });
  } finally {
    r.unmount();
  }
});

test('Apps: space toggles, Enter submits all five flags; Pulumi availability is shown', async () => {
  const out: AppsResult[] = [];
  const r = render(<AppsScreen initial={['kured', 'systemUpgradeController']} pulumiAvailable={false} onSubmit={(x) => out.push(x)} />, {
    columns: 110,
  });
  try {
    let f = await r.waitFor('Pulumi CLI not found');
    assert.match(f, /\[ \] Pulumi Kubernetes Operator — runs Pulumi stacks/);
    assert.match(f, /\[x\] kured — reboots nodes/);
    await r.press(' ');
    await r.press(KEYS.down);
    await r.press(' ');
    f = await r.waitFor('[ ] kured');
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 1);
    assert.deepEqual(out[0], {
      back: false,
      apps: { pulumiOperator: true, kured: false, piraeus: false, certManager: false, systemUpgradeController: true },
    });
  } finally {
    r.unmount();
  }
  const r2 = render(<AppsScreen initial={[]} pulumiAvailable="v3.190.0" onSubmit={() => {}} />, { columns: 110 });
  try {
    await r2.waitFor('Pulumi CLI found (v3.190.0)');
  } finally {
    r2.unmount();
  }
});

test('Review lists the apps by their names, not their config keys', () => {
  const config = resolveConfig(
    { preset: 'homelab', proxmox, apps: { pulumiOperator: true, certManager: true, kured: false, systemUpgradeController: false } },
    { env: {} },
  );
  const line = summarize(config).find((l) => l.startsWith('Apps:'));
  assert.equal(line, 'Apps: Pulumi Kubernetes Operator, cert-manager');
});

test('Review: shows the summary, the plan lines, the saved config path and where secrets are; Enter confirms, Esc goes back', async () => {
  const config = resolveConfig({ preset: 'homelab', proxmox }, { env: {} });
  const plan = Array.from({ length: 40 }, (_, i) => `step ${i + 1}: does thing ${i + 1}`);
  const out: ReviewResult[] = [];
  const r = render(
    <ReviewScreen
      config={config}
      plan={plan}
      configPath="/s/clusters/homelab/cluster.yaml"
      secrets="in /s/clusters/homelab/proxmox-credentials.env (mode 0600)"
      onSubmit={(x) => out.push(x)}
    />,
    { columns: 100, rows: 30 },
  );
  try {
    let f = await r.waitFor('Plan (40 steps');
    assert.match(f, /Cluster homelab: k3s stable, 1 server .* \+ 2 agents/);
    assert.match(f, /step 1: does thing 1/);
    assert.ok(!f.includes('step 40:'), 'long plans scroll');
    assert.match(f, /\/s\/clusters\/homelab\/cluster\.yaml/);
    assert.match(f, /mode 0600/);
    assert.ok(!f.includes(proxmox.tokenSecret));
    for (let i = 0; i < 40; i++) await r.press(KEYS.down);
    f = await r.waitFor('step 40:');
    await r.press(KEYS.enter);
    await r.press(KEYS.esc);
    await r.waitFor(() => out.length === 2);
    assert.deepEqual(out, [{ back: false }, { back: true }]);
  } finally {
    r.unmount();
  }
});

test('Done: kubeconfig path, the kubectl command, the server address, the apps and the time', async () => {
  let exited = 0;
  const r = render(
    <DoneScreen
      cluster="homelab"
      kubeconfigPath="/s/clusters/homelab/kubeconfig.yaml"
      server="https://192.168.1.40:6443"
      installed={['kured']}
      elapsedMs={125_000}
      onSubmit={() => exited++}
    />,
    { columns: 100 },
  );
  try {
    const f = await r.waitFor('is ready');
    assert.match(f, /2m05s/);
    assert.match(f, /kubectl --kubeconfig \/s\/clusters\/homelab\/kubeconfig\.yaml get nodes/);
    assert.match(f, /https:\/\/192\.168\.1\.40:6443/);
    assert.match(f, /k3s, kured/);
    await r.press(KEYS.enter);
    assert.equal(exited, 1);
  } finally {
    r.unmount();
  }
});

test('Nodes: the ha preset (static addresses, six VMs) fits an 80x24 terminal', async () => {
  const r = render(<NodesScreen draft={{ preset: 'ha', proxmox }} pveNodes={['pve1', 'pve2', 'pve3']} onSubmit={() => {}} />, {
    columns: 80,
    rows: 24,
  });
  try {
    const f = await r.waitFor('Placement preview');
    const lines = f.replace(/\n+$/, '').split('\n');
    assert.ok(lines.length <= 23, `${lines.length} rows (the breadcrumb takes one more):\n${f}`);
    assert.ok(lines.every((l) => l.length <= 80));
    assert.match(f, /ha-server-1 .*→ pve1 +192\.168\.50\.11\/24/);
    assert.match(f, /\+ \d+ more/);
  } finally {
    r.unmount();
  }
});

test('Apps: a selection the layout cannot hold (piraeus replicas on one node) is refused with why', async () => {
  const { checkDraft } = await import('../src/ui/validate.js');
  const draft = { cluster: { name: 'one' }, proxmox };
  const validate = (apps: Record<string, boolean>) => {
    const e = Object.entries(checkDraft(mergeDraft(draft, { apps }), ['apps']).errors)[0];
    return e ? `${e[0]}: ${e[1]}` : undefined;
  };
  const out: AppsResult[] = [];
  const r = render(<AppsScreen initial={[]} pulumiAvailable={true} validate={validate} onSubmit={(x) => out.push(x)} />, { columns: 110 });
  try {
    await r.waitFor('Pulumi CLI found');
    await r.press(KEYS.down);
    await r.press(KEYS.down);
    await r.press(' ');
    const f = await r.waitFor('apps.piraeus.replicas');
    assert.match(f, /needs at least 2 nodes/);
    await r.press(KEYS.enter);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(out.length, 0, 'Enter is refused while the selection is invalid');
    await r.press(' ');
    await r.waitFor((x) => !x.includes('apps.piraeus.replicas'));
    await r.press(KEYS.enter);
    await r.waitFor(() => out.length === 1);
    assert.equal(out[0]!.apps.piraeus, false);
  } finally {
    r.unmount();
  }
});

test('Nodes and Review show the placement and warn when etcd servers share a PVE host', async () => {
  const nodes = render(
    <NodesScreen draft={{ preset: 'ha', cluster: { name: 'ha' }, proxmox }} pveNodes={['pve1', 'pve2']} onSubmit={() => {}} />,
    { columns: 110, rows: 40 },
  );
  try {
    const f = await nodes.waitFor('Placement preview (spread)');
    assert.match(f, /ha-server-2\s+VMID \d+\s+.*→ pve2/);
    assert.match(f, /etcd servers share a PVE host: pve1 \(ha-server-1, ha-server-3\)/);
  } finally {
    nodes.unmount();
  }
  const config = resolveConfig({ preset: 'ha', proxmox, nodes: { placement: 'pack' } }, { env: {} });
  const review = render(<ReviewScreen config={config} plan={['step 1']} configPath="/s/c.yaml" secrets="env" onSubmit={() => {}} />, {
    columns: 110,
    rows: 30,
  });
  try {
    const f = await review.waitFor('Plan (1 steps');
    assert.match(f, /Placement: placement pack: every VM on the first PVE node/);
    assert.match(f, /etcd servers share one PVE host \(pack\): losing it loses all 3 servers/);
  } finally {
    review.unmount();
  }
  const spread = resolveConfig({ preset: 'ha', proxmox: { ...proxmox, nodes: ['pve1', 'pve2', 'pve3'] } }, { env: {} });
  const ok = render(<ReviewScreen config={spread} plan={['step 1']} configPath="/s/c.yaml" secrets="env" onSubmit={() => {}} />, {
    columns: 110,
    rows: 30,
  });
  try {
    const f = await ok.waitFor('Plan (1 steps');
    assert.match(f, /placement spread: servers on distinct PVE hosts \(pve1, pve2, pve3\)/);
    assert.ok(!f.includes('⚠'), f);
  } finally {
    ok.unmount();
  }
});
