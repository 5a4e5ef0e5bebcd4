/**
 * Issue #15, air-gap HA: with cluster.airgap and a VIP, the kube-vip image archive is required (no registry
 * can serve it), checked against its sha256 here, and put into k3s's images directory on every node before
 * k3s starts, where its sha256 is checked again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startE2e } from './e2e-harness.js';
import { deepMerge, resolveConfig } from '../src/config/load.js';
import { KUBE_VIP_IMAGE } from '../src/k3s/kube-vip.js';
import { AIRGAP_IMAGES_DIR, airgapImageName } from '../src/k3s/airgap-images.js';
import { sha256Hex } from '../src/k3s/release.js';

test("air-gapped HA: the kube-vip archive is required, then lands sha256-checked in every node's images dir before k3s", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fk3s-airgap-'));
  const env = await startE2e({ preset: 'ha', config: { cluster: { airgap: true } } });
  try {
    // Without the archive: refused, naming the image and how to make one.
    const r0 = await env.up();
    assert.equal(r0.status, 'failed');
    const refused = env.events.find((e) => e.type === 'step' && e.status === 'failed' && e.id === 'k3s:release') as
      | { error?: { message: string; fix?: string } }
      | undefined;
    assert.ok(refused, 'k3s:release refuses');
    assert.match(refused.error!.message, new RegExp(`no archive of ${KUBE_VIP_IMAGE.replace(/[.]/g, '\\.')}`));
    assert.match(refused.error!.fix ?? '', /skopeo copy docker:\/\/ghcr\.io\/kube-vip\/kube-vip:/);

    const archive = Buffer.from('a docker-archive of kube-vip (test stand-in)\n');
    const file = join(dir, 'kube-vip.tar');
    writeFileSync(file, archive);
    const images = [{ image: KUBE_VIP_IMAGE, file, sha256: sha256Hex(archive) }];
    const wrong = resolveConfig(
      deepMerge(env.raw, { cluster: { airgapImages: [{ ...images[0], sha256: 'f'.repeat(64) }] } }) as Record<string, unknown>,
      { env: {} },
    );
    const r1 = await env.up({ config: wrong });
    assert.equal(r1.status, 'failed');
    const bad = env.events.filter((e) => e.type === 'step' && e.status === 'failed').at(-1) as { error?: { message: string } };
    assert.match(bad.error!.message, /has sha256 .* not the f{64}/);

    const config = resolveConfig(deepMerge(env.raw, { cluster: { airgapImages: images } }) as Record<string, unknown>, { env: {} });
    const r = await env.up({ config });
    const failed = env.events.filter(
      (e) => e.type === 'step' && e.status === 'failed' && !['k3s:release'].includes((e as { id: string }).id),
    );
    assert.equal(r.status, 'succeeded', JSON.stringify(failed.slice(-3), null, 2));
    for (const n of config.nodes.servers.count ? ['ha-server-1', 'ha-server-2', 'ha-server-3', 'ha-agent-1'] : []) {
      const f = env.guests.node(n)!.fs.get(`${AIRGAP_IMAGES_DIR}/${airgapImageName(KUBE_VIP_IMAGE)}`);
      assert.ok(f, `${n} has the archive`);
      assert.equal(sha256Hex(f.data), sha256Hex(archive));
      assert.equal(f.owner, 'root');
    }
  } finally {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
