/**
 * A client nobody here wrote: Debian's python3-proxmoxer (installed by .ci/run) creates, reads, lists
 * and deletes a VM on the simulator with an API token and gets real Proxmox's types back (nextid as a
 * string, integers where Proxmox sends integers). TLS is verified: requests trusts the simulator's
 * certificate through REQUESTS_CA_BUNDLE (proxmoxer passes verify_ssl=True through), and without it the
 * same client refuses the connection.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../src/sim/index.js';

const run = promisify(execFile);
// Debian's interpreter: the package installs into its dist-packages (another python3 on PATH may not see it)
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'fixtures', 'proxmoxer-client.py');

async function hasProxmoxer(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await run(PYTHON, ['-c', 'import proxmoxer, requests']);
    return true;
  } catch {
    return false;
  }
}
// CI installs python3-proxmoxer: there a missing package is a failure, not a skip
const available = await hasProxmoxer();
const skip = !available && !process.env.CI ? 'python3-proxmoxer is not installed (apt-get install python3-proxmoxer)' : false;

let sim: Simulator;
let dir: string;
let caFile: string;

before(async () => {
  sim = await startSimulator({ speed: 0, sshHost: false });
  dir = mkdtempSync(join(tmpdir(), 'proxmoxer-'));
  caFile = join(dir, 'pve-ca.pem');
  writeFileSync(caFile, sim.certPem);
});
after(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const u = new URL(sim.url);
  // no proxy between the client and loopback; the system CAs only unless the test adds the simulator's
  const { REQUESTS_CA_BUNDLE: _a, CURL_CA_BUNDLE: _b, HTTPS_PROXY: _c, https_proxy: _d, ...rest } = process.env;
  return {
    ...rest,
    NO_PROXY: '*',
    SIM_HOST: u.hostname,
    SIM_PORT: u.port,
    SIM_TOKEN_ID: sim.token.tokenId,
    SIM_TOKEN_SECRET: sim.token.tokenSecret,
    ...extra,
  };
}

describe('python3-proxmoxer against the simulator', { skip }, () => {
  it('is available where CI runs', () => assert.ok(available, 'python3-proxmoxer must be installed (.ci/run installs it)'));

  it('refuses the simulator without its CA (TLS is really verified)', async () => {
    const { stdout } = await run(PYTHON, [SCRIPT], { env: env({ PROBE_UNTRUSTED: '1' }) });
    assert.deepEqual(JSON.parse(stdout), { verified: true, error: 'SSLError' });
  });

  it('creates, reads, lists and deletes a VM and sees real Proxmox types', async () => {
    const { stdout, stderr } = await run(PYTHON, [SCRIPT], { env: env({ REQUESTS_CA_BUNDLE: caFile }) });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(out.nextid, { value: '100', type: 'str' }, stderr);
    assert.equal(out.create_upid_type, 'str');
    assert.deepEqual(out.create_task, {
      exitstatus: 'OK',
      types: { pid: 'int', pstart: 'int', starttime: 'int', endtime: 'int', status: 'str', upid: 'str' },
    });
    assert.deepEqual(out.config, { name: 'from-proxmoxer', types: { name: 'str', cores: 'int', digest: 'str', scsi0: 'str' } });
    assert.deepEqual(out.listed, { count: 1, types: { vmid: 'int', name: 'str', status: 'str', maxmem: 'int', cpus: 'int' } });
    assert.deepEqual(out.resources, { vmid: 'int', node: 'str', maxmem: 'int', template: 'int', id: 'str' });
    assert.deepEqual(out.status, { status: 'stopped', types: { vmid: 'int', status: 'str', ha: 'dict', uptime: 'int' } });
    assert.equal(out.delete_task, 'OK');
    assert.equal(out.after_delete_listed, 0);
    const gone = out.read_deleted as { status: number; message: string };
    assert.equal(gone.status, 500);
    assert.match(gone.message, /Configuration file 'nodes\/pve1\/qemu-server\/100\.conf' does not exist/);
    assert.equal(sim.state.vms.has(100), false);
  });
});
