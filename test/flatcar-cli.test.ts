/** `flatcar-k3s versions` and `flatcar-k3s render ignition` through their command modules. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import * as versions from '../src/cli/commands/versions.js';
import * as render from '../src/cli/commands/render.js';
import type { CliIo } from '../src/cli/io.js';
import { validateIgnition } from './helpers/ignition.js';

const SAMPLE = readFileSync(new URL('./fixtures/flatcar-releases-sample.json', import.meta.url), 'utf8');

let server: Server;
let base = '';
let dir = '';
let serve = true;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flatcar-cli-'));
  server = createServer((req, res) => {
    if (serve && req.url === '/feed/releases-stable.json') res.writeHead(200).end(SAMPLE);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

function io(): CliIo & { out(): string; err(): string } {
  const chunks = { out: '', err: '' };
  const sink = (k: 'out' | 'err') =>
    new Writable({
      write(c, _e, cb) {
        chunks[k] += String(c);
        cb();
      },
    });
  return {
    stdin: new PassThrough(),
    stdout: sink('out'),
    stderr: sink('err'),
    env: {},
    cwd: dir,
    out: () => chunks.out,
    err: () => chunks.err,
  };
}

async function writeConfig(name: string, extra = ''): Promise<string> {
  const file = join(dir, name);
  await writeFile(
    file,
    `preset: ha
proxmox: { url: "https://pve.test:8006", tokenId: "root@pam!t", tokenSecret: "0d5c7a4e-1111-2222-3333-444455556666" }
flatcar: { feedBaseUrl: "${base}/feed" }
${extra}`,
  );
  return file;
}

test('versions: table newest first with current marked; JSON; offline from the cache with its age', async () => {
  const cfg = await writeConfig('v.yaml');
  const stateDir = join(dir, 'state');
  const a = io();
  assert.equal(await versions.run(['--config', cfg, '--state-dir', stateDir], a), 0);
  const lines = a.out().trim().split('\n');
  assert.match(lines[0]!, /^VERSION\s+RELEASED\s+KERNEL\s+SYSTEMD\s+IGNITION$/);
  assert.match(lines[1]!, /^4593\.2\.5\s+2026-08-13\s+6\.12\.102\s+257\s+2\.24\.0\s+\(current\)$/);
  assert.deepEqual(
    lines.slice(1).map((l) => l.split(/\s+/)[0]),
    ['4593.2.5', '4593.2.4', '4593.2.3'],
  ); // 1688.5.3 has no Proxmox image

  const j = io();
  assert.equal(await versions.run(['--config', cfg, '--state-dir', stateDir, '--json'], j), 0);
  const doc = JSON.parse(j.out()) as { current: string; source: string; releases: Array<{ version: string; kernel: string }> };
  assert.equal(doc.current, '4593.2.5');
  assert.equal(doc.source, 'network');
  assert.equal(doc.releases[2]!.version, '4593.2.3');

  serve = false;
  try {
    const off = io();
    assert.equal(await versions.run(['--config', cfg, '--state-dir', stateDir], off), 0);
    assert.match(off.err(), /from the cache \(fetched \d+ s ago/);
    assert.match(off.err(), /HTTP 404/);
    assert.match(off.out(), /^4593\.2\.5 /m);
    const none = io();
    assert.equal(await versions.run(['--config', cfg, '--state-dir', join(dir, 'empty-state')], none), 1);
    assert.match(none.err(), /Cannot fetch the Flatcar stable releases feed/);
  } finally {
    serve = true;
  }
  await assert.rejects(versions.run(['--channel', 'edge', '--config', cfg, '--state-dir', stateDir], io()), /Unknown channel "edge"/);
});

test('render ignition: template and node configs are valid; unknown node and missing target are usage errors', async () => {
  const cfg = await writeConfig('r.yaml');
  const t = io();
  assert.equal(await render.run(['ignition', '--config', cfg], t), 0);
  assert.ok((await validateIgnition(t.out())).ok);
  assert.ok(!t.out().includes('/etc/hostname'));
  assert.match(t.err(), /template: sha256 [0-9a-f]{64}/);

  const n = io();
  assert.equal(await render.run(['ignition', '--config', cfg, '--node', 'ha-agent-2', '--compact'], n), 0);
  assert.equal(n.out().trim().split('\n').length, 1);
  const doc = JSON.parse(n.out()) as { storage: { files: Array<{ path: string }> } };
  assert.ok(doc.storage.files.some((f) => f.path === '/etc/hostname'));
  assert.ok(doc.storage.files.some((f) => f.path === '/etc/systemd/network/00-ha-agent-2.network'));
  assert.ok((await validateIgnition(n.out().trim())).ok);

  await assert.rejects(render.run(['ignition', '--config', cfg, '--node', 'nope'], io()), /No node "nope".*ha-server-1/);
  await assert.rejects(render.run(['--config', cfg], io()), /Say what to render/);
  await assert.rejects(render.run(['ignition'], io()), /--config FILE is required/);
});
