/**
 * The simulator's validation really comes from the official schema: the vendored copy is the shared
 * reference file, every endpoint the simulator serves exists there with that method, and a table of
 * parameter errors matches what Proxmox answers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { clusterHandlers } from '../src/sim/api/cluster.js';
import { qemuHandlers } from '../src/sim/api/qemu.js';
import { storageHandlers } from '../src/sim/api/storage.js';
import { ApiSchema, defaultSchemaFile, loadApiSchema } from '../src/sim/schema/index.js';
import type { SchemaNode } from '../src/sim/schema/types.js';
import { parsePropertyString, perlPattern } from '../src/sim/schema/validate.js';

const SHARED = '/work/shared/reference/proxmox-ve-api.json';
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('schema source', () => {
  it('vendor/pve/apidata.json is the official schema (sha256 from the reference README)', () => {
    assert.equal(sha(defaultSchemaFile()), '33cf6b63d1c5ad4b420f7666c7e2b5eede835a6dc7d1be3bd902a1fee21d2e93');
  });

  it('is byte-identical to the shared reference copy when present', { skip: !existsSync(SHARED) && 'shared copy not present' }, () => {
    assert.equal(sha(defaultSchemaFile()), sha(SHARED));
  });

  it('every endpoint the simulator serves exists in the reference schema with that method', () => {
    const file = existsSync(SHARED) ? SHARED : defaultSchemaFile();
    const tree = JSON.parse(readFileSync(file, 'utf8')) as SchemaNode[];
    const have = new Set<string>();
    const walk = (nodes: SchemaNode[]) => {
      for (const n of nodes) {
        for (const m of Object.keys(n.info ?? {})) have.add(`${m} ${n.path}`);
        if (n.children) walk(n.children);
      }
    };
    walk(tree);
    const served = Object.keys({ ...clusterHandlers, ...storageHandlers, ...qemuHandlers });
    assert.ok(served.length >= 30, `only ${served.length} endpoints`);
    const missing = served.filter((k) => !have.has(k));
    assert.deepEqual(missing, []);
  });

  it('indexes every method of every path (649 methods; 435 paths, 431 of them with methods)', () => {
    const s = loadApiSchema();
    const tree = JSON.parse(readFileSync(defaultSchemaFile(), 'utf8')) as SchemaNode[];
    let paths = 0;
    let withInfo = 0;
    const walk = (nodes: SchemaNode[]) => nodes.forEach((n) => (paths++, n.info && withInfo++, n.children && walk(n.children)));
    walk(tree);
    assert.equal(paths, 435);
    assert.equal(s.methods.length, 649);
    assert.equal(new Set(s.methods.map((m) => m.path)).size, withInfo);
    // and each is reachable through the router
    for (const m of s.methods) {
      const concrete = m.path.replace(/\{[^}]+\}/g, 'x1');
      assert.ok(s.match(m.method, concrete).match, `${m.method} ${m.path}`);
    }
  });
});

describe('parameter errors, as Proxmox words them', () => {
  const s: ApiSchema = loadApiSchema();
  const check = (method: string, path: string, params: Record<string, unknown>) => {
    const m = s.match(method, path).match!;
    return m.route.validate({ ...params, ...m.pathParams });
  };
  // [method, path, params, field, expected message]
  const table: Array<[string, string, Record<string, unknown>, string, string]> = [
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, foo: 1 },
      'foo',
      'property is not defined in schema and the schema does not allow additional properties',
    ],
    ['POST', '/nodes/pve1/qemu', {}, 'vmid', 'property is missing and it is not optional'],
    ['POST', '/nodes/pve1/qemu', { vmid: 'abc' }, 'vmid', "type check ('integer') failed - got 'abc'"],
    ['POST', '/nodes/pve1/qemu', { vmid: 100, cores: 0 }, 'cores', 'value must have a minimum value of 1'],
    ['POST', '/nodes/pve1/qemu', { vmid: 100, name: 'bad_name' }, 'name', 'invalid format - value does not look like a valid DNS name\n'],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, net0: 'virtio,bridge=vmbr0,macaddr=01:00:00:00:00:01' },
      'net0',
      'invalid format - format error\nnet0.macaddr: invalid format - value does not look like a valid unicast MAC address\n\n',
    ],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, net0: 'bridge=vmbr0' },
      'net0',
      'invalid format - format error\nnet0.model: property is missing and it is not optional\n',
    ],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, agent: 'enabled=maybe' },
      'agent',
      "invalid format - format error\nagent.enabled: type check ('boolean') failed - got 'maybe'\n",
    ],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, ipconfig0: 'ip=10.0.0.5' },
      'ipconfig0',
      'invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n',
    ],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, scsi0: 'local-lvm:8,local-lvm:9' },
      'scsi0',
      'invalid format - duplicate key in comma-separated list property: file\n',
    ],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, vga: 'serial9' },
      'vga',
      "invalid format - format error\nvga.type: value 'serial9' does not have a value in the enumeration 'cirrus, qxl, qxl2, qxl3, qxl4, none, serial0, serial1, serial2, serial3, std, virtio, virtio-gl, vmware'\n",
    ],
    ['POST', '/nodes/pve1/qemu', { vmid: 100, serial0: 'tcp' }, 'serial0', 'value does not match the regex pattern'],
    ['GET', '/cluster/resources', { type: 'vms' }, 'type', "value 'vms' does not have a value in the enumeration 'vm, storage, node, sdn'"],
    [
      'POST',
      '/nodes/pve1/storage/local/download-url',
      { url: 'http://x/y', content: 'images', filename: 'y' },
      'content',
      "value 'images' does not have a value in the enumeration 'iso, vztmpl, import'",
    ],
    ['POST', '/nodes/pve1/qemu/100/clone', { newid: 100000000000 }, 'newid', 'invalid format - value does not look like a valid VM ID\n'],
    ['GET', '/nodes/pve1/tasks/x/log', { start: -1 }, 'start', 'value must have a minimum value of 0'],
    ['POST', '/access/ticket', { username: 'root@pam' }, 'password', 'property is missing and it is not optional'],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, smbios1: 'uuid=nope' },
      'smbios1',
      'invalid format - format error\nsmbios1.uuid: value does not match the regex pattern\n',
    ],
    [
      'POST',
      '/nodes/pve1/qemu',
      { vmid: 100, cicustom: 'user=snippets/x.ign' },
      'cicustom',
      "invalid format - format error\ncicustom.user: invalid format - unable to parse volume ID 'snippets/x.ign'\n\n",
    ],
    ['POST', '/nodes/pve1/qemu', { vmid: 100, tags: 'k3s;b@d' }, 'tags', 'invalid format - invalid characters in tag\n'],
  ];
  for (const [method, path, params, field, message] of table) {
    it(`${method} ${path} ${JSON.stringify(params)} → ${field}`, () => {
      const errors = check(method, path, params);
      assert.equal(errors[field], message, JSON.stringify(errors));
    });
  }

  it('accepts aliases and keyAlias (net0 "virtio=MAC") and default keys', () => {
    assert.deepEqual(
      check('POST', '/nodes/pve1/qemu', {
        vmid: 100,
        net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1',
        agent: '1',
        memory: '4096',
        boot: 'order=scsi0;net0',
      }),
      {},
    );
  });

  it('parses property strings like PVE::JSONSchema', () => {
    const fmt = s.get('POST', '/nodes/{node}/qemu')!.prop('net0')!.format as Record<string, never>;
    assert.deepEqual(parsePropertyString(fmt, 'virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=on', 'net0'), {
      model: 'virtio',
      macaddr: 'BC:24:11:00:00:01',
      bridge: 'vmbr0',
      firewall: 1,
    });
  });

  it('reads Perl patterns (?^:…) and {,N}', () => {
    assert.ok(perlPattern('(?^:^(0x)[0-9a-fA-F]{16})')!.test('0x0123456789abcdef'));
    assert.ok(perlPattern('[A-Za-z0-9\\-_\\s]{,8}')!.test('abc'));
    assert.ok(!perlPattern('[A-Za-z0-9\\-_\\s]{,8}')!.test('abcdefghi'));
  });
});
