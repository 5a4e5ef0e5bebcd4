/**
 * The whole wizard against the real runner session (ClusterRun) with a small test step list
 * (test/fixtures/ui-steps.ts, handed to the services), a fake Proxmox gateway and a fixed releases list: homelab to Done,
 * a failure then resume from the Start screen, and a safe quit mid-run.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../src/app/App.js';
import { colorTheme } from '../src/ui/theme.js';
import { realServices, findUnfinished, findClusters } from '../src/app/services.js';
import type { UiServices } from '../src/ui/types.js';
import { render, KEYS, type Rendered } from './helpers/ink.js';
import { fakeGateway } from './helpers/fake-proxmox.js';
import { readState } from '../src/runner/state.js';
import { buildSteps } from './fixtures/ui-steps.js';

const SECRET = '0d5c7a4e-1234-4abc-9def-0123456789ab';
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function services(stateDir: string): Promise<UiServices> {
  const env = { HOME: stateDir };
  const real = realServices({
    stateDir,
    env,
    buildSteps,
    prefill: {},
    prefillSources: {},
    pulumiAvailable: false,
    unfinished: await findUnfinished(stateDir),
    clusters: await findClusters(stateDir),
  });
  return {
    ...real,
    gateway: fakeGateway().gateway,
    releases: {
      list: async (channel) => [
        {
          version: '4593.2.5',
          channel,
          releaseDate: '2026-08-13T15:48:35Z',
          architectures: ['amd64'],
          kernel: '6.6.100',
          proxmoxImage: true,
        },
      ],
    },
  };
}

function app(svc: UiServices) {
  const exits: Array<{ code: number; message?: string }> = [];
  const r = render(<App services={svc} theme={colorTheme} onExit={(code, message) => exits.push({ code, message })} />, {
    columns: 100,
    rows: 30,
  });
  return { r, exits };
}

async function wizardToRun(r: Rendered) {
  await r.waitFor('Choose a starting point');
  await r.press(KEYS.enter); // homelab
  await r.waitFor('Proxmox connection');
  await r.type('https://pve.lan:8006');
  await r.press(KEYS.tab);
  await r.type('root@pam!flatcar');
  await r.press(KEYS.tab);
  await r.type(SECRET);
  await r.press(KEYS.enter);
  await r.waitFor('Trust it?');
  await r.press('y');
  await r.waitFor('PVE nodes to place VMs on');
  await r.press(KEYS.enter);
  for (const title of ['Storage for VM disks', 'Flatcar image download', 'Ignition snippets', 'Network bridge']) {
    await r.waitFor(title);
    await r.press(KEYS.enter);
  }
  await r.waitFor('release channel');
  // Esc goes back to the Proxmox screen without losing what was typed.
  await r.press(KEYS.esc);
  const back = await r.waitFor('Enter test connection');
  assert.match(back, /https:\/\/pve\.lan:8006/);
  assert.ok(back.includes('•'.repeat(SECRET.length)), 'the secret is kept (masked)');
  await r.press(KEYS.enter); // the fingerprint is trusted already: no question this time
  await r.waitFor('PVE nodes to place VMs on');
  await r.press(KEYS.enter);
  for (const title of ['Storage for VM disks', 'Flatcar image download', 'Ignition snippets', 'Network bridge']) {
    await r.waitFor(title);
    await r.press(KEYS.enter);
  }
  await r.waitFor('release channel');
  await r.press(KEYS.enter);
  await r.waitFor('now 4593.2.5');
  await r.press(KEYS.enter);
  await r.waitFor('Node layout');
  const f = await r.waitFor('homelab-agent-2');
  assert.match(f, /homelab-server-1.*→ pve1/);
  await r.press(KEYS.enter);
  await r.waitFor('Apps to install');
  await r.press(KEYS.enter);
  const review = await r.waitFor('Plan (6 steps');
  assert.match(review, /Clone and boot \(homelab-agent-1\)/);
  assert.match(review.replace(/\n/g, ' '), /written to .*proxmox\.env \(mode 0600/);
  await r.press(KEYS.enter);
}

test('homelab preset through every screen to Done, with the config saved without secrets', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const { r, exits } = app(await services(stateDir));
  try {
    await wizardToRun(r);
    const done = await r.waitFor('is ready', 30_000);
    const clusterDir = join(stateDir, 'clusters', 'homelab');
    assert.match(done, /kubectl --kubeconfig .*kubeconfig\.yaml get nodes/);
    assert.match(done, /https:\/\/192\.0\.2\.10:6443/);
    assert.match(done, /k3s, kured, system-upgrade-controller/);
    assert.ok(existsSync(join(clusterDir, 'kubeconfig.yaml')));
    const yaml = readFileSync(join(clusterDir, 'cluster.yaml'), 'utf8');
    assert.ok(!yaml.includes(SECRET), 'no secret in the saved config');
    assert.match(yaml, /preset: homelab/);
    assert.match(yaml, /tokenId: root@pam!flatcar/);
    const envFile = join(clusterDir, 'proxmox.env');
    assert.equal(statSync(envFile).mode & 0o777, 0o600);
    assert.ok(readFileSync(envFile, 'utf8').includes(SECRET));
    assert.ok(!r.allFrames().includes(SECRET), 'the secret never reached the screen');
    assert.ok(!readFileSync(join(clusterDir, 'run.log'), 'utf8').includes(SECRET), 'nor the log');
    await r.press(KEYS.enter);
    await r.waitFor(() => exits.length === 1);
    assert.equal(exits[0]!.code, 0);
    assert.match(exits[0]!.message!, /Kubeconfig: .*kubeconfig\.yaml/);
  } finally {
    r.unmount();
  }
});

test('a failed run shows the fix, quits with the state saved, and is offered for resume on the next start', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  mkdirSync(clusterDir, { recursive: true });
  writeFileSync(join(clusterDir, 'fail-once'), '');
  const first = app(await services(stateDir));
  try {
    await wizardToRun(first.r);
    const f = await first.r.waitFor('Fix:', 30_000);
    assert.match(f, /homelab-agent-1 › Clone and boot failed/);
    assert.match(f, /did not get an address/);
    assert.match(f, /Check the DHCP server/);
    assert.match(f, /run\.log/);
    await first.r.press('q');
    await first.r.waitFor(() => first.exits.length === 1);
    assert.equal(first.exits[0]!.code, 1);
    assert.match(first.exits[0]!.message!, /set -a; \. .*proxmox\.env.*flatcar-k3s up --config .*cluster\.yaml/);
  } finally {
    first.r.unmount();
  }
  const second = app(await services(stateDir));
  try {
    const f = await second.r.waitFor('An unfinished run was found');
    assert.match(f, /Resume homelab/);
    assert.match(f.replace(/\n/g, ' '), /stopped at "Clone and boot".*did not get an address/);
    await second.r.press(KEYS.enter);
    const done = await second.r.waitFor('is ready', 30_000);
    assert.match(done, /is ready/);
    assert.match(second.r.allFrames(), /Connect to Proxmox already done/, 'finished steps are found done by their check');
    assert.equal(readState(clusterDir)?.lastRun?.status, 'succeeded');
  } finally {
    second.r.unmount();
  }
});

test('q during a run stops the runner safely: running steps are cut off, the state says interrupted, exit code 130', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  mkdirSync(clusterDir, { recursive: true });
  writeFileSync(join(clusterDir, 'slow'), '');
  const { r, exits } = app(await services(stateDir));
  try {
    await wizardToRun(r);
    await r.waitFor('boot line 1', 30_000);
    await r.press('q');
    await r.waitFor(() => exits.length === 1, 30_000);
    assert.equal(exits[0]!.code, 130);
    const st = readState(clusterDir)!;
    assert.equal(st.lastRun?.status, 'interrupted');
    const unfinished = await findUnfinished(stateDir);
    assert.equal(unfinished[0]?.cluster, 'homelab');
    assert.equal(unfinished[0]?.status, 'interrupted');
  } finally {
    r.unmount();
  }
});

test('Esc from the connection back to Start, then the same preset again: what was typed is still there', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const { r } = app(await services(stateDir));
  try {
    await r.waitFor('Choose a starting point');
    await r.press(KEYS.enter);
    await r.waitFor('Proxmox connection');
    await r.type('https://kept.lan:8006');
    await r.press(KEYS.esc);
    await r.waitFor('Choose a starting point');
    await r.press(KEYS.enter);
    await r.waitFor('https://kept.lan:8006');
  } finally {
    r.unmount();
  }
});

test('a config file given on the command line opens on the connection screen with its values; a bad file shows why on Start', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const good = join(stateDir, 'lab.yaml');
  writeFileSync(good, 'preset: ha\nproxmox:\n  url: https://from-file.lan:8006\n  tokenId: root@pam!file\n');
  const svc = await services(stateDir);
  const exits: number[] = [];
  const r = render(<App services={svc} theme={colorTheme} configPath={good} onExit={(c) => exits.push(c)} />, { columns: 100, rows: 30 });
  try {
    const f = await r.waitFor('https://from-file.lan:8006');
    assert.match(f, /Token ID\s+root@pam!file/);
  } finally {
    r.unmount();
  }
  const bad = join(stateDir, 'bad.yaml');
  writeFileSync(bad, 'proxmox: [unclosed\n');
  const r2 = render(<App services={svc} theme={colorTheme} configPath={bad} onExit={() => {}} />, { columns: 100, rows: 30 });
  try {
    const f = await r2.waitFor('not valid YAML');
    assert.match(f, /Path of a config file/);
    assert.ok(f.includes(bad));
  } finally {
    r2.unmount();
  }
});

test('SIGTERM/SIGHUP (the stop signal) during a run stops it safely like q', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  mkdirSync(clusterDir, { recursive: true });
  writeFileSync(join(clusterDir, 'slow'), '');
  const stop = new AbortController();
  const exits: number[] = [];
  const r = render(<App services={await services(stateDir)} theme={colorTheme} stop={stop.signal} onExit={(c) => exits.push(c)} />, {
    columns: 100,
    rows: 30,
  });
  try {
    await wizardToRun(r);
    await r.waitFor('boot line 1', 30_000);
    stop.abort();
    await r.waitFor(() => exits.length === 1, 30_000);
    assert.equal(exits[0], 130);
    assert.equal(readState(clusterDir)?.lastRun?.status, 'interrupted');
  } finally {
    r.unmount();
  }
});

test('r after a failure retries in place: the run resumes at the failed step and reaches Done', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const clusterDir = join(stateDir, 'clusters', 'homelab');
  mkdirSync(clusterDir, { recursive: true });
  writeFileSync(join(clusterDir, 'fail-once'), '');
  const { r } = app(await services(stateDir));
  try {
    await wizardToRun(r);
    await r.waitFor('Fix:', 30_000);
    await r.press('r');
    await r.waitFor('is ready', 30_000);
    assert.equal(readState(clusterDir)?.lastRun?.status, 'succeeded');
  } finally {
    r.unmount();
  }
});

test('a finished cluster can be opened again from the Start screen: straight to Review (steps done before marked), Esc walks back through the screens', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fk3s-ui-'));
  dirs.push(stateDir);
  const first = app(await services(stateDir));
  try {
    await wizardToRun(first.r);
    await first.r.waitFor('is ready', 30_000);
  } finally {
    first.r.unmount();
  }
  const { r } = app(await services(stateDir));
  try {
    let f = await r.waitFor('Open a cluster…');
    assert.match(f, /homelab: change it or converge it again/);
    for (let i = 0; i < 3; i++) await r.press(KEYS.down);
    await r.press(KEYS.enter);
    f = await r.waitFor('Open a cluster (its saved config');
    assert.match(f, /❯ homelab — last run succeeded/);
    await r.press(KEYS.enter);
    f = await r.waitFor('[done before]');
    assert.match(f, /Connect to Proxmox \(proxmox\)\s+\[done before\]/);
    await r.press(KEYS.esc);
    await r.waitFor('Apps to install');
    await r.press(KEYS.esc);
    await r.waitFor('Node layout');
    await r.press(KEYS.enter);
    await r.waitFor('Apps to install');
    await r.press(KEYS.enter);
    await r.waitFor('[done before]');
    await r.press(KEYS.enter);
    await r.waitFor('is ready', 30_000);
  } finally {
    r.unmount();
  }
});
