/** Config: every kind of bad config is reported with its field; presets load; environment variables fill secrets. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig, loadConfigFile, listPresets, deepMerge } from '../src/config/load.js';
import { ConfigError, UserError, type ConfigIssue } from '../src/errors.js';
import { planNodes } from '../src/config/layout.js';
import { tempDir } from './helpers/cli.js';

const SECRET = '0d5c7a4e-9f1b-4c2d-8e3f-a1b2c3d4e5f6';
const proxmox = { url: 'https://pve.lan:8006', tokenId: 'root@pam!flatcar', tokenSecret: SECRET };
const base = { cluster: { name: 'test' }, proxmox };
const staticNet = { mode: 'static', cidr: '192.168.1.0/24', gateway: '192.168.1.1', firstAddress: '192.168.1.50' };

function issuesOf(doc: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ConfigIssue[] {
  try {
    resolveConfig(doc, { env });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

const BAD: Array<{ name: string; doc: Record<string, unknown>; path: string; message?: RegExp }> = [
  {
    name: 'even number of HA servers',
    doc: deepMerge(base, { nodes: { servers: { count: 2 }, vip: '192.168.1.40' } }) as never,
    path: 'nodes.servers.count',
    message: /even/,
  },
  {
    name: 'HA without a VIP',
    doc: deepMerge(base, { nodes: { servers: { count: 3 } } }) as never,
    path: 'nodes.vip',
    message: /required with 3 servers/,
  },
  { name: 'no servers', doc: deepMerge(base, { nodes: { servers: { count: 0 } } }) as never, path: 'nodes.servers.count' },
  {
    name: 'VIP inside the node address range',
    doc: deepMerge(base, { nodes: { servers: { count: 3 }, network: staticNet, vip: '192.168.1.51' } }) as never,
    path: 'nodes.vip',
    message: /inside the node addresses/,
  },
  {
    name: 'VIP outside the node network',
    doc: deepMerge(base, { nodes: { servers: { count: 3 }, network: staticNet, vip: '10.0.0.5' } }) as never,
    path: 'nodes.vip',
    message: /outside/,
  },
  {
    name: 'VIP is the gateway',
    doc: deepMerge(base, { nodes: { servers: { count: 3 }, network: staticNet, vip: '192.168.1.1' } }) as never,
    path: 'nodes.vip',
    message: /gateway/,
  },
  {
    name: 'template VMID overlapping the node range',
    doc: deepMerge(base, { flatcar: { templateVmid: 9005 } }) as never,
    path: 'flatcar.templateVmid',
    message: /overlaps/,
  },
  {
    name: 'VMID range end below start',
    doc: deepMerge(base, { nodes: { vmids: { start: 9100, end: 9000 } } }) as never,
    path: 'nodes.vmids',
    message: /below start/,
  },
  {
    name: 'VMID range too small',
    doc: deepMerge(base, { nodes: { agents: { count: 5 }, vmids: { start: 9000, end: 9003 } } }) as never,
    path: 'nodes.vmids',
    message: /room for 3/,
  },
  { name: 'VMID below 100', doc: deepMerge(base, { nodes: { vmids: { start: 5 } } }) as never, path: 'nodes.vmids.start' },
  {
    name: 'malformed CIDR',
    doc: deepMerge(base, { nodes: { network: { ...staticNet, cidr: '192.168.1.0/33' } } }) as never,
    path: 'nodes.network.cidr',
    message: /CIDR/,
  },
  { name: 'malformed cluster CIDR', doc: deepMerge(base, { cluster: { clusterCidr: '10.42.0.0' } }) as never, path: 'cluster.clusterCidr' },
  {
    name: 'malformed MAC',
    doc: deepMerge(base, { nodes: { servers: { macs: ['BC:24:11:00:00'] } } }) as never,
    path: 'nodes.servers.macs.0',
    message: /MAC/,
  },
  {
    name: 'duplicate MAC',
    doc: deepMerge(base, { nodes: { agents: { count: 2, macs: ['BC:24:11:00:00:01', 'bc:24:11:00:00:01'] } } }) as never,
    path: 'nodes.agents.macs',
    message: /duplicate/,
  },
  {
    name: 'more MACs than nodes',
    doc: deepMerge(base, { nodes: { servers: { macs: ['BC:24:11:00:00:01', 'BC:24:11:00:00:02'] } } }) as never,
    path: 'nodes.servers.macs',
  },
  {
    name: 'missing token secret',
    doc: { ...base, proxmox: { url: proxmox.url, tokenId: proxmox.tokenId } },
    path: 'proxmox.tokenSecret',
    message: /missing/,
  },
  { name: 'token secret without token id', doc: { ...base, proxmox: { url: proxmox.url, tokenSecret: SECRET } }, path: 'proxmox.tokenId' },
  {
    name: 'token secret not a UUID',
    doc: { ...base, proxmox: { ...proxmox, tokenSecret: 'hunter2' } },
    path: 'proxmox.tokenSecret',
    message: /not a Proxmox token secret/,
  },
  { name: 'no credentials', doc: { ...base, proxmox: { url: proxmox.url } }, path: 'proxmox.tokenId', message: /no credentials/ },
  { name: 'username without password', doc: { ...base, proxmox: { url: proxmox.url, username: 'root@pam' } }, path: 'proxmox.password' },
  {
    name: 'malformed token id',
    doc: { ...base, proxmox: { ...proxmox, tokenId: 'root-flatcar' } },
    path: 'proxmox.tokenId',
    message: /user@realm!tokenname/,
  },
  {
    name: 'missing proxmox URL',
    doc: { ...base, proxmox: { tokenId: proxmox.tokenId, tokenSecret: SECRET } },
    path: 'proxmox.url',
    message: /required/,
  },
  { name: 'plain http URL', doc: { ...base, proxmox: { ...proxmox, url: 'http://pve.lan:8006' } }, path: 'proxmox.url', message: /https/ },
  { name: 'malformed fingerprint', doc: { ...base, proxmox: { ...proxmox, fingerprint: 'AB:CD' } }, path: 'proxmox.fingerprint' },
  { name: 'missing proxmox block', doc: { cluster: { name: 'x' } }, path: 'proxmox', message: /required/ },
  { name: 'missing cluster name', doc: { proxmox }, path: 'cluster', message: /required/ },
  { name: 'cluster name not a DNS label', doc: { ...base, cluster: { name: 'My_Cluster' } }, path: 'cluster.name', message: /DNS label/ },
  { name: 'unknown top-level key', doc: { ...base, extra: 1 }, path: '', message: /unknown key "extra"/ },
  {
    name: 'unknown nested key',
    doc: deepMerge(base, { nodes: { servers: { cpus: 2 } } }) as never,
    path: 'nodes.servers',
    message: /unknown key "cpus"/,
  },
  {
    name: 'wrong type: count as text',
    doc: deepMerge(base, { nodes: { servers: { count: 'three' } } }) as never,
    path: 'nodes.servers.count',
    message: /wrong type/,
  },
  { name: 'wrong type: apps toggle as text', doc: deepMerge(base, { apps: { kured: 'yes' } }) as never, path: 'apps.kured' },
  {
    name: 'memory too small',
    doc: deepMerge(base, { nodes: { servers: { memory: 128 } } }) as never,
    path: 'nodes.servers.memory',
    message: /out of range/,
  },
  {
    name: 'static network without gateway',
    doc: deepMerge(base, { nodes: { network: { mode: 'static', cidr: '192.168.1.0/24', firstAddress: '192.168.1.50' } } }) as never,
    path: 'nodes.network.gateway',
    message: /required/,
  },
  {
    name: 'gateway outside the subnet',
    doc: deepMerge(base, { nodes: { network: { ...staticNet, gateway: '192.168.2.1' } } }) as never,
    path: 'nodes.network.gateway',
    message: /outside/,
  },
  {
    name: 'addresses run past the subnet',
    doc: deepMerge(base, { nodes: { agents: { count: 2 }, network: { ...staticNet, firstAddress: '192.168.1.253' } } }) as never,
    path: 'nodes.network.firstAddress',
    message: /run past/,
  },
  { name: 'bad k3s version', doc: deepMerge(base, { cluster: { k3sVersion: '1.33' } }) as never, path: 'cluster.k3sVersion' },
  { name: 'bad Flatcar channel', doc: deepMerge(base, { flatcar: { channel: 'edge' } }) as never, path: 'flatcar.channel' },
  { name: 'unknown preset', doc: { ...base, preset: 'nope' }, path: 'preset', message: /not a known preset/ },
  {
    name: 'piraeus replicas above the node count',
    doc: deepMerge(base, { apps: { piraeus: { replicas: 3 } } }) as never,
    path: 'apps.piraeus.replicas',
  },
  { name: 'bad taint', doc: deepMerge(base, { nodes: { agents: { taints: ['gpu'] } } }) as never, path: 'nodes.agents.taints.0' },
  { name: 'bad SSH key line', doc: deepMerge(base, { nodes: { sshKeys: ['not a key'] } }) as never, path: 'nodes.sshKeys.0' },
];

describe('invalid configs are reported with the field and what to do', () => {
  for (const c of BAD) {
    test(c.name, () => {
      const issues = issuesOf(c.doc);
      const hit = issues.find((i) => i.path === c.path);
      assert.ok(hit, `expected an issue at "${c.path}", got: ${JSON.stringify(issues)}`);
      if (c.message) assert.match(hit.message, c.message);
      assert.ok(!JSON.stringify(issues).includes(SECRET), 'the token secret is never echoed');
    });
  }

  test('a secret given with the wrong shape is redacted in the issue', () => {
    const issues = issuesOf({ ...base, proxmox: { ...proxmox, tokenSecret: 'hunter2-secret' } });
    assert.ok(!JSON.stringify(issues).includes('hunter2'));
    const typed = issuesOf({ ...base, proxmox: { ...proxmox, password: 12345678, username: 'root@pam' } });
    assert.ok(typed.some((i) => i.path === 'proxmox.password' && i.given === '<redacted>'));
  });

  test('schema errors and cross-field errors are reported together', () => {
    const issues = issuesOf(deepMerge(base, { nodes: { servers: { count: 2, cores: 'two' } } }) as never);
    const paths = issues.map((i) => i.path);
    assert.ok(paths.includes('nodes.servers.cores'));
    assert.ok(paths.includes('nodes.servers.count'), paths.join(', '));
    assert.ok(paths.includes('nodes.vip'));
  });

  test('ConfigError message lists every issue, and the fix says nothing changed', () => {
    try {
      resolveConfig({ cluster: { name: 'BAD' }, proxmox: { url: 'ftp://x' } }, { env: {} });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /the config has \d+ problems:\n {2}- /);
      assert.match(err.fix ?? '', /Nothing was changed/);
    }
  });
});

describe('presets', () => {
  test('homelab and ha exist and are valid with a proxmox block', () => {
    assert.deepEqual(
      listPresets().filter((p) => p === 'homelab' || p === 'ha'),
      ['ha', 'homelab'],
    );
    const home = resolveConfig({ preset: 'homelab', proxmox }, { env: {} });
    assert.equal(home.cluster.name, 'homelab');
    assert.deepEqual(
      planNodes(home).map((n) => n.name),
      ['homelab-server-1', 'homelab-agent-1', 'homelab-agent-2'],
    );
    assert.equal(home.nodes.network.mode, 'dhcp');
    const ha = resolveConfig({ preset: 'ha', proxmox }, { env: {} });
    assert.equal(ha.nodes.servers.count, 3);
    assert.equal(ha.nodes.vip, '192.168.50.10');
    assert.equal(planNodes(ha).length, 6);
    assert.ok(planNodes(ha).every((n) => n.address?.startsWith('192.168.50.')));
  });

  test('a preset without a proxmox block is incomplete', () => {
    assert.ok(issuesOf({ preset: 'homelab' }).some((i) => i.path === 'proxmox'));
  });

  test("the file's keys override the preset's, deeply", () => {
    const c = resolveConfig({ preset: 'homelab', proxmox, cluster: { name: 'mine' }, nodes: { agents: { count: 4 } } }, { env: {} });
    assert.equal(c.cluster.name, 'mine');
    assert.equal(c.nodes.agents.count, 4);
    assert.equal(c.nodes.agents.memory, 4096, 'other agent keys come from the preset');
  });

  test('defaults are filled in', () => {
    const c = resolveConfig(base, { env: {} });
    assert.equal(c.proxmox.storage.disks, 'local-lvm');
    assert.equal(c.proxmox.bridge, 'vmbr0');
    assert.equal(c.flatcar.channel, 'stable');
    assert.equal(c.nodes.servers.count, 1);
    assert.equal(c.apps.kured.enabled, false);
  });
});

describe('environment', () => {
  test('PROXMOX_VE_API_TOKEN and PROXMOX_VE_ENDPOINT fill what the file leaves unset', () => {
    const c = resolveConfig(
      { cluster: { name: 'x' } },
      { env: { PROXMOX_VE_API_TOKEN: `root@pam!ci=${SECRET}`, PROXMOX_VE_ENDPOINT: 'https://pve.lan:8006/api2/json/' } },
    );
    assert.equal(c.proxmox.tokenId, 'root@pam!ci');
    assert.equal(c.proxmox.tokenSecret, SECRET);
    assert.equal(c.proxmox.url, 'https://pve.lan:8006');
  });

  test('the file wins over the environment', () => {
    const c = resolveConfig(base, {
      env: { PROXMOX_VE_API_TOKEN: 'other@pve!x=11111111-2222-3333-4444-555555555555', PROXMOX_VE_ENDPOINT: 'https://other:8006' },
    });
    assert.equal(c.proxmox.tokenId, 'root@pam!flatcar');
    assert.equal(c.proxmox.url, 'https://pve.lan:8006');
  });

  test('username, password and fingerprint from the environment', () => {
    const fp = Array.from({ length: 32 }, () => '0F').join(':');
    const c = resolveConfig(
      { cluster: { name: 'x' }, proxmox: { url: 'https://pve:8006' } },
      { env: { PROXMOX_VE_USERNAME: 'root@pam', PROXMOX_VE_PASSWORD: 'pw-secret', PROXMOX_VE_FINGERPRINT: fp } },
    );
    assert.equal(c.proxmox.username, 'root@pam');
    assert.equal(c.proxmox.password, 'pw-secret');
    assert.equal(c.proxmox.fingerprint, fp);
  });

  test('a malformed PROXMOX_VE_API_TOKEN is reported by name without its value', () => {
    assert.throws(
      () => resolveConfig({ cluster: { name: 'x' } }, { env: { PROXMOX_VE_API_TOKEN: 'just-a-secret' } }),
      (e: unknown) => e instanceof ConfigError && e.message.includes('PROXMOX_VE_API_TOKEN') && !e.message.includes('just-a-secret'),
    );
  });
});

describe('config files', () => {
  test('YAML syntax errors name the line; a missing file says so', () => {
    const t = tempDir('fk3s-config-');
    try {
      const f = join(t.dir, 'bad.yaml');
      writeFileSync(f, 'cluster:\n  name: x\n bad: [\n');
      assert.throws(
        () => loadConfigFile(f, { env: {} }),
        (e: unknown) => e instanceof UserError && /not valid YAML at line \d+/.test(e.message),
      );
      assert.throws(
        () => loadConfigFile(join(t.dir, 'missing.yaml'), { env: {} }),
        (e: unknown) => e instanceof UserError && /does not exist/.test(e.message),
      );
      const list = join(t.dir, 'list.yaml');
      writeFileSync(list, '- a\n- b\n');
      assert.throws(
        () => loadConfigFile(list, { env: {} }),
        (e: unknown) => e instanceof UserError && /mapping/.test(e.message),
      );
    } finally {
      t.cleanup();
    }
  });

  test('a file with a preset loads and validates', () => {
    const t = tempDir('fk3s-config-');
    try {
      const f = join(t.dir, 'c.yaml');
      writeFileSync(f, `preset: ha\nproxmox:\n  url: https://pve:8006\n  username: root@pam\n  password: pw\n`);
      const c = loadConfigFile(f, { env: {} });
      assert.equal(c.cluster.name, 'ha');
      assert.equal(c.proxmox.username, 'root@pam');
    } finally {
      t.cleanup();
    }
  });
});
