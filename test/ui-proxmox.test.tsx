import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxmoxScreen, type ProxmoxResult } from '../screens/ProxmoxScreen.js';
import { render, KEYS } from './helpers/ink.js';
import { fakeGateway, FP } from './helpers/fake-proxmox.js';
import { UserError } from '../src/errors.js';

const SECRET = '0d5c7a4e-1234-4abc-9def-0123456789ab';

test('given URL and token typed, when the connection is tested, then the fingerprint is offered, and nodes, storages and bridge are picked; the secret never appears on screen', async () => {
  const { gateway, calls } = fakeGateway();
  const results: ProxmoxResult[] = [];
  const r = render(<ProxmoxScreen initial={{}} gateway={gateway} onSubmit={(x) => results.push(x)} />, { columns: 100, rows: 30 });
  try {
    await r.waitFor('URL');
    await r.type('https://pve.lan:8006');
    await r.press(KEYS.tab);
    await r.type('root@pam!flatcar');
    await r.press(KEYS.tab);
    await r.type(SECRET);
    await r.waitFor('•'.repeat(SECRET.length));
    await r.press(KEYS.enter);
    let f = await r.waitFor('Trust it?');
    assert.ok(f.includes(FP), 'the fingerprint is shown in full');
    assert.deepEqual(calls.probe, ['https://pve.lan:8006']);
    await r.press('y');
    f = await r.waitFor('PVE nodes to place VMs on');
    assert.match(f, /\[x\] pve1/);
    assert.match(f, /\[x\] pve2/);
    assert.match(f, /pve-old — offline/);
    assert.equal(calls.connect[0]!.fingerprint, FP);
    assert.equal(calls.connect[0]!.tokenSecret, SECRET);
    await r.press(KEYS.down);
    await r.press(' ');
    await r.waitFor('[ ] pve2');
    await r.press(KEYS.enter);
    f = await r.waitFor('Storage for VM disks');
    assert.match(f, /local-lvm — lvmthin, 400 GiB free, \[images,rootdir\]/);
    await r.press(KEYS.enter);
    f = await r.waitFor('Flatcar image download');
    assert.match(f, /local — dir, 50 GiB free, \[iso,vztmpl,backup\]\s+⚠ no "import"/);
    assert.ok(!f.includes('local-lvm'), 'block storage cannot hold the image and is not offered');
    assert.match(f, /❯ nas/, 'the storage with import content is preselected');
    await r.press(KEYS.up);
    f = await r.waitFor('Enable it');
    assert.match(f.replace(/\n/g, ' '), /pvesm set local --content iso,vztmpl,backup,import/);
    await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor('Ignition snippets');
    await r.press(KEYS.enter);
    await r.waitFor('Network bridge');
    await r.press(KEYS.down);
    await r.press(KEYS.enter);
    await r.waitFor(() => results.length === 1);
    const res = results[0]!;
    assert.equal(res.back, false);
    assert.deepEqual(res.proxmox, {
      url: 'https://pve.lan:8006',
      tokenId: 'root@pam!flatcar',
      tokenSecret: SECRET,
      username: undefined,
      password: undefined,
      fingerprint: FP,
      nodes: ['pve1'],
      storage: { disks: 'local-lvm', images: 'nas', snippets: 'nas' },
      bridge: 'vmbr1',
    });
    assert.ok(!res.back && res.facts.pveNodes.join() === 'pve1');
    assert.ok(!r.allFrames().includes(SECRET), 'the secret is never rendered');
    assert.ok(!r.allFrames().includes(SECRET.slice(0, 8)));
  } finally {
    r.unmount();
  }
});

test('given invalid input, then the errors are shown inline with the fix and the typed values stay', async () => {
  const { gateway, calls } = fakeGateway();
  const r = render(<ProxmoxScreen initial={{}} gateway={gateway} onSubmit={() => {}} />, { columns: 100, rows: 30 });
  try {
    await r.type('http://pve.lan:8006');
    await r.press(KEYS.tab);
    await r.type('root@pam!flatcar');
    await r.press(KEYS.tab);
    await r.type('not-a-uuid');
    await r.press(KEYS.enter);
    const f = await r.waitFor('must use https://');
    assert.match(f, /not a Proxmox token secret: expected a lower-case UUID/);
    assert.match(f, /http:\/\/pve\.lan:8006/, 'what was typed is kept');
    assert.equal(calls.probe.length, 0, 'nothing is sent while the form is invalid');
  } finally {
    r.unmount();
  }
});

test('given no credentials, then the form says to give a token or a user and password', async () => {
  const { gateway } = fakeGateway();
  const r = render(<ProxmoxScreen initial={{ url: 'https://pve.lan:8006' }} gateway={gateway} onSubmit={() => {}} />, {
    columns: 100,
    rows: 30,
  });
  try {
    await r.press(KEYS.enter);
    await r.waitFor('no credentials: give an API token');
  } finally {
    r.unmount();
  }
});

test('given the connection fails, then the error and its fix are shown and the form keeps the values; Esc goes back with them', async () => {
  const { gateway } = fakeGateway({
    failConnect: new UserError('Proxmox refused the API token root@pam!flatcar (401)', {
      fix: 'Check the token id and secret, and that the token is not expired.',
    }),
  });
  const results: ProxmoxResult[] = [];
  const r = render(
    <ProxmoxScreen
      initial={{ url: 'https://pve.lan:8006', username: 'root@pam', password: 'hunter2' }}
      sources={{ password: 'PROXMOX_VE_PASSWORD' }}
      gateway={gateway}
      onSubmit={(x) => results.push(x)}
    />,
    { columns: 100, rows: 30 },
  );
  try {
    await r.press(KEYS.enter);
    await r.waitFor('Trust it?');
    await r.press('y');
    const f = await r.waitFor('refused the API token');
    assert.match(f, /Fix: Check the token id and secret/);
    assert.match(f, /root@pam/);
    assert.match(f, /•{7}/);
    await r.press(KEYS.esc);
    await r.waitFor(() => results.length === 1);
    assert.deepEqual(results[0], {
      back: true,
      proxmox: {
        url: 'https://pve.lan:8006',
        tokenId: undefined,
        tokenSecret: undefined,
        username: 'root@pam',
        password: 'hunter2',
        fingerprint: FP,
      },
    });
    assert.ok(!r.allFrames().includes('hunter2'));
  } finally {
    r.unmount();
  }
});

test('given a known fingerprint that matches, then no trust question is asked', async () => {
  const { gateway, calls } = fakeGateway();
  const r = render(
    <ProxmoxScreen
      initial={{ url: 'https://pve.lan:8006', tokenId: 'root@pam!x', tokenSecret: SECRET, fingerprint: FP }}
      gateway={gateway}
      onSubmit={() => {}}
    />,
    { columns: 100, rows: 30 },
  );
  try {
    await r.press(KEYS.enter);
    await r.waitFor('PVE nodes to place VMs on');
    assert.equal(calls.connect.length, 1);
    assert.ok(!r.allFrames().includes('Trust it?'));
  } finally {
    r.unmount();
  }
});
