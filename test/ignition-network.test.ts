/**
 * Issue #15, what the nodes get: for every preset and network mode, `render ignition --node …` shows
 * exactly one network unit per NIC (matched by its MAC) with a resolver, no console autologin, and
 * passes ignition-validate. A static node without nodes.network.dns uses the Proxmox host's DNS (as
 * Proxmox's cloud-init would), and none at all is refused.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { listPresets, resolveConfig } from '../src/config/load.js';
import { planNodes } from '../src/config/layout.js';
import { templateIgnition } from '../src/ignition/index.js';
import { ignitionValidate } from './helpers/ignition.js';
import { TOKEN_SECRET, tempDir } from './helpers/cli.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt0ZXN0a2V5Zm9ydGhlaWduaXRpb250ZXN0c3h4eHh4 test@example';
const PROXMOX = { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!flatcar', tokenSecret: TOKEN_SECRET };
const STATIC = { mode: 'static', cidr: '192.168.50.0/24', gateway: '192.168.50.1', firstAddress: '192.168.50.11' };

async function cli(args: string[], cwd: string) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end();
  const code = await runCli(args, { stdin, stdout, stderr, env: { CI: 'true' }, cwd });
  return { code, out, err };
}

interface Ign {
  storage: { files: Array<{ path: string; contents: { source: string } }> };
  kernelArguments?: { shouldExist?: string[]; shouldNotExist?: string[] };
}
const text = (source: string) =>
  source.startsWith('data:;base64,') ? Buffer.from(source.slice(13), 'base64').toString('utf8') : decodeURIComponent(source.slice(6));
const networkUnits = (ign: Ign) =>
  ign.storage.files
    .filter((f) => /^\/etc\/systemd\/network\/.*\.network$/.test(f.path))
    .map((f) => ({ path: f.path, text: text(f.contents.source) }));

/** A config file for `preset` with the network block; with `hostDns`, a state where proxmox:connect recorded the host's DNS. */
function setup(
  dir: string,
  preset: string,
  network: Record<string, unknown>,
  o: { hostDns?: string[]; extra?: Record<string, unknown> } = {},
) {
  const doc = {
    preset,
    proxmox: PROXMOX,
    nodes: { sshKeys: [KEY], network, ...(preset === 'ha' && network.mode === 'static' ? { vip: '192.168.50.10' } : {}) },
    ...o.extra,
  };
  const file = join(dir, `${preset}.yaml`);
  writeFileSync(file, stringify(doc));
  const config = resolveConfig(doc as Record<string, unknown>, { env: {} });
  const stateDir = join(dir, 'state');
  if (o.hostDns) {
    const cd = join(stateDir, 'clusters', config.cluster.name);
    mkdirSync(cd, { recursive: true });
    const outputs = { pveVersion: '9.0.3', pveNodes: ['pve'], snippetsPath: '/var/lib/vz', tlsFingerprint: '', hostDns: o.hostDns };
    writeFileSync(
      join(cd, 'state.json'),
      JSON.stringify({
        version: 1,
        cluster: config.cluster.name,
        createdAt: 1,
        updatedAt: 1,
        pins: {},
        steps: { 'proxmox:connect': { status: 'done', at: 1, outputs } },
      }),
    );
  }
  return { file, config, stateDir };
}

const MODES: Array<{ name: string; network: Record<string, unknown>; hostDns?: string[]; dns: string[] }> = [
  { name: 'dhcp', network: { mode: 'dhcp' }, dns: [] },
  { name: 'dhcp + nodes.network.dns', network: { mode: 'dhcp', dns: ['9.9.9.9'] }, dns: ['9.9.9.9'] },
  {
    name: 'static + nodes.network.dns',
    network: { ...STATIC, dns: ['192.168.50.1', '1.1.1.1'], searchDomain: 'lab.example' },
    hostDns: ['10.0.0.53'],
    dns: ['192.168.50.1', '1.1.1.1'],
  },
  { name: 'static, the Proxmox host DNS', network: STATIC, hostDns: ['10.0.0.53', '10.0.0.54'], dns: ['10.0.0.53', '10.0.0.54'] },
];

for (const preset of listPresets()) {
  describe(`preset ${preset}`, () => {
    for (const mode of MODES) {
      test(`${mode.name}: render ignition --node gives one unit per NIC with a resolver, no autologin, valid`, async () => {
        const t = tempDir();
        try {
          const s = setup(t.dir, preset, mode.network, { hostDns: mode.hostDns });
          for (const node of planNodes(s.config)) {
            const r = await cli(
              ['render', 'ignition', '--config', s.file, '--node', node.name, '--compact', '--state-dir', s.stateDir],
              t.dir,
            );
            assert.equal(r.code, 0, r.err);
            const ign = JSON.parse(r.out) as Ign;
            const units = networkUnits(ign);
            assert.equal(units.length, 1, `${node.name}: one unit for its one NIC`);
            const unit = units[0]!.text;
            assert.match(unit, new RegExp(`^MACAddress=${node.mac.toLowerCase()}$`, 'm'));
            // The preset's own nodes.network.dns (ha names one) wins over the mode's fallback, as the user's would.
            const presetDns = mode.network.dns ? undefined : s.config.nodes.network.dns.length ? s.config.nodes.network.dns : undefined;
            const dns = presetDns ?? mode.dns;
            assert.deepEqual(
              [...unit.matchAll(/^DNS=(.+)$/gm)].map((m) => m[1]),
              dns,
            );
            if (mode.network.mode === 'static') {
              assert.match(unit, new RegExp(`^Address=${node.address!.replace(/\./g, '\\.')}$`, 'm'));
              assert.ok(dns.length > 0);
              assert.doesNotMatch(unit, /DHCP=/);
            } else {
              assert.match(unit, /^DHCP=ipv4$/m);
              assert.match(unit, /^UseDNS=true$/m, 'DHCP: the lease gives the resolver');
            }
            assert.deepEqual(ign.kernelArguments, { shouldNotExist: ['flatcar.autologin'] });
            const v = await ignitionValidate(r.out);
            assert.ok(v.ok, `${node.name}: ${v.messages.join('\n')}`);
          }
        } finally {
          t.cleanup();
        }
      });
    }
  });
}

test('static addresses with no nodes.network.dns and no known host DNS: refused, naming the field', async () => {
  const t = tempDir();
  try {
    const s = setup(t.dir, 'homelab', STATIC);
    const r = await cli(['render', 'ignition', '--config', s.file, '--node', 'homelab-server-1', '--state-dir', s.stateDir], t.dir);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /no DNS server/);
    assert.match(r.err, /nodes\.network\.dns/);
  } finally {
    t.cleanup();
  }
});

test('flatcar.ignition.consoleAutologin keeps autologin, and plan warns about it', async () => {
  const t = tempDir();
  try {
    const s = setup(t.dir, 'homelab', { mode: 'dhcp' }, { extra: { flatcar: { ignition: { consoleAutologin: true } } } });
    assert.deepEqual(templateIgnition(s.config).kernelArguments, { shouldExist: ['flatcar.autologin'] });
    const plan = await cli(['plan', '--config', s.file, '--state-dir', s.stateDir], t.dir);
    assert.equal(plan.code, 0, plan.err);
    assert.match(plan.out, /WARNING: console autologin is on/);
    const off = setup(t.dir, 'homelab', { mode: 'dhcp' });
    const quiet = await cli(['plan', '--config', off.file, '--state-dir', off.stateDir], t.dir);
    assert.doesNotMatch(quiet.out, /autologin/);
    const v = await ignitionValidate(JSON.stringify(templateIgnition(s.config)));
    assert.ok(v.ok, v.messages.join('\n'));
  } finally {
    t.cleanup();
  }
});

test("crictl and ctr: /opt/bin comes first on PATH and both crictl copies use k3s's containerd", () => {
  const config = resolveConfig({ preset: 'homelab', proxmox: PROXMOX }, { env: {} });
  const files = templateIgnition(config).storage!.files!;
  const profile = text(files.find((f) => f.path === '/etc/profile.d/flatcar-k3s-opt-bin.sh')!.contents!.source);
  assert.match(profile, /PATH="\/opt\/bin:\$PATH"/);
  assert.match(profile, /CONTAINERD_ADDRESS=\/run\/k3s\/containerd\/containerd\.sock/);
  const crictl = text(files.find((f) => f.path === '/etc/crictl.yaml')!.contents!.source);
  assert.match(crictl, /^runtime-endpoint: unix:\/\/\/run\/k3s\/containerd\/containerd\.sock$/m);
});
