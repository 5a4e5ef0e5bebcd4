import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitDemoOverrides } from '../src/demo/overrides.js';
import { resolveConfig } from '../src/config/load.js';

const demo = {
  proxmox: { url: 'https://127.0.0.1:8006', tokenId: 'root@pam!flatcar-k3s', tokenSecret: '0d5c7a4e-9f1b-4c2d-8e3f-a1b2c3d4e5f6' },
  nodes: {
    sshPort: 22022,
    network: { cidr: '127.0.50.0/24', gateway: '127.0.50.1', firstAddress: '127.0.50.11', dns: [] },
    vip: '127.0.50.10',
  },
};

test('the demo gives a VIP only to layouts that have one (homelab stays without kube-vip)', () => {
  const homelab = resolveConfig({ preset: 'homelab' }, { env: {}, overrides: (doc) => fitDemoOverrides(demo, doc) });
  assert.equal(homelab.nodes.vip, undefined);
  assert.equal(homelab.nodes.sshPort, 22022);
  const ha = resolveConfig({ preset: 'ha' }, { env: {}, overrides: (doc) => fitDemoOverrides(demo, doc) });
  assert.equal(ha.nodes.vip, '127.0.50.10');
  assert.equal(ha.nodes.network.firstAddress, '127.0.50.11');
});

test('a draft that only names its preset is looked through (the UI passes { preset })', () => {
  assert.equal((fitDemoOverrides(demo, { preset: 'ha' }).nodes as { vip?: string }).vip, '127.0.50.10');
  assert.equal((fitDemoOverrides(demo, { preset: 'homelab' }).nodes as { vip?: string }).vip, undefined);
  assert.equal((fitDemoOverrides(demo, { preset: 'homelab', nodes: { vip: '10.0.0.5' } }).nodes as { vip?: string }).vip, '127.0.50.10');
});
