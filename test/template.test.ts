/**
 * The template steps against the Proxmox simulator (real HTTPS API, real download-url of loopback
 * URLs with checksum verification) and a real OpenSSH sshd standing in for the PVE host's SSH, whose
 * SFTP writes into the simulator's storage dir (so the simulator sees the uploaded snippet).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSimulator, type Simulator, type SimOptions } from '../src/sim/index.js';
import { createProxmoxClient } from '../src/proxmox/client.js';
import { createSshConnector } from '../src/ssh/client.js';
import { SshConnectError } from '../src/ssh/errors.js';
import type { SshConnector } from '../src/ssh/types.js';
import type { ProxmoxClient } from '../src/proxmox/types.js';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { RemoteError, UserError } from '../src/errors.js';
import { fillFlatcarMirror, fakeQcow2 } from '../src/flatcar/demo-mirror.js';
import { PROXMOXVE_IMAGE_FILE } from '../src/flatcar/image.js';
import { templateIgnition, ignitionJson, ignitionHash } from '../src/ignition/index.js';
import { templateSteps, TEMPLATE_STEP } from '../steps/template/index.js';
import { STEP, type ProxmoxFacts, type TemplateOutputs } from '../steps/ids.js';
import type { RunOptions, StepOutputs } from '../steps/types.js';
import { startSshd, type Sshd } from './helpers/sshd.js';
import { createStepHarness, type StepHarness } from './helpers/step-context.js';

let sshd: Sshd;
const open: Array<{ close(): Promise<void> }> = [];

before(async () => {
  sshd = await startSshd();
});
after(async () => {
  for (const o of open.reverse()) await o.close().catch(() => undefined);
  await sshd?.stop();
});

interface Env {
  sim: Simulator;
  /** The config document before validation (for variants). */
  raw: Record<string, unknown>;
  config: Config;
  client: ProxmoxClient;
  facts: ProxmoxFacts;
  /** A fresh harness (a new run); `carry` = the outputs recorded by an earlier run. */
  run(opts?: { options?: Partial<RunOptions>; carry?: StepHarness; ssh?: SshConnector; fetch?: typeof fetch }): {
    h: StepHarness;
    steps: ReturnType<typeof templateSteps>;
  };
  changing(): string[];
}

async function setup(
  o: { sim?: SimOptions; login?: boolean; config?: Record<string, unknown>; hostKey?: boolean; storage?: Record<string, string> } = {},
): Promise<Env> {
  const sim = await startSimulator({ speed: 0.01, sshHost: false, ...o.sim });
  open.push(sim);
  const overrides = fillFlatcarMirror(sim.mirror);
  const auth = o.login
    ? { username: sim.login.username, password: sim.login.password }
    : { tokenId: sim.token.tokenId, tokenSecret: sim.token.tokenSecret };
  const raw = deepMerge(
    {
      cluster: { name: 'lab' },
      proxmox: {
        url: sim.url,
        ...auth,
        fingerprint: sim.fingerprint,
        ...(o.storage ? { storage: o.storage } : {}),
        ssh: {
          host: sshd.host,
          port: sshd.port,
          user: sshd.user,
          privateKeyFile: sshd.clientKeyPath,
          ...(o.hostKey === false ? {} : { hostKey: sshd.hostKeyFingerprint }),
        },
      },
      flatcar: overrides.flatcar,
    },
    o.config ?? {},
  ) as Record<string, unknown>;
  const config = resolveConfig(raw, { env: {} });
  const { client } = await createProxmoxClient(
    { url: sim.url, ...auth, fingerprint: sim.fingerprint },
    { taskPollMs: 20, retryBaseMs: 10, retryMaxMs: 50 },
  );
  const version = (await client.version()).version;
  const facts: ProxmoxFacts = { pveVersion: version, pveNodes: [sim.node], snippetsPath: sim.storageRoot, tlsFingerprint: sim.fingerprint };
  const harnesses: StepHarness[] = [];
  open.push({ close: async () => harnesses.forEach((h) => h.cleanup()) });
  let mark = 0;
  return {
    sim,
    raw,
    config,
    client,
    facts,
    run(r = {}) {
      const outputs: Record<string, StepOutputs> = r.carry
        ? Object.fromEntries(r.carry.outputs)
        : { [STEP.proxmoxConnect]: facts as unknown as StepOutputs };
      const h = createStepHarness({
        config,
        proxmox: async () => client,
        ssh: r.ssh ?? createSshConnector(),
        outputs,
        options: { yes: false, ...r.options },
        pins: r.carry ? Object.fromEntries(r.carry.pins) : {},
      });
      harnesses.push(h);
      mark = sim.requests().length;
      return { h, steps: templateSteps(config, h.options, { fetch: r.fetch }) };
    },
    /** Requests since the last run() that change something (login excluded). */
    changing: () =>
      sim
        .requests()
        .slice(mark)
        .filter((q) => q.method !== 'GET' && q.path !== '/access/ticket')
        .map((q) => `${q.method} ${q.path}`),
  };
}

const vias = (records: Array<{ id: string; via: string }>) => Object.fromEntries(records.map((r) => [r.id, r.via]));

test('fresh build, then a second run changes nothing, then --recreate-template rebuilds', async () => {
  const env = await setup();
  const { h, steps } = env.run();
  const records = await h.runSteps(steps);
  assert.deepEqual(vias(records), {
    'template:release': 'run',
    'template:image': 'run',
    'template:snippet': 'run',
    'template:vm': 'run',
    'template:ready': 'run',
  });

  // release: current = newest of the sample feed; checksum = the mirror image's real sha512
  const rel = h.outputs.get(TEMPLATE_STEP.release)!;
  assert.equal(rel.version, '4593.2.5');
  const image = fakeQcow2('4593.2.5');
  assert.equal(rel.sha512, createHash('sha512').update(image).digest('hex'));

  // image: download-url into import content with the checksum, the file is on the storage
  const dl = env.sim.requests().find((q) => q.method === 'POST' && q.path.endsWith('/download-url'))!;
  assert.equal(dl.params.content, 'import');
  assert.equal(dl.params.filename, 'flatcar-stable-4593.2.5-proxmoxve.qcow2');
  assert.equal(dl.params.checksum, rel.sha512);
  assert.equal(dl.params['checksum-algorithm'], 'sha512');
  assert.equal(dl.params.url, `${env.sim.mirror.url}/flatcar/stable/amd64-usr/4593.2.5/${PROXMOXVE_IMAGE_FILE}`);
  assert.deepEqual(readFileSync(join(env.sim.storageRoot, 'import', 'flatcar-stable-4593.2.5-proxmoxve.qcow2')), image);

  // snippet: the template Ignition, named by its hash, written through the real sshd
  const json = ignitionJson(templateIgnition(env.config));
  const hash12 = ignitionHash(json).slice(0, 12);
  const snippetFile = join(env.sim.storageRoot, 'snippets', `flatcar-k3s-lab-template-${hash12}.ign`);
  assert.equal(readFileSync(snippetFile, 'utf8'), json);
  assert.equal(h.outputs.get(TEMPLATE_STEP.snippet)!.volid, `local:snippets/flatcar-k3s-lab-template-${hash12}.ign`);

  // vm: created with the documented parameters, then converted
  const create = env.sim.requests().find((q) => q.method === 'POST' && /^\/nodes\/[^/]+\/qemu$/.test(q.path))!;
  assert.equal(create.params.name, 'flatcar-stable-4593-2-5');
  assert.equal(create.params.vmid, '9000');
  assert.equal(create.params.scsi0, 'local-lvm:0,import-from=local:import/flatcar-stable-4593.2.5-proxmoxve.qcow2,discard=on,iothread=1');
  assert.equal(create.params.scsihw, 'virtio-scsi-single');
  assert.equal(create.params.ide2, 'local-lvm:cloudinit');
  assert.equal(create.params.cicustom, `user=local:snippets/flatcar-k3s-lab-template-${hash12}.ign`);
  assert.equal(create.params.serial0, 'socket');
  assert.equal(create.params.vga, 'serial0');
  assert.equal(create.params.agent, 'enabled=1');
  assert.equal(create.params.net0, 'virtio,bridge=vmbr0');
  assert.equal(create.params.cpu, 'x86-64-v2-AES');
  assert.equal(create.params.tags, 'flatcar-k3s;lab;template');
  assert.match(String(create.params.description), new RegExp(`flatcar: stable 4593\\.2\\.5\\nignition: ${hash12}\\ntool: flatcar-k3s \\d`));
  const out = h.outputs.get(STEP.templateReady) as unknown as TemplateOutputs;
  assert.deepEqual(out, {
    templateVmid: 9000,
    templateNode: env.sim.node,
    templateName: 'flatcar-stable-4593-2-5',
    flatcarVersion: '4593.2.5',
    ignitionHash: hash12,
  });
  const st = await env.client.vmStatus(env.sim.node, 9000);
  assert.equal(st.template, true);

  // second run with the recorded state: everything done by check, no changing request
  const again = env.run({ carry: h });
  const r2 = await again.h.runSteps(again.steps);
  assert.deepEqual(new Set(r2.map((r) => r.via)), new Set(['check']));
  assert.deepEqual(env.changing(), []);

  // a run that lost its state (fresh state dir): re-resolves the release, reuses everything else
  const lost = env.run();
  const r3 = await lost.h.runSteps(lost.steps);
  assert.deepEqual(vias(r3), {
    'template:release': 'run',
    'template:image': 'check',
    'template:snippet': 'check',
    'template:vm': 'check',
    'template:ready': 'check',
  });
  assert.deepEqual(env.changing(), []);
  assert.deepEqual(lost.h.outputs.get(STEP.templateReady), out as unknown as StepOutputs);

  // --recreate-template: the same VMID is deleted and rebuilt; image and snippet are reused
  const re = env.run({ carry: h, options: { recreateTemplate: true } });
  const r4 = await re.h.runSteps(re.steps);
  assert.equal(vias(r4)['template:vm'], 'run');
  assert.equal(vias(r4)['template:ready'], 'run');
  assert.equal(vias(r4)['template:image'], 'check');
  const changed = env.changing();
  assert.ok(changed.includes(`DELETE /nodes/${env.sim.node}/qemu/9000`), changed.join('\n'));
  assert.ok(changed.includes(`POST /nodes/${env.sim.node}/qemu`));
  assert.ok(!changed.some((c) => c.endsWith('/download-url')));
  assert.equal((await env.client.vmStatus(env.sim.node, 9000)).template, true);

  // --recreate-template while a linked clone depends on it: refused, naming the clone; nothing deleted
  const up = await env.client.cloneVm(env.sim.node, 9000, { newid: 9001, name: 'lab-server-1' });
  await env.client.waitTask(env.sim.node, up);
  const blocked = env.run({ carry: re.h, options: { recreateTemplate: true } });
  await assert.rejects(
    blocked.h.runSteps(blocked.steps),
    (e: unknown) =>
      e instanceof UserError &&
      /linked clone/.test(e.message) &&
      /lab-server-1 \(VMID 9001/.test(e.message) &&
      /without --recreate-template/.test(e.fix ?? ''),
  );
  assert.ok(!env.changing().some((c) => c.startsWith('DELETE')));
  assert.equal((await env.client.vmStatus(env.sim.node, 9000)).template, true);

  // a changed Ignition (new hash) builds a new template beside the old one, which keeps its clone
  const cfg2 = resolveConfig(deepMerge(env.raw, { flatcar: { ignition: { kernelLogLevel: 2 } } }) as Record<string, unknown>, { env: {} });
  const h5 = createStepHarness({
    config: cfg2,
    proxmox: async () => env.client,
    ssh: createSshConnector(),
    outputs: Object.fromEntries(re.h.outputs),
    options: {},
  });
  open.push({ close: async () => h5.cleanup() });
  const r5 = await h5.runSteps(templateSteps(cfg2, h5.options));
  assert.equal(vias(r5)['template:snippet'], 'run');
  assert.equal(vias(r5)['template:vm'], 'run');
  const out5 = h5.outputs.get(STEP.templateReady) as unknown as TemplateOutputs;
  assert.notEqual(out5.templateVmid, 9000);
  assert.notEqual(out5.ignitionHash, hash12);
  assert.ok(out5.templateVmid > env.config.nodes.vmids.end);
  assert.equal((await env.client.vmStatus(env.sim.node, 9000)).template, true);
  assert.match(h5.logText(), /older template flatcar-stable-4593-2-5; kept/);
});

test('resume after a failure at each step redoes only what is missing', async () => {
  const env = await setup({ config: { flatcar: { version: '4593.2.4' } } });
  const names = ['template:release', 'template:image', 'template:snippet', 'template:vm', 'template:ready'];

  // release: the feed cannot be fetched (and nothing is cached)
  let feedCalls = 0;
  const flaky: typeof fetch = async (input, init) => {
    if (feedCalls++ === 0) throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
    return fetch(input, init);
  };
  let run = env.run({ fetch: flaky });
  await assert.rejects(run.h.runSteps(run.steps), (e: unknown) => e instanceof RemoteError && /releases feed/.test(e.message) && !!e.fix);
  assert.deepEqual(env.changing(), []);
  run = env.run({ carry: run.h, fetch: flaky });

  // image: the download task fails once
  env.sim.faults.add('task:download#1=download failed: 503 Service Unavailable');
  await assert.rejects(
    run.h.runSteps(run.steps),
    (e: unknown) => e instanceof RemoteError && /could not download/.test(e.message) && /reaches/.test(e.fix ?? ''),
  );
  assert.equal(run.h.outputs.get('template:release')?.version, '4593.2.4');

  // snippet: SSH to the PVE host is refused once
  let sshCalls = 0;
  const real = createSshConnector();
  const flakySsh: SshConnector = {
    connect: async (t, o) => {
      if (sshCalls++ === 0)
        throw new SshConnectError(`connect ECONNREFUSED ${t.host}:${t.port}`, { code: 'ECONNREFUSED', retryable: true });
      return real.connect(t, o);
    },
  };
  run = env.run({ carry: run.h, ssh: flakySsh });
  await assert.rejects(
    run.h.runSteps(run.steps),
    (e: unknown) => e instanceof UserError && /Cannot reach SSH on the Proxmox host/.test(e.message) && e.field === 'proxmox.ssh.host',
  );
  assert.ok(run.h.outputs.has('template:image'));

  // vm: the create task fails once
  env.sim.faults.add('task:qmcreate#1=unable to create VM 9000 - no space left on device');
  run = env.run({ carry: run.h, ssh: flakySsh });
  let records = await run.h.runSteps(run.steps.slice(0, 3));
  assert.deepEqual(
    records.map((r) => r.via),
    ['check', 'check', 'run'],
  );
  await assert.rejects(
    run.h.runStep(run.steps[3]!),
    (e: unknown) => e instanceof RemoteError && /Creating the template VM/.test(e.message) && /Free space/.test(e.fix ?? ''),
  );

  // ready: converting fails once
  env.sim.faults.add('task:qmtemplate#1=got timeout');
  run = env.run({ carry: run.h });
  records = await run.h.runSteps(run.steps.slice(0, 4));
  assert.deepEqual(
    records.map((r) => r.via),
    ['check', 'check', 'check', 'run'],
  );
  await assert.rejects(run.h.runStep(run.steps[4]!), /got timeout/);
  // like qemu-server, Proxmox wrote "template: 1" before its worker failed: a template without a base disk
  assert.equal((await env.client.vmStatus(env.sim.node, 9000)).template, true);

  // the last resume rebuilds that half-converted VM (nothing can be cloned from it) and converts it
  run = env.run({ carry: run.h });
  records = await run.h.runSteps(run.steps);
  assert.deepEqual(Object.fromEntries(records.map((r, i) => [names[i], r.via])), {
    'template:release': 'check',
    'template:image': 'check',
    'template:snippet': 'check',
    'template:vm': 'run',
    'template:ready': 'run',
  });
  assert.deepEqual(env.changing(), [
    `DELETE /nodes/${env.sim.node}/qemu/9000`,
    `POST /nodes/${env.sim.node}/qemu`,
    `POST /nodes/${env.sim.node}/qemu/9000/template`,
  ]);
  assert.match(run.h.logText('template:vm'), /half converted to a template/);
  assert.match(String((await env.client.vmConfig(env.sim.node, 9000)).scsi0), /base-9000-disk-0/);
  assert.equal((run.h.outputs.get(STEP.templateReady) as unknown as TemplateOutputs).templateName, 'flatcar-stable-4593-2-4');
  assert.equal(env.sim.requests().filter((q) => q.method === 'POST' && q.path.endsWith('/download-url')).length, 2);
});

test('checksum mismatch: Proxmox discards the download and the error names the cause and the fix', async () => {
  const env = await setup({ config: { flatcar: { version: '4593.2.3' } } });
  // the mirror serves a different file than its DIGESTS describe
  env.sim.mirror.put(`flatcar/stable/amd64-usr/4593.2.3/${PROXMOXVE_IMAGE_FILE}`, fakeQcow2('tampered'));
  const { h, steps } = env.run();
  await assert.rejects(
    h.runSteps(steps),
    (e: unknown) => e instanceof RemoteError && /checksum mismatch/.test(e.message) && /DIGESTS/.test(e.fix ?? ''),
  );
  assert.equal(existsSync(join(env.sim.storageRoot, 'import', 'flatcar-stable-4593.2.3-proxmoxve.qcow2')), false);
});

test('missing content types: import on the image storage, snippets on the snippet storage, images on the disk storage', async () => {
  const env = await setup({ sim: { localContent: ['iso', 'vztmpl', 'backup', 'snippets'] } });
  let { h, steps } = env.run();
  await assert.rejects(
    h.runSteps(steps),
    (e: unknown) =>
      e instanceof UserError &&
      /does not allow content type 'import'/.test(e.message) &&
      /pvesm set local --content iso,vztmpl,backup,snippets,import/.test(e.fix ?? '') &&
      e.field === 'proxmox.storage.images',
  );
  assert.deepEqual(env.changing(), []);

  const env2 = await setup({ sim: { localContent: ['iso', 'vztmpl', 'backup', 'import'] } });
  ({ h, steps } = env2.run());
  await h.runStep(steps[0]!);
  await h.runStep(steps[1]!);
  await assert.rejects(
    h.runStep(steps[2]!),
    (e: unknown) =>
      e instanceof UserError &&
      /does not allow content type 'snippets'/.test(e.message) &&
      /pvesm set local --content iso,vztmpl,backup,import,snippets/.test(e.fix ?? ''),
  );

  const env3 = await setup({ storage: { disks: 'local' } });
  ({ h, steps } = env3.run());
  await h.runSteps(steps.slice(0, 3));
  await assert.rejects(
    h.runStep(steps[3]!),
    (e: unknown) => e instanceof UserError && /does not allow content type 'images'/.test(e.message) && e.field === 'proxmox.storage.disks',
  );
  assert.ok(!env3.changing().some((c) => /\/qemu$/.test(c)));
});

test('PVE 8.3 with an API token: clear refusal naming 8.4 and the manual fallback', async () => {
  const env = await setup({ sim: { pveVersion: '8.3.2' } });
  const { h, steps } = env.run();
  await assert.rejects(
    h.runSteps(steps),
    (e: unknown) =>
      e instanceof UserError &&
      /needs Proxmox VE 8\.4 or newer/.test(e.message) &&
      /qm disk import/.test(e.fix ?? '') &&
      /root@pam/.test(e.fix ?? ''),
  );
  assert.deepEqual(env.changing(), []);
});

test('PVE 8.3 as root@pam: download as ISO, import by absolute path, template ready', async () => {
  const env = await setup({ sim: { pveVersion: '8.3.2' }, login: true });
  const { h, steps } = env.run();
  const records = await h.runSteps(steps);
  assert.ok(records.every((r) => r.via === 'run'));
  const dl = env.sim.requests().find((q) => q.path.endsWith('/download-url'))!;
  assert.equal(dl.params.content, 'iso');
  assert.equal(dl.params.filename, 'flatcar-stable-4593.2.5-proxmoxve.img');
  const isoPath = join(env.sim.storageRoot, 'template', 'iso', 'flatcar-stable-4593.2.5-proxmoxve.img');
  assert.ok(existsSync(isoPath));
  const create = env.sim.requests().find((q) => q.method === 'POST' && /^\/nodes\/[^/]+\/qemu$/.test(q.path))!;
  assert.equal(create.params.scsi0, `local-lvm:0,import-from=${isoPath},discard=on,iothread=1`);
  assert.equal((await env.client.vmStatus(env.sim.node, 9000)).template, true);
  assert.match(h.logText('template:image'), /predates 8\.4/);
  // and again: nothing to do
  const again = env.run({ carry: h });
  const r2 = await again.h.runSteps(again.steps);
  assert.ok(r2.every((r) => r.via === 'check'));
  assert.deepEqual(env.changing(), []);
});

test('VMID taken by a VM that is not ours: clear error, nothing touched', async () => {
  const env = await setup();
  const up = await env.client.createVm(env.sim.node, { vmid: 9000, name: 'someone-else', memory: 512 });
  await env.client.waitTask(env.sim.node, up);
  const { h, steps } = env.run();
  await assert.rejects(
    h.runSteps(steps),
    (e: unknown) =>
      e instanceof UserError && /VMID 9000 is taken by VM "someone-else"/.test(e.message) && e.field === 'flatcar.templateVmid',
  );
  assert.ok(!env.changing().some((c) => /\/qemu(\/9000)?$/.test(c) && !c.startsWith('GET')));
});

test('PVE host key: unknown without --yes fails with the fingerprint; --yes pins it; a changed key is refused', async () => {
  const env = await setup({ hostKey: false });
  const first = env.run();
  await first.h.runStep(first.steps[0]!);
  await first.h.runStep(first.steps[1]!);
  await assert.rejects(
    first.h.runStep(first.steps[2]!),
    (e: unknown) =>
      e instanceof UserError &&
      e.message.includes(sshd.hostKeyFingerprint) &&
      e.field === 'proxmox.ssh.hostKey' &&
      /--yes/.test(e.fix ?? ''),
  );
  assert.equal(first.h.pins.size, 0);

  const yes = env.run({ carry: first.h, options: { yes: true } });
  await yes.h.runSteps(yes.steps);
  assert.equal(yes.h.pins.get(`pve-ssh:${sshd.host}`), sshd.hostKeyFingerprint);

  await sshd.restartWithNewHostKey();
  const changed = env.run({ carry: yes.h, options: { yes: true } });
  // the snippet check connects first: the new key is refused even with --yes
  await assert.rejects(
    changed.h.runSteps(changed.steps),
    (e: unknown) =>
      e instanceof UserError &&
      /host key of the Proxmox host .* changed/.test(e.message) &&
      e.message.includes(sshd.hostKeyFingerprint) &&
      /proxmox\.ssh\.hostKey/.test(e.fix ?? ''),
  );
  assert.equal(changed.h.pins.get(`pve-ssh:${sshd.host}`), yes.h.pins.get(`pve-ssh:${sshd.host}`));
});

test('killed while Proxmox still creates the VM: the next run waits for the task, then reuses the VM', async () => {
  const env = await setup();
  const first = env.run();
  await first.h.runSteps(first.steps.slice(0, 3));
  const creating = first.h.runStep(first.steps[3]!);
  const deadline = Date.now() + 20_000;
  while (!(env.sim.state.vms.get(9000)?.config.lock === 'create')) {
    assert.ok(Date.now() < deadline, 'the create never started');
    await new Promise((r) => setTimeout(r, 5));
  }
  first.h.abort.abort();
  await assert.rejects(creating);
  // Proxmox goes on without us. To make "still running when the next run looks" certain rather than a
  // race, the test holds the VM's lock once the import is done and lets it go a moment later.
  while (!env.sim.tasks().some((t) => t.type === 'qmcreate' && t.status === 'stopped')) await new Promise((r) => setTimeout(r, 10));
  const vm = env.sim.state.vms.get(9000)!;
  assert.equal(vm.config.name, 'flatcar-stable-4593-2-5');
  vm.config.lock = 'create';
  const release = setTimeout(() => delete vm.config.lock, 1500);

  try {
    const resumed = env.run({ carry: first.h });
    const records = await resumed.h.runSteps(resumed.steps);
    assert.deepEqual(vias(records), {
      'template:release': 'check',
      'template:image': 'check',
      'template:snippet': 'check',
      'template:vm': 'run',
      'template:ready': 'run',
    });
    assert.match(resumed.h.logText('template:vm'), /locked \(create\).*waiting/);
    assert.match(resumed.h.logText('template:vm'), /Reusing flatcar-stable-4593-2-5 \(VMID 9000\)/);
    assert.ok(!env.changing().some((c) => c === `POST /nodes/${env.sim.node}/qemu` || c.startsWith('DELETE')), env.changing().join('\n'));
    assert.equal([...env.sim.state.vms.values()].length, 1);
    assert.equal((await env.client.vmStatus(env.sim.node, 9000)).template, true);
  } finally {
    clearTimeout(release);
  }
});

test('PVE host key on first use: a confirmation hook on the services (terminal/UI) can trust it', async () => {
  const env = await setup({ hostKey: false });
  const asked: string[] = [];
  const no = env.run();
  (no.h.services as { confirm?: (q: string) => Promise<boolean> }).confirm = async (q) => (asked.push(q), false);
  await no.h.runSteps(no.steps.slice(0, 2));
  await assert.rejects(no.h.runStep(no.steps[2]!), (e: unknown) => e instanceof UserError && e.field === 'proxmox.ssh.hostKey');
  assert.equal(no.h.pins.size, 0);
  const yes = env.run({ carry: no.h });
  (yes.h.services as { confirm?: (q: string) => Promise<boolean> }).confirm = async (q) => (asked.push(q), true);
  const records = await yes.h.runSteps(yes.steps);
  assert.equal(records[2]!.via, 'run');
  assert.equal(yes.h.pins.get(`pve-ssh:${sshd.host}`), sshd.hostKeyFingerprint);
  assert.equal(asked.length, 2);
  assert.ok(asked.every((q) => q.includes(sshd.hostKeyFingerprint)));
});

test('PVE host key from the config is recorded as the pin, so a config without it keeps checking that key', async () => {
  const env = await setup();
  const first = env.run();
  await first.h.runSteps(first.steps.slice(0, 3));
  assert.equal(first.h.pins.get(`pve-ssh:${sshd.host}`), sshd.hostKeyFingerprint);
  // Same state, the hostKey line gone, no --yes and nobody to ask: the recorded pin lets the run connect.
  const without = await setup({ hostKey: false });
  const again = without.run({ carry: first.h });
  const records = await again.h.runSteps(again.steps.slice(0, 3));
  assert.deepEqual(
    records.map((r) => r.id),
    ['template:release', 'template:image', 'template:snippet'],
  );
  // Control: without the recorded pin the same config is refused (first use needs --yes or a confirmation).
  const fresh = without.run({ carry: { ...first.h, pins: new Map() } as typeof first.h });
  await assert.rejects(
    fresh.h.runSteps(fresh.steps.slice(0, 3)),
    (e: unknown) => e instanceof UserError && e.field === 'proxmox.ssh.hostKey',
  );
});
