import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, listPresets } from '../src/config/load.js';
import { planNodes } from '../src/config/layout.js';
import type { Config } from '../src/config/schema.js';
import {
  templateIgnition,
  nodeIgnition,
  ignitionJson,
  ignitionHash,
  shortHash,
  checkCloudInitSize,
  SNIPPET_MAX_BYTES,
  type IgnitionConfig,
} from '../src/ignition/index.js';
import { UserError } from '../src/errors.js';
import { validateIgnition, ignitionValidate } from './helpers/ignition.js';

const PROXMOX = { url: 'https://pve.test:8006', tokenId: 'root@pam!t', tokenSecret: '0d5c7a4e-1111-2222-3333-444455556666' };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvT6pu8gRgbzbl1EUXzF5cJcNyDlHhz8wLq8hY5cYkD test@example';

function presetConfig(preset: string, extra: Record<string, unknown> = {}): Config {
  return resolveConfig({ preset, proxmox: PROXMOX, ...extra }, { env: {} });
}

/** A config that uses every Ignition option. */
function everyOptionConfig(): Config {
  return resolveConfig(
    {
      cluster: { name: 'every' },
      proxmox: PROXMOX,
      flatcar: {
        ignition: {
          kernelLogLevel: 3,
          maskedUnits: ['locksmithd.service', 'docker.socket', 'update-engine-stub.timer'],
          rebootStrategy: 'etcd-lock',
          volatileJournal: true,
          files: [
            { path: '/etc/motd.d/hello.conf', contents: 'Hello from flatcar-k3s — ünïcode & "quotes"\n', mode: 0o600 },
            { path: '/opt/bin/hello', contents: '#!/bin/sh\necho hi\n', mode: 0o755 },
            { path: '/etc/flatcar/update.conf', contents: 'GROUP=stable\nREBOOT_STRATEGY=off\n' },
          ],
          units: [
            {
              name: 'hello.service',
              contents:
                '[Unit]\nDescription=Hello\n\n[Service]\nType=oneshot\nExecStart=/opt/bin/hello\n\n[Install]\nWantedBy=multi-user.target\n',
            },
            { name: 'hello.timer', contents: '[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n', enabled: false },
            { name: 'locksmithd.service', enabled: false },
          ],
        },
      },
      nodes: {
        servers: { count: 3 },
        agents: { count: 2 },
        vip: '10.1.2.9',
        network: {
          mode: 'static',
          cidr: '10.1.2.0/24',
          gateway: '10.1.2.1',
          firstAddress: '10.1.2.10',
          dns: ['10.1.2.1', '1.1.1.1'],
          searchDomain: 'lab.example',
        },
        sshKeys: [KEY, 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 second'],
      },
    },
    { env: {} },
  );
}

function fileText(cfg: IgnitionConfig, path: string): string | undefined {
  const f = cfg.storage?.files?.find((x) => x.path === path);
  if (!f?.contents) return undefined;
  const src = f.contents.source;
  if (src.startsWith('data:;base64,')) return Buffer.from(src.slice('data:;base64,'.length), 'base64').toString('utf8');
  assert.ok(src.startsWith('data:,'), `unexpected source ${src.slice(0, 20)}`);
  return decodeURIComponent(src.slice('data:,'.length));
}

async function assertValid(cfg: IgnitionConfig, label: string): Promise<void> {
  const json = ignitionJson(cfg);
  const r = await validateIgnition(json);
  assert.ok(r.ok, `${label}: ${r.messages.join('\n')}`);
  assert.equal(JSON.parse(json).ignition.version, '3.3.0');
}

test('the validator itself rejects a broken config (unit without an extension, relative path)', async () => {
  const bad = await validateIgnition(
    JSON.stringify({ ignition: { version: '3.3.0' }, systemd: { units: [{ name: 'nosuffix', mask: true }] } }),
  );
  assert.equal(bad.ok, false);
  assert.match(bad.messages.join('\n'), /unit extension/);
  const rel = await ignitionValidate(JSON.stringify({ ignition: { version: '3.3.0' }, storage: { files: [{ path: 'etc/x' }] } }));
  assert.equal(rel.ok, false);
  const schema = await validateIgnition(
    JSON.stringify({ ignition: { version: '3.3.0' }, storage: { files: [{ path: '/etc/x', mode: 'rw' }] } }),
  );
  assert.match(schema.messages.join('\n'), /schema: .*mode/);
});

for (const preset of listPresets()) {
  test(`preset ${preset}: template and every node config pass ignition-validate and the 3.3.0 schema`, async () => {
    const config = presetConfig(preset, { nodes: { sshKeys: [KEY] } });
    await assertValid(templateIgnition(config), `${preset} template`);
    for (const node of planNodes(config)) await assertValid(nodeIgnition(config, node), `${preset} ${node.name}`);
  });
}

test('a config using every option passes both validators, and every option shows up', async () => {
  const config = everyOptionConfig();
  const base = templateIgnition(config);
  await assertValid(base, 'every-option template');
  const nodes = planNodes(config);
  for (const node of nodes) await assertValid(nodeIgnition(config, node), node.name);

  assert.equal(fileText(base, '/etc/sysctl.d/10-console-log-level.conf')?.match(/kernel\.printk = (.*)/)?.[1], '3 4 1 7');
  assert.equal(fileText(base, '/etc/systemd/journald.conf.d/10-volatile.conf')?.includes('Storage=volatile'), true);
  // the user's own update.conf replaces the generated one (no duplicate path)
  assert.equal(fileText(base, '/etc/flatcar/update.conf'), 'GROUP=stable\nREBOOT_STRATEGY=off\n');
  assert.equal(base.storage!.files!.filter((f) => f.path === '/etc/flatcar/update.conf').length, 1);
  assert.equal(fileText(base, '/etc/motd.d/hello.conf'), 'Hello from flatcar-k3s — ünïcode & "quotes"\n');
  assert.equal(base.storage!.files!.find((f) => f.path === '/opt/bin/hello')?.mode, 0o755);
  assert.equal(base.storage!.files!.find((f) => f.path === '/etc/motd.d/hello.conf')?.mode, 0o600);
  const units = base.systemd!.units!;
  assert.deepEqual(
    units.find((u) => u.name === 'docker.socket'),
    { name: 'docker.socket', mask: true },
  );
  // a user unit of the same name replaces the mask
  assert.deepEqual(
    units.find((u) => u.name === 'locksmithd.service'),
    { name: 'locksmithd.service', enabled: false },
  );
  assert.equal(units.find((u) => u.name === 'hello.timer')?.enabled, false);
  assert.match(units.find((u) => u.name === 'hello.service')?.contents ?? '', /ExecStart=\/opt\/bin\/hello/);
  assert.deepEqual(base.passwd?.users?.[0]?.sshAuthorizedKeys, config.nodes.sshKeys);
  // template: no hostname, no static network
  assert.equal(fileText(base, '/etc/hostname'), undefined);
  assert.equal(
    base.storage!.files!.some((f) => f.path.startsWith('/etc/systemd/network/')),
    false,
  );

  const agent2 = nodes.find((n) => n.name === 'every-agent-2')!;
  const ign = nodeIgnition(config, agent2);
  assert.equal(fileText(ign, '/etc/hostname'), 'every-agent-2\n');
  const net = fileText(ign, '/etc/systemd/network/00-every-agent-2.network')!;
  assert.match(net, new RegExp(`\\[Match\\]\\nMACAddress=${agent2.mac.toLowerCase()}\\n`));
  assert.match(net, /Address=10\.1\.2\.14\/24\n/); // 3 servers + agent 2 → the fifth address
  assert.match(net, /Gateway=10\.1\.2\.1\n/);
  assert.match(net, /DNS=10\.1\.2\.1\nDNS=1\.1\.1\.1\n/);
  assert.match(net, /Domains=lab\.example\n/);
});

test('defaults: masks, reboot strategy off, /opt/bin 0755 and on PATH, guest agent untouched', () => {
  const config = presetConfig('homelab');
  const base = templateIgnition(config);
  const masked = base.systemd!.units!.filter((u) => u.mask).map((u) => u.name);
  assert.deepEqual(masked, config.flatcar.ignition.maskedUnits);
  assert.ok(masked.includes('locksmithd.service') && masked.includes('systemd-sysupdate-reboot.timer'));
  assert.ok(!JSON.stringify(base).includes('qemu-guest-agent'));
  assert.match(fileText(base, '/etc/flatcar/update.conf')!, /^REBOOT_STRATEGY=off$/m);
  assert.match(fileText(base, '/etc/sysctl.d/10-console-log-level.conf')!, /^kernel\.printk = 4 4 1 7$/m);
  assert.deepEqual(base.storage!.directories, [{ path: '/opt/bin', overwrite: false, mode: 0o755 }]);
  assert.match(fileText(base, '/etc/profile.d/flatcar-k3s-opt-bin.sh')!, /PATH="\/opt\/bin:\$PATH"/);
  assert.equal(fileText(base, '/etc/systemd/journald.conf.d/10-volatile.conf'), undefined);
  // DHCP nodes: a hostname and one DHCP unit matched by MAC
  const node = planNodes(config)[0]!;
  const ign = nodeIgnition(config, node);
  assert.equal(fileText(ign, '/etc/hostname'), `${node.name}\n`);
  const units = ign.storage!.files!.filter((f) => f.path.startsWith('/etc/systemd/network/'));
  assert.equal(units.length, 1);
  assert.match(fileText(ign, units[0]!.path)!, /^DHCP=ipv4$/m);
});

test('masking the guest agent is refused with the field and the fix', () => {
  const config = resolveConfig(
    { cluster: { name: 'x' }, proxmox: PROXMOX, flatcar: { ignition: { maskedUnits: ['qemu-guest-agent.service'] } } },
    { env: {} },
  );
  assert.throws(
    () => templateIgnition(config),
    (e: unknown) => e instanceof UserError && e.field === 'flatcar.ignition.maskedUnits' && /guest agent/.test(e.fix ?? ''),
  );
});

test('ignitionJson is stable (key order independent of build order), ignitionHash is sha256 of it', () => {
  const a = ignitionJson({ ignition: { version: '3.3.0' }, systemd: { units: [{ mask: true, name: 'a.service' }] } });
  const b = ignitionJson({ systemd: { units: [{ name: 'a.service', mask: true }] }, ignition: { version: '3.3.0' } });
  assert.equal(a, b);
  assert.equal(a, '{"ignition":{"version":"3.3.0"},"systemd":{"units":[{"mask":true,"name":"a.service"}]}}');
  const pretty = ignitionJson(JSON.parse(a), { pretty: true });
  assert.match(pretty, /^\{\n  "ignition": \{\n    "version": "3\.3\.0"/);
  const h = ignitionHash(a);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(shortHash(h), h.slice(0, 12));
  assert.notEqual(ignitionHash(a + ' '), h);
  const config = presetConfig('homelab');
  assert.equal(ignitionJson(templateIgnition(config)), ignitionJson(templateIgnition(presetConfig('homelab'))));
});

test('snippet size limits: a file over 1 MiB and a drive over 3 MiB are refused with a fix', () => {
  const big = 'x'.repeat(SNIPPET_MAX_BYTES + 1);
  assert.throws(
    () => checkCloudInitSize([{ label: 'user-data', data: big }]),
    (e: unknown) => e instanceof UserError && /1\.00 MiB/.test(e.message) && !!e.fix,
  );
  const part = 'y'.repeat(SNIPPET_MAX_BYTES - 10);
  assert.throws(() => checkCloudInitSize([1, 2, 3, 4].map((i) => ({ label: `part${i}`, data: part }))), /at most 3\.00 MiB/);
  checkCloudInitSize([{ label: 'ok', data: part }]);
  // a real config with a huge inline file hits the limit through its JSON
  const config = resolveConfig(
    {
      cluster: { name: 'big' },
      proxmox: PROXMOX,
      flatcar: { ignition: { files: [{ path: '/etc/big', contents: 'z'.repeat(2 * SNIPPET_MAX_BYTES) }] } },
    },
    { env: {} },
  );
  const json = ignitionJson(templateIgnition(config));
  assert.throws(() => checkCloudInitSize([{ label: 'template', data: json }]), UserError);
});
