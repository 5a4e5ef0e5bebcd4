/**
 * The node-side installer (src/k3s/node/install-k3s.sh) and the command line that runs it.
 * Staged files live in core's home directory (SFTP writes as core; the script runs as root and
 * moves them into place with mode 0600).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { shJoin } from '../shell/quote.js';
import type { NodeRole } from '../config/schema.js';

export const STAGE_DIR = '/home/core';
export const STAGED = {
  script: `${STAGE_DIR}/flatcar-k3s-install-k3s.sh`,
  config: `${STAGE_DIR}/flatcar-k3s-config.yaml`,
  binary: `${STAGE_DIR}/flatcar-k3s-k3s`,
  manifest: (name: string) => `${STAGE_DIR}/${name}`,
} as const;

export function installScriptPath(): string {
  return join(packageRoot(), 'src', 'k3s', 'node', 'install-k3s.sh');
}

let cached: string | undefined;
export function installScriptText(): string {
  return (cached ??= readFileSync(installScriptPath(), 'utf8'));
}

export interface InstallArgs {
  /** Absent with binaryOnly. */
  role?: NodeRole;
  /** Only install the verified binary (ahead of the ordered start). */
  binaryOnly?: boolean;
  version: string;
  sha256: string;
  /** Download URL (online install) … */
  url?: string;
  /** … or the staged binary (air-gapped install). */
  binary?: string;
  config?: string;
  manifests?: string[];
}

export function installArgv(a: InstallArgs): string[] {
  const argv = [
    ...(a.binaryOnly ? ['--binary-only'] : []),
    ...(a.role ? ['--role', a.role] : []),
    '--version',
    a.version,
    '--sha256',
    a.sha256,
  ];
  if (a.url) argv.push('--url', a.url);
  if (a.binary) argv.push('--binary', a.binary);
  if (a.config) argv.push('--config', a.config);
  for (const m of a.manifests ?? []) argv.push('--manifest', m);
  return argv;
}

/** `sudo sh <script> …`: every value quoted by the one quoting helper. */
export function installCommand(a: InstallArgs, script: string = STAGED.script): string {
  return shJoin(['sudo', 'sh', script, ...installArgv(a)]);
}

export function unitName(role: NodeRole): 'k3s' | 'k3s-agent' {
  return role === 'server' ? 'k3s' : 'k3s-agent';
}
