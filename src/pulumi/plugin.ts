/**
 * The Pulumi Kubernetes resource plugin: the Automation API downloads it on the first `up` when it is
 * missing, which fails on a machine without internet access and says little. Preflight looks for it
 * (a directory lookup, nothing spawned) and tells how to install it offline.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shq } from '../shell/quote.js';

/** The plugin version the installed @pulumi/kubernetes SDK asks for (its package.json `pulumi.version`). */
export function kubernetesPluginVersion(): string {
  const pkg = JSON.parse(readFileSync(sdkPackageJson(), 'utf8')) as { version: string; pulumi?: { version?: string } };
  return (pkg.pulumi?.version ?? pkg.version).replace(/^v/, '');
}

/**
 * The SDK's package.json, found the way Node's resolution walks node_modules folders upwards, but as plain
 * file lookups: `plan` describes this step, and resolving the package would count as loading it there.
 */
function sdkPackageJson(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const p = join(dir, 'node_modules', '@pulumi', 'kubernetes', 'package.json');
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) throw new Error('@pulumi/kubernetes is not installed next to flatcar-k3s (run npm ci)');
  }
}

/** Where the CLI keeps plugins: $PULUMI_HOME/plugins, default ~/.pulumi/plugins. */
export function pluginsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.PULUMI_HOME || join(homedir(), '.pulumi'), 'plugins');
}

export interface PluginStatus {
  installed: boolean;
  version: string;
  /** The directory the CLI installs this version into. */
  dir: string;
  /** Release asset for this machine and the commands that install it without network access. */
  offline: { asset: string; url: string; command: string };
}

const OS: Partial<Record<NodeJS.Platform, string>> = { linux: 'linux', darwin: 'darwin', win32: 'windows' };
const ARCH: Partial<Record<string, string>> = { x64: 'amd64', arm64: 'arm64' };

export function kubernetesPluginStatus(
  opts: { env?: NodeJS.ProcessEnv; platform?: NodeJS.Platform; arch?: string; version?: string } = {},
): PluginStatus {
  const version = opts.version ?? kubernetesPluginVersion();
  const dir = join(pluginsDir(opts.env), `resource-kubernetes-v${version}`);
  const exe = join(dir, (opts.platform ?? process.platform) === 'win32' ? 'pulumi-resource-kubernetes.exe' : 'pulumi-resource-kubernetes');
  let installed = false;
  try {
    installed = statSync(exe).isFile() && !existsSync(`${dir}.partial`);
  } catch {
    installed = false;
  }
  const asset = `pulumi-resource-kubernetes-v${version}-${OS[opts.platform ?? process.platform] ?? 'linux'}-${ARCH[opts.arch ?? process.arch] ?? 'amd64'}.tar.gz`;
  const url = `https://github.com/pulumi/pulumi-kubernetes/releases/download/v${version}/${asset}`;
  return {
    installed,
    version,
    dir,
    offline: { asset, url, command: `pulumi plugin install resource kubernetes v${version} --file ${shq(`./${asset}`)}` },
  };
}

/** One line for the plan, the preflight and the logs. */
export function pluginStatusLine(p: PluginStatus): string {
  if (p.installed) return `Pulumi Kubernetes plugin v${p.version} is installed (${p.dir})`;
  return (
    `Pulumi Kubernetes plugin v${p.version} is NOT installed: the first apps run downloads it, which needs internet access. ` +
    `Offline: fetch ${p.offline.url} on a connected machine, copy it here and run \`${p.offline.command}\``
  );
}

/** Pulumi's error when a plugin download failed (no network, proxy, GitHub unreachable). */
export function isPluginDownloadFailure(text: string): boolean {
  return /(could not|failed to|error) (automatically )?(download|install)(ing)?( and install)? (resource )?plugin|resource-kubernetes.*(download|install)|no resource plugin 'kubernetes/i.test(
    text,
  );
}
