import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubernetesPluginStatus, kubernetesPluginVersion, isPluginDownloadFailure, pluginsDir } from '../src/pulumi/plugin.js';
import { pulumiError } from '../src/pulumi/automation.js';
import { RemoteError } from '../src/errors.js';

describe('Pulumi Kubernetes plugin lookup', () => {
  test('the version is the one the installed @pulumi/kubernetes SDK asks for', () => {
    assert.match(kubernetesPluginVersion(), /^\d+\.\d+\.\d+$/);
  });

  test('found in $PULUMI_HOME/plugins/resource-kubernetes-v<version>, not before the binary is there', () => {
    const home = mkdtempSync(join(tmpdir(), 'fk3s-plugin-'));
    try {
      const env = { PULUMI_HOME: home };
      assert.equal(pluginsDir(env), join(home, 'plugins'));
      const before = kubernetesPluginStatus({ env, version: '4.34.2', platform: 'linux', arch: 'x64' });
      assert.equal(before.installed, false);
      assert.equal(before.dir, join(home, 'plugins', 'resource-kubernetes-v4.34.2'));
      mkdirSync(before.dir, { recursive: true });
      assert.equal(kubernetesPluginStatus({ env, version: '4.34.2' }).installed, false, 'an empty directory is not a plugin');
      writeFileSync(join(before.dir, 'pulumi-resource-kubernetes'), '', { mode: 0o755 });
      assert.equal(kubernetesPluginStatus({ env, version: '4.34.2', platform: 'linux' }).installed, true);
      assert.equal(
        kubernetesPluginStatus({ env, version: '4.35.0', platform: 'linux' }).installed,
        false,
        'another version does not count',
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('the offline asset matches the platform', () => {
    const mac = kubernetesPluginStatus({ env: { PULUMI_HOME: '/x' }, version: '4.34.2', platform: 'darwin', arch: 'arm64' });
    assert.equal(mac.offline.asset, 'pulumi-resource-kubernetes-v4.34.2-darwin-arm64.tar.gz');
    assert.equal(
      mac.offline.command,
      'pulumi plugin install resource kubernetes v4.34.2 --file ./pulumi-resource-kubernetes-v4.34.2-darwin-arm64.tar.gz',
    );
  });

  test('a failed plugin download becomes an error with the offline install', () => {
    const text =
      "error: could not load plugin for kubernetes provider 'default_4_34_2': Could not automatically download and install resource plugin 'pulumi-resource-kubernetes' at version v4.34.2: error downloading plugin kubernetes to file: failed to download plugin: kubernetes-4.34.2: Get \"https://api.github.com\": dial tcp: lookup api.github.com: no such host";
    assert.ok(isPluginDownloadFailure(text));
    assert.ok(!isPluginDownloadFailure('error: the current deployment has 1 resource(s) with pending operations'));
    assert.ok(
      isPluginDownloadFailure(
        "error: Could not automatically download and install resource plugin 'pulumi-resource-kubernetes' at version v4.34.2",
      ),
    );
    const err = pulumiError(new Error(text), { project: 'infra-apps', stackName: 'homelab', passphrase: 'p' }, 'apply the changes');
    assert.ok(err instanceof RemoteError);
    assert.match(err.message, /Kubernetes plugin v\d+\.\d+\.\d+ is not installed and could not be downloaded/);
    assert.match(err.fix ?? '', /pulumi plugin install resource kubernetes v\d+\.\d+\.\d+ --file/);
  });
});
