/**
 * Issue #15, DHCP: a lease that changes across a reboot must not leave a stale node-ip. DHCP nodes get a
 * script that k3s runs before it starts (ExecStartPre drop-in): it sets node-ip to the address the NIC
 * (found by MAC) has now, and leaves the file alone when it is already right. Run here with /bin/sh and a
 * stand-in `ip` that prints what iproute2 prints on a node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_IP_SCRIPT, nodeIgnition } from '../src/ignition/index.js';
import { resolveConfig } from '../src/config/load.js';
import { planNodes } from '../src/config/layout.js';
import { TOKEN_SECRET, tempDir } from './helpers/cli.js';

const MAC = 'bc:24:11:0a:0b:0c';

function setup(dir: string, address: string) {
  const ip = join(dir, 'ip');
  writeFileSync(
    ip,
    `#!/bin/sh
case "$*" in
  "-o link") printf '1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\\n2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000\\\\    link/ether ${MAC.toUpperCase()} brd ff:ff:ff:ff:ff:ff\\n' ;;
  "-4 -o addr show dev eth0 scope global") printf '2: eth0    inet ${address}/24 metric 1024 brd 192.168.1.255 scope global dynamic eth0\\\\       valid_lft 86000sec preferred_lft 86000sec\\n' ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
`,
  );
  chmodSync(ip, 0o755);
  const script = join(dir, 'node-ip');
  writeFileSync(script, NODE_IP_SCRIPT, { mode: 0o755 });
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    '# Written by flatcar-k3s. Mode 0600: holds the cluster token.\nnode-name: lab-agent-1\nnode-ip: 192.168.1.23\ntoken: x\n',
    { mode: 0o600 },
  );
  const run = () => spawnSync('/bin/sh', [script, config, MAC], { encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin` } });
  return { config, run };
}

test('a changed lease: node-ip is rewritten to the new address, nothing else changes', () => {
  const t = tempDir();
  try {
    const s = setup(t.dir, '192.168.1.57');
    const r = s.run();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /node-ip: 192\.168\.1\.23 -> 192\.168\.1\.57/);
    assert.equal(
      readFileSync(s.config, 'utf8'),
      '# Written by flatcar-k3s. Mode 0600: holds the cluster token.\nnode-name: lab-agent-1\nnode-ip: 192.168.1.57\ntoken: x\n',
    );
    assert.equal(statSync(s.config).mode & 0o777, 0o600);
  } finally {
    t.cleanup();
  }
});

test('the same lease: the file is left alone (k3s sees no change)', () => {
  const t = tempDir();
  try {
    const s = setup(t.dir, '192.168.1.23');
    const before = statSync(s.config).mtimeMs;
    const r = s.run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(readFileSync(s.config, 'utf8'), /^node-ip: 192\.168\.1\.23$/m);
    assert.equal(statSync(s.config).mtimeMs, before);
  } finally {
    t.cleanup();
  }
});

test('DHCP nodes get the script and the k3s drop-in with their MAC; static nodes do not', () => {
  const PROXMOX = { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!flatcar', tokenSecret: TOKEN_SECRET };
  const dhcp = resolveConfig({ preset: 'homelab', proxmox: PROXMOX }, { env: {} });
  for (const node of planNodes(dhcp)) {
    const ign = nodeIgnition(dhcp, node);
    assert.ok(ign.storage!.files!.some((f) => f.path === '/opt/bin/flatcar-k3s-node-ip' && f.mode === 0o755));
    const unit = ign.systemd!.units!.find((u) => u.name === (node.role === 'server' ? 'k3s.service' : 'k3s-agent.service'));
    assert.match(
      unit?.dropins?.[0]?.contents ?? '',
      new RegExp(`ExecStartPre=-/opt/bin/flatcar-k3s-node-ip /etc/rancher/k3s/config.yaml ${node.mac.toLowerCase()}`),
    );
  }
  const stat = resolveConfig(
    {
      preset: 'homelab',
      proxmox: PROXMOX,
      nodes: { network: { mode: 'static', cidr: '10.0.0.0/24', gateway: '10.0.0.1', firstAddress: '10.0.0.10', dns: ['10.0.0.1'] } },
    },
    { env: {} },
  );
  const ign = nodeIgnition(stat, planNodes(stat)[0]!);
  assert.ok(!ign.storage!.files!.some((f) => f.path === '/opt/bin/flatcar-k3s-node-ip'));
});
