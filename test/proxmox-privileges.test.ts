/**
 * Issue #15, Proxmox rights: `proxmox:connect` reads the token's effective privileges (GET
 * /access/permissions) and refuses, before anything is created, a token missing one, naming it and the
 * pveum command that grants it. The privilege list differs by PVE major version (VM.Monitor on 8,
 * VM.GuestAgent.Audit on 9); a token with exactly the README's role for its version builds the cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startE2e } from './e2e-harness.js';
import { resolveConfig } from '../src/config/load.js';
import { agentPrivilege, rolePrivileges } from '../src/proxmox/privileges.js';

for (const [pveVersion, agent, absent] of [
  ['8.4.1', 'VM.Monitor', 'VM.GuestAgent.Audit'],
  ['9.0.3', 'VM.GuestAgent.Audit', 'VM.Monitor'],
] as const) {
  test(`PVE ${pveVersion}: the role list has ${agent} and not ${absent}`, () => {
    assert.equal(agentPrivilege(pveVersion), agent);
    const role = rolePrivileges(pveVersion);
    assert.ok(role.includes(agent));
    assert.ok(!role.includes(absent));
  });

  test(`PVE ${pveVersion}: a token without ${agent} is refused by up before anything is created, naming it and the command`, async () => {
    const env = await startE2e({ preset: 'homelab', pveVersion });
    try {
      const token = env.sim.addToken(
        'nomonitor',
        rolePrivileges(pveVersion).filter((p) => p !== agent),
      );
      const config = resolveConfig({ ...env.raw, proxmox: { ...(env.raw.proxmox as object), ...token } }, { env: {} });
      const mark = env.sim.requests().length;
      const r = await env.up({ config });
      assert.equal(r.status, 'failed');
      const failed = env.events.filter((e) => e.type === 'step' && e.status === 'failed') as Array<{
        id: string;
        error?: { message: string; fix?: string };
      }>;
      assert.deepEqual(
        failed.map((f) => f.id),
        ['proxmox:connect'],
      );
      const err = failed[0]!.error!;
      assert.match(err.message, new RegExp(`lacks ${agent.replace(/\./g, '\\.')} on /vms`));
      assert.match(err.fix ?? '', new RegExp(`pveum acl modify /vms --tokens 'root@pam!nomonitor' --roles PVEVMAdmin`));
      assert.doesNotMatch(err.message, new RegExp(absent.replace(/\./g, '\\.')));
      assert.deepEqual(env.changingSince(mark), [], 'nothing was created or changed on Proxmox');
      assert.equal(env.sim.state.vms.size, 0);
    } finally {
      await env.close();
    }
  });

  test(`PVE ${pveVersion}: a token with the role's privileges builds the cluster`, async () => {
    const env = await startE2e({ preset: 'homelab', pveVersion });
    try {
      // + Datastore.Allocate: without it `local` is taken to be at /var/lib/vz, which the simulator's is not.
      const token = env.sim.addToken('role', [...rolePrivileges(pveVersion), 'Datastore.Allocate']);
      const config = resolveConfig({ ...env.raw, proxmox: { ...(env.raw.proxmox as object), ...token } }, { env: {} });
      const r = await env.up({ config });
      const failed = env.events.filter((e) => e.type === 'step' && e.status === 'failed');
      assert.equal(r.status, 'succeeded', JSON.stringify(failed, null, 2));
    } finally {
      await env.close();
    }
  });
}

test('docs/proxmox.md gives the role command of each major version with exactly its privilege list', async () => {
  const { readFileSync } = await import('node:fs');
  const doc = readFileSync(new URL('../docs/proxmox.md', import.meta.url), 'utf8');
  for (const [v, label] of [
    ['8.4.1', 'Proxmox VE 8:'],
    ['9.0.3', 'Proxmox VE 9:'],
  ] as const) {
    const after = doc.slice(doc.indexOf(label));
    const cmd = /pveum role add FlatcarK3s --privs "([^"]+)"/.exec(after)?.[1];
    assert.deepEqual(cmd?.split(' '), rolePrivileges(v), label);
  }
});
