/**
 * Installing k3s on one node over an SSH session: upload the installer, the config.yaml (0600, holds the
 * token), manifests (0600) and, air-gapped, the binary; run the installer with quoted arguments; stream
 * its output. Safe to repeat after a dropped connection: the installer is idempotent and staged files
 * are simply written again.
 */
import { RemoteError } from '../errors.js';
import { shJoin } from '../shell/quote.js';
import type { SshSession } from '../ssh/types.js';
import type { NodeRole } from '../config/schema.js';
import { installArgv, installScriptText, STAGED } from './install-script.js';

export interface InstallOnNodeOptions {
  session: SshSession;
  label: string;
  role: NodeRole;
  version: string;
  sha256: string;
  /** Online install: where the node downloads k3s. */
  url: string;
  /** Air-gapped: the verified binary to upload (skipped when the node already has it). */
  binary?: Buffer;
  config: string;
  manifests?: Array<{ name: string; text: string }>;
  signal?: AbortSignal;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Tests only: the node's "/" lives below `root` on the SSH host (uploads go there) and the command
   * is wrapped (e.g. in bwrap) to run with that root.
   */
  sandbox?: { root: string; wrap(argv: string[]): string[] };
}

export type InstallResult = 'installed' | 'unchanged';

/** Upload the installer unless the node has this very one (same size: cheap to ask, and versions differ in size). */
async function stageScript(s: SshSession, path: string): Promise<void> {
  const text = installScriptText();
  const st = await s.stat(path);
  if (st?.size === Buffer.byteLength(text)) return;
  await s.writeFile(path, text, 0o644);
}

export interface InstallBinaryOptions {
  session: SshSession;
  label: string;
  version: string;
  sha256: string;
  url: string;
  binary?: Buffer;
  signal?: AbortSignal;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  sandbox?: { root: string; wrap(argv: string[]): string[] };
}

function wrapped(o: { sandbox?: { wrap(argv: string[]): string[] } }, argv: string[]): string {
  return o.sandbox ? shJoin(o.sandbox.wrap(argv)) : shJoin(['sudo', ...argv]);
}

/** Only the verified binary (+ links): done for every node at once, ahead of the ordered starts. */
export async function installK3sBinary(o: InstallBinaryOptions): Promise<'installed' | 'unchanged'> {
  const s = o.session;
  const up = (p: string) => (o.sandbox ? `${o.sandbox.root}${p}` : p);
  const have = await s.exec(shJoin(o.sandbox ? o.sandbox.wrap(['sha256sum', '/opt/bin/k3s']) : ['sha256sum', '/opt/bin/k3s']), {
    signal: o.signal,
  });
  if (have.code === 0 && have.stdout.split(/\s+/)[0] === o.sha256) return 'unchanged';
  await stageScript(s, up(STAGED.script));
  let binary: string | undefined;
  if (o.binary) {
    await s.writeFile(up(STAGED.binary), o.binary, 0o600);
    binary = STAGED.binary;
  }
  const argv = [
    'sh',
    STAGED.script,
    ...installArgv({ binaryOnly: true, version: o.version, sha256: o.sha256, ...(binary ? { binary } : { url: o.url }) }),
  ];
  const r = await s.exec(wrapped(o, argv), { signal: o.signal, onLine: o.onLine });
  if (r.code !== 0) {
    throw new RemoteError(`Installing the k3s binary failed on ${o.label} (exit code ${r.code})`, {
      detail: (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n'),
      fix: 'Fix the cause shown above (network to the k3s release URL, disk space…) and run again.',
    });
  }
  return 'installed';
}

export async function installK3sOnNode(o: InstallOnNodeOptions): Promise<InstallResult> {
  return runStagedK3sInstall(o, await stageK3sInstall(o));
}

/**
 * The first half of installK3sOnNode: upload the install script, the config, the manifests (and the
 * binary when air-gapped). Starts nothing: a joining server stages while another server joins, and
 * takes the join lane only for runStagedK3sInstall and its wait.
 */
export async function stageK3sInstall(o: InstallOnNodeOptions): Promise<string[]> {
  const s = o.session;
  const up = (p: string) => (o.sandbox ? `${o.sandbox.root}${p}` : p);
  await stageScript(s, up(STAGED.script));
  await s.writeFile(up(STAGED.config), o.config, 0o600);
  for (const m of o.manifests ?? []) await s.writeFile(up(STAGED.manifest(m.name)), m.text, 0o600);
  let binary: string | undefined;
  if (o.binary) {
    const have = await s.exec(shJoin(o.sandbox ? o.sandbox.wrap(['sha256sum', '/opt/bin/k3s']) : ['sha256sum', '/opt/bin/k3s']), {
      signal: o.signal,
    });
    if (have.code !== 0 || have.stdout.split(/\s+/)[0] !== o.sha256) {
      await s.writeFile(up(STAGED.binary), o.binary, 0o600);
      binary = STAGED.binary;
    }
  }
  return [
    'sh',
    STAGED.script,
    ...installArgv({
      role: o.role,
      version: o.version,
      sha256: o.sha256,
      ...(binary ? { binary } : { url: o.url }),
      config: STAGED.config,
      manifests: (o.manifests ?? []).map((m) => STAGED.manifest(m.name)),
    }),
  ];
}

/** The second half: run the staged install script (it puts the files in place and starts the unit). */
export async function runStagedK3sInstall(o: InstallOnNodeOptions, argv: string[]): Promise<InstallResult> {
  const r = await o.session.exec(wrapped(o, argv), { signal: o.signal, onLine: o.onLine });
  if (r.code !== 0) {
    throw new RemoteError(`The k3s installer failed on ${o.label} (exit code ${r.code})`, {
      detail: (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n'),
      fix: 'Fix the cause shown above (network to the k3s release URL, disk space…) and run again: the install resumes where it stopped.',
    });
  }
  return /^RESULT unchanged$/m.test(r.stdout) ? 'unchanged' : 'installed';
}
