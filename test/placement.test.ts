/** nodes.placement: spread, pack, explicit hosts, existing VMs that stay, the warning and the refusal. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../src/config/load.js';

const parseConfig = (doc: Record<string, unknown>) => resolveConfig(doc, { env: {} });
import { planNodes } from '../src/config/layout.js';
import { decidePlacement } from '../src/config/placement.js';
import { UserError } from '../src/errors.js';

const base = {
  cluster: { name: 'ha' },
  proxmox: { url: 'https://pve.example:8006', tokenId: 'root@pam!t', tokenSecret: '0d5c7a4e-0000-4000-8000-000000000000' },
  nodes: { servers: { count: 3 }, agents: { count: 3 }, vip: '192.168.1.40' },
};
const layout = (extra: Record<string, unknown> = {}) => planNodes(parseConfig({ ...base, nodes: { ...base.nodes, ...extra } }));
const asObj = (m: Map<string, string>) => Object.fromEntries(m);

describe('nodes.placement', () => {
  it('spread (default): servers on distinct hosts, agents balanced', () => {
    const d = decidePlacement(layout(), ['pve1', 'pve2', 'pve3'], 'spread');
    assert.deepEqual(asObj(d.placement), {
      'ha-server-1': 'pve1',
      'ha-server-2': 'pve2',
      'ha-server-3': 'pve3',
      'ha-agent-1': 'pve1',
      'ha-agent-2': 'pve2',
      'ha-agent-3': 'pve3',
    });
    assert.deepEqual(d.warnings, []);
  });

  it('spread with fewer hosts than servers: allowed, with a warning naming the hosts doubling up', () => {
    const d = decidePlacement(layout(), ['pve1', 'pve2'], 'spread');
    assert.equal(d.placement.get('ha-server-3'), 'pve1');
    assert.equal(d.warnings.length, 1);
    assert.match(d.warnings[0]!, /pve1 \(ha-server-1, ha-server-3\)/);
    assert.doesNotMatch(d.warnings[0]!, /pve2 \(/);
  });

  it('spread refuses when enough hosts exist but existing servers share one, naming the field and the fix', () => {
    const existing = new Map([
      ['ha-server-1', 'pve1'],
      ['ha-server-2', 'pve1'],
    ]);
    assert.throws(
      () => decidePlacement(layout(), ['pve1', 'pve2', 'pve3'], 'spread', existing),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.field, 'nodes.placement');
        assert.match(e.message, /ha-server-1, ha-server-2 on pve1/);
        assert.match(e.fix ?? '', /pack|explicit/);
        return true;
      },
    );
  });

  it('existing VMs keep their host; new ones avoid hosts that already have a server', () => {
    const d = decidePlacement(layout(), ['pve1', 'pve2', 'pve3'], 'spread', new Map([['ha-server-1', 'pve3']]));
    assert.deepEqual([1, 2, 3].map((i) => d.placement.get(`ha-server-${i}`)).sort(), ['pve1', 'pve2', 'pve3']);
    assert.equal(d.placement.get('ha-server-1'), 'pve3');
  });

  it('pack: everything on the first host, with the etcd warning', () => {
    const d = decidePlacement(layout(), ['pve1', 'pve2', 'pve3'], 'pack');
    assert.deepEqual(new Set(d.placement.values()), new Set(['pve1']));
    assert.match(d.warnings[0]!, /etcd servers share a PVE host: pve1 \(ha-server-1, ha-server-2, ha-server-3\)/);
  });

  it('explicit hosts win for the named nodes; the others spread; unknown hosts are refused', () => {
    const d = decidePlacement(layout(), ['pve1', 'pve2', 'pve3'], { 'ha-server-1': 'pve2', 'ha-agent-3': 'pve2' });
    assert.equal(d.placement.get('ha-server-1'), 'pve2');
    assert.equal(d.placement.get('ha-agent-3'), 'pve2');
    assert.deepEqual([1, 2, 3].map((i) => d.placement.get(`ha-server-${i}`)).sort(), ['pve1', 'pve2', 'pve3']);
    assert.throws(
      () => decidePlacement(layout(), ['pve1', 'pve2'], { 'ha-server-1': 'pve9' }),
      (e: unknown) => e instanceof UserError && e.field === 'nodes.placement.ha-server-1',
    );
  });

  it('the config accepts spread, pack and a map; a map naming an unknown node is a config error', () => {
    assert.equal(parseConfig(base).nodes.placement, 'spread');
    assert.equal(parseConfig({ ...base, nodes: { ...base.nodes, placement: 'pack' } }).nodes.placement, 'pack');
    assert.deepEqual(parseConfig({ ...base, nodes: { ...base.nodes, placement: { 'ha-server-1': 'pve2' } } }).nodes.placement, {
      'ha-server-1': 'pve2',
    });
    assert.throws(
      () => parseConfig({ ...base, nodes: { ...base.nodes, placement: { 'ha-server-9': 'pve2' } } }),
      /nodes\.placement\.ha-server-9/,
    );
    assert.throws(() => parseConfig({ ...base, nodes: { ...base.nodes, placement: 'wide' } }), /nodes\.placement/);
  });
});
