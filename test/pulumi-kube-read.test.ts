import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { kubeconfigCreds, operatorStackStatus, readStackViaApi, STACK_PATH } from '../src/pulumi/kube-read.js';
import { makeCert } from './proxmox-fake-server.js';

function kubeconfig(server: string, ca: string, token = 'test-token'): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'default', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
    users: [{ name: 'default', user: { token } }],
    contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
    'current-context': 'default',
  });
}

describe('reading the Stack through the Kubernetes API', () => {
  test("GET of the one Stack with the kubeconfig's CA and credentials; 404 = no Stack; an untrusted server is refused", async () => {
    const cert = makeCert({ withCa: true });
    const other = makeCert({ withCa: true });
    const dir = mkdtempSync(join(tmpdir(), 'fk3s-kube-'));
    const seen: Array<{ path?: string; auth?: string }> = [];
    let answer: { status: number; body: string } = {
      status: 200,
      body: JSON.stringify({ metadata: { generation: 1 }, status: { observedGeneration: 1 } }),
    };
    const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      seen.push({ path: req.url, auth: req.headers.authorization });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const file = join(dir, 'kubeconfig.yaml');
      writeFileSync(file, kubeconfig(url, cert.ca!));
      assert.deepEqual(await readStackViaApi(file), { metadata: { generation: 1 }, status: { observedGeneration: 1 } });
      assert.deepEqual(seen[0], { path: STACK_PATH, auth: 'Bearer test-token' });
      assert.equal(STACK_PATH, '/apis/pulumi.com/v1/namespaces/pulumi-kubernetes-operator/stacks/infra-apps');
      answer = { status: 404, body: '{}' };
      assert.equal(await readStackViaApi(file), undefined);
      answer = { status: 403, body: '{"message":"forbidden"}' };
      await assert.rejects(readStackViaApi(file), /answered 403/);
      const wrongCa = join(dir, 'wrong.yaml');
      writeFileSync(wrongCa, kubeconfig(url, other.ca!));
      const before = seen.length;
      await assert.rejects(readStackViaApi(wrongCa));
      assert.equal(seen.length, before, "no request reaches a server the kubeconfig's CA did not sign");
    } finally {
      server.close();
      cert.cleanup();
      other.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('client certificates from the current context are decoded', () => {
    const text = stringify({
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
      users: [
        {
          name: 'u',
          user: {
            'client-certificate-data': Buffer.from('CERT').toString('base64'),
            'client-key-data': Buffer.from('KEY').toString('base64'),
          },
        },
      ],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    });
    assert.deepEqual(kubeconfigCreds(text), {
      server: 'https://127.0.0.1:6443',
      ca: undefined,
      cert: 'CERT',
      key: 'KEY',
      token: undefined,
    });
  });

  test("status: live when the cluster answers, else the last run's record with the reason", async () => {
    const live = await operatorStackStatus('/k', { state: 'synced' }, async () => ({
      metadata: { generation: 2 },
      status: {
        observedGeneration: 2,
        conditions: [{ type: 'Ready', status: 'True' }],
        lastUpdate: { name: 'u7', state: 'succeeded', generation: 2 },
      },
    }));
    assert.deepEqual(live, { state: 'synced', message: 'in sync (last update u7 succeeded)', live: true });
    const down = await operatorStackStatus('/k', { state: 'synced', lastUpdate: 'u7' }, async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
    });
    assert.deepEqual(down, {
      state: 'unknown',
      message: 'could not ask the cluster (connect ECONNREFUSED 127.0.0.1:6443); at the last run: synced (update u7)',
      live: false,
    });
    assert.equal((await operatorStackStatus(undefined, undefined)).message, 'no kubeconfig recorded; never checked');
  });
});
