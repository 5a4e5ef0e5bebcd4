/** Pure parts of the template steps: names, tags, description, and the create parameters checked against the official PVE API schema. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/load.js';
import { vendorDir } from '../src/paths.js';
import { templateTags, templateDescription, parseTemplateDescription, versionAtLeast, templateSnippet } from '../steps/template/common.js';
import { splitTags } from '../steps/shared.js';
import { templateName } from '../src/flatcar/naming.js';
import { templateVmParams, templateCpu } from '../steps/template/vm.js';
import { templateSteps } from '../steps/template/index.js';
import { STEP } from '../steps/ids.js';

interface ApiNode {
  path: string;
  children?: ApiNode[];
  info?: Record<
    string,
    {
      parameters: {
        properties: Record<string, { type?: string; pattern?: string; format?: unknown; maxLength?: number; enum?: string[] }>;
      };
    }
  >;
}
const api = JSON.parse(readFileSync(join(vendorDir(), 'pve', 'apidata.json'), 'utf8')) as ApiNode[];
function find(nodes: ApiNode[], path: string): ApiNode | undefined {
  for (const n of nodes) {
    if (n.path === path) return n;
    const c = find(n.children ?? [], path);
    if (c) return c;
  }
  return undefined;
}
const createProps = find(api, '/nodes/{node}/qemu')!.info!.POST!.parameters.properties;

/** PVE's dns-name and pve-tag formats (PVE::JSONSchema). */
const DNS_NAME = /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)$/;
const PVE_TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

const config = resolveConfig(
  {
    preset: 'homelab',
    proxmox: { url: 'https://pve.test:8006', tokenId: 'root@pam!t', tokenSecret: '0d5c7a4e-1111-2222-3333-444455556666' },
  },
  { env: {} },
);

test('template names are DNS names, tags match the PVE tag format, the description round-trips', () => {
  assert.equal(templateName('stable', '4593.2.5'), 'flatcar-stable-4593-2-5');
  for (const ch of ['stable', 'beta', 'alpha', 'lts']) assert.match(templateName(ch, '4152.0.10'), DNS_NAME);
  const tags = splitTags(templateTags(config));
  assert.deepEqual(tags, ['flatcar-k3s', 'homelab', 'template']);
  for (const t of tags) assert.match(t, PVE_TAG);
  const d = templateDescription({
    cluster: 'homelab',
    channel: 'beta',
    version: '4757.1.0',
    ignitionHash: 'a1b2c3d4e5f6',
    toolVersion: '0.1.0',
  });
  assert.deepEqual(parseTemplateDescription(d), {
    cluster: 'homelab',
    channel: 'beta',
    version: '4757.1.0',
    ignitionHash: 'a1b2c3d4e5f6',
    tool: '0.1.0',
  });
  assert.deepEqual(parseTemplateDescription('a VM someone else made'), {
    cluster: undefined,
    channel: undefined,
    version: undefined,
    ignitionHash: undefined,
    tool: undefined,
  });
  assert.ok(d.length <= (createProps.description!.maxLength ?? Infinity));
});

test('the create parameters exist in the PVE API schema and meet its patterns', () => {
  const s = templateSnippet(config);
  const params = templateVmParams(config, {
    vmid: 9000,
    rel: {
      channel: 'stable',
      arch: 'amd64',
      requested: 'current',
      version: '4593.2.5',
      releaseDate: '',
      imageUrl: '',
      digestsUrl: '',
      sha512: 'x',
    },
    image: {
      volid: 'local:import/flatcar-stable-4593.2.5-proxmoxve.qcow2',
      mode: 'import',
      importFrom: 'local:import/flatcar-stable-4593.2.5-proxmoxve.qcow2',
    },
    snippet: { volid: `local:snippets/${s.file}`, path: '', ignitionHash: s.hash12, bytes: 1 },
  });
  for (const [key, value] of Object.entries(params)) {
    const schemaKey = key.replace(/\d+$/, '[n]');
    const prop = createProps[key] ?? createProps[schemaKey];
    assert.ok(prop, `${key} is not a parameter of POST /nodes/{node}/qemu`);
    if (prop.pattern) assert.match(String(value), new RegExp(`^(?:${prop.pattern})$`), key);
    if (prop.enum) assert.ok(prop.enum.includes(String(value)), `${key}=${value} not in ${prop.enum.join(',')}`);
  }
  assert.match(String(params.name), DNS_NAME);
  assert.equal(params.cpu, 'x86-64-v2-AES');
  assert.equal(templateCpu('arm64'), 'host');
  assert.equal(params.cicustom, `user=local:snippets/flatcar-k3s-homelab-template-${s.hash12}.ign`);
  assert.match(s.file, /^flatcar-k3s-homelab-template-[0-9a-f]{12}\.ign$/);
});

test('the five steps: ids, lanes and needs (all need proxmox:connect), a DAG in order', () => {
  const steps = templateSteps(config, { parallel: 2 });
  assert.deepEqual(
    steps.map((s) => s.id),
    ['template:release', 'template:image', 'template:snippet', 'template:vm', STEP.templateReady],
  );
  assert.equal(steps.find((s) => s.id === 'template:image')!.lane, 'pve-download');
  for (const [i, s] of steps.entries()) {
    assert.ok(s.needs.includes(STEP.proxmoxConnect), s.id);
    for (const n of s.needs)
      if (n !== STEP.proxmoxConnect)
        assert.ok(
          steps.slice(0, i).some((x) => x.id === n),
          `${s.id} needs ${n}, which comes later`,
        );
  }
});

test('versionAtLeast compares numerically', () => {
  assert.equal(versionAtLeast('8.4.1', '8.4'), true);
  assert.equal(versionAtLeast('8.10', '8.4'), true);
  assert.equal(versionAtLeast('8.3.6', '8.4'), false);
  assert.equal(versionAtLeast('9.0', '8.4'), true);
});
