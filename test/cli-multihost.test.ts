/**
 * Issue 12's "done when", through the real commands: `demo-server --nodes 3` (local storage only) with
 * `preset: ha` and `up --yes --skip-apps` puts the three servers on three PVE nodes, each a linked clone
 * of a template on its own host, and a second `up` changes nothing on Proxmox.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { proxmoxAgent } from '../src/proxmox/tls.js';
import { stringify } from 'yaml';
import { runCliProcess, spawnCli, tempDir, waitFor } from './helpers/cli.js';

interface Info {
  url: string;
  tokenId: string;
  tokenSecret: string;
  fingerprint: string;
  config: Record<string, unknown>;
}

test('demo-server --nodes 3 + preset ha + up --yes --skip-apps: servers on 3 hosts, each from its own host template; a second up changes nothing', {
  timeout: 240_000,
}, async () => {
  const t = tempDir();
  const server = spawnCli(['demo-server', '--json', '--nodes', '3', '--speed', '0', '--state-dir', join(t.dir, 'sim')], { cwd: t.dir });
  try {
    await waitFor(() => server.stdout().includes('\n') || server.child.exitCode !== null, 60_000, 'demo-server to print its JSON line');
    const info = JSON.parse(server.stdout().split('\n')[0]!) as Info;
    const cfg = join(t.dir, 'ha.yaml');
    writeFileSync(cfg, stringify({ ...info.config, preset: 'ha', cluster: { ...(info.config.cluster as object), name: 'ha' } }));
    // the PVE certificate is pinned by the fingerprint demo-server printed, as the installer pins it
    const { agent } = proxmoxAgent({ pin: info.fingerprint });
    const get = async <T>(path: string): Promise<T> => {
      const r = await request(`${info.url}${path}`, {
        dispatcher: agent,
        headers: { authorization: `PVEAPIToken=${info.tokenId}=${info.tokenSecret}` },
      });
      return JSON.parse(await r.body.text()) as T;
    };
    const up = ['up', '--config', cfg, '--yes', '--skip-apps', '--state-dir', join(t.dir, 'state')];
    const first = await runCliProcess(up, { cwd: t.dir });
    assert.equal(first.code, 0, first.stdout.slice(-3000) + first.stderr.slice(-2000));

    const vms = (
      await get<{ data: Array<{ vmid: number; name: string; node: string; template: number }> }>('/api2/json/cluster/resources?type=vm')
    ).data;
    const templates = vms.filter((v) => v.template);
    assert.deepEqual(templates.map((v) => v.node).sort(), ['pve1', 'pve2', 'pve3']);
    const servers = vms.filter((v) => /^ha-server-\d$/.test(v.name));
    assert.deepEqual(servers.map((v) => v.node).sort(), ['pve1', 'pve2', 'pve3']);
    for (const s of servers) {
      const conf = (await get<{ data: { scsi0: string } }>(`/api2/json/nodes/${s.node}/qemu/${s.vmid}/config`)).data;
      const base = Number(/base-(\d+)-disk/.exec(conf.scsi0)?.[1]);
      assert.equal(templates.find((x) => x.vmid === base)?.node, s.node, `${s.name} is cloned from the template on ${s.node}`);
    }

    const before = (await get<Array<{ method: string }>>('/_sim/requests')).length;
    const second = await runCliProcess(up, { cwd: t.dir });
    assert.equal(second.code, 0, second.stdout.slice(-3000) + second.stderr.slice(-2000));
    const changing = (await get<Array<{ method: string; path: string }>>('/_sim/requests'))
      .slice(before)
      .filter((q) => q.method !== 'GET' && q.path !== '/access/ticket');
    assert.deepEqual(changing, []);
    await agent.close();
  } finally {
    server.child.kill('SIGINT');
    await server.done;
    t.cleanup();
  }
});
