/**
 * The narrow wrapper over Pulumi's Automation API that the apps steps use: one stack per cluster and
 * project, a local file backend in the cluster's state dir, the passphrase secrets provider, the
 * inline programs, and engine events streamed to the caller.
 *
 * Resume and idempotency are Pulumi's own: `up` applies only the diff, so re-running after a failure
 * continues where it stopped and re-running after success changes nothing.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineEvent, OpMap, PulumiCommand, Stack } from '@pulumi/pulumi/automation/index.js';
import { AbortedError, RemoteError, UserError } from '../errors.js';
import { isPulumiMissing, pulumiCliMissingError } from './cli.js';
import { shq } from '../shell/quote.js';
import { isPluginDownloadFailure, kubernetesPluginStatus } from './plugin.js';
import { clusterFiles } from '../store/layout.js';

export type AppsProject = 'infra-bootstrap' | 'infra-apps';

export interface AppsStackOptions {
  project: AppsProject;
  /** One stack per cluster: the cluster name. */
  stackName: string;
  /** Per-cluster state directory; Pulumi's files go under <clusterDir>/pulumi. */
  clusterDir: string;
  /** Passphrase for the secrets provider (from the secrets store; never logged). */
  passphrase: string;
  /** The inline program (infraBootstrap/infraApps bound to their arguments). */
  program: () => void | Promise<void>;
  /** A detected CLI; default: `pulumi` on PATH. */
  pulumiCommand?: PulumiCommand;
  onEvent?: (e: EngineEvent) => void;
  signal?: AbortSignal;
}

export interface PulumiPaths {
  root: string;
  backendDir: string;
  backendUrl: string;
  workDir: string;
}

export function pulumiPaths(clusterDir: string, project: AppsProject): PulumiPaths {
  const root = clusterFiles(clusterDir).pulumi;
  const backendDir = join(root, 'backend');
  return { root, backendDir, backendUrl: `file://${backendDir.replace(/\\/g, '/')}`, workDir: join(root, project) };
}

/** Create (or select) the cluster's stack of a project. Fails fast with the install message without the CLI. */
export async function openAppsStack(o: AppsStackOptions): Promise<Stack> {
  const paths = pulumiPaths(o.clusterDir, o.project);
  for (const d of [paths.root, paths.backendDir, paths.workDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  // The SDK loads here, not at import: plan/--help build the apps steps that import this module.
  const { LocalWorkspace } = await import('@pulumi/pulumi/automation/index.js');
  try {
    return await LocalWorkspace.createOrSelectStack(
      { stackName: o.stackName, projectName: o.project, program: async () => o.program() },
      {
        workDir: paths.workDir,
        pulumiCommand: o.pulumiCommand,
        secretsProvider: 'passphrase',
        projectSettings: {
          name: o.project,
          runtime: 'nodejs',
          backend: { url: paths.backendUrl },
          description: `flatcar-k3s ${o.project}`,
        },
        // Only the pulumi subprocesses see these; our own environment is left alone.
        envVars: { PULUMI_CONFIG_PASSPHRASE: o.passphrase, PULUMI_BACKEND_URL: paths.backendUrl, PULUMI_SKIP_UPDATE_CHECK: 'true' },
      },
    );
  } catch (err) {
    throw pulumiError(err, o, 'open the stack');
  } finally {
    tightenPermissions(paths.root);
  }
}

/**
 * Has this stack ever been updated? A never-applied stack needs no preview to know it is not done.
 * The file backend (project-scoped layout, the default for new backends) keeps a stack's checkpoint at
 * .pulumi/stacks/<project>/<stack>.json, gzipped when PULUMI_DIY_BACKEND_GZIP is set. A wrong "no"
 * only costs an `up` that changes nothing; a wrong "yes" only a preview.
 */
export function stackStateExists(clusterDir: string, project: AppsProject, stackName: string): boolean {
  const base = join(pulumiPaths(clusterDir, project).backendDir, '.pulumi', 'stacks', project, stackName);
  return existsSync(`${base}.json`) || existsSync(`${base}.json.gz`);
}

export interface AppsUpResult {
  changes: OpMap;
  /** Resources created, updated, replaced or deleted. */
  changed: number;
}

export async function upAppsStack(o: AppsStackOptions, stack?: Stack): Promise<AppsUpResult> {
  const s = stack ?? (await openAppsStack(o));
  try {
    const r = await s.up({ onEvent: o.onEvent, signal: o.signal, color: 'never' });
    const changes = r.summary.resourceChanges ?? {};
    return { changes, changed: countChanged(changes) };
  } catch (err) {
    throw pulumiError(err, o, 'apply the changes');
  } finally {
    tightenPermissions(pulumiPaths(o.clusterDir, o.project).root);
  }
}

export interface AppsPreviewResult {
  changes: OpMap;
  changed: number;
}

/** What `up` would do; `changed === 0` means the cluster already matches the program. */
export async function previewAppsStack(o: AppsStackOptions, stack?: Stack): Promise<AppsPreviewResult> {
  const s = stack ?? (await openAppsStack(o));
  try {
    const r = await s.preview({ onEvent: o.onEvent, signal: o.signal, color: 'never' });
    return { changes: r.changeSummary, changed: countChanged(r.changeSummary) };
  } catch (err) {
    throw pulumiError(err, o, 'preview the changes');
  } finally {
    tightenPermissions(pulumiPaths(o.clusterDir, o.project).root);
  }
}

export function countChanged(changes: OpMap): number {
  let n = 0;
  for (const [op, count] of Object.entries(changes)) if (op !== 'same' && op !== 'read' && op !== 'refresh') n += count ?? 0;
  return n;
}

/** Pulumi writes its state and settings 0644 by default; they stay private to the user here. */
export function tightenPermissions(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
    chmodSync(dir, 0o700);
  } catch {
    return;
  }
  for (const name of entries) {
    const p = join(dir, name);
    try {
      const st = statSync(p);
      if (st.isDirectory()) tightenPermissions(p);
      else if (st.isFile() && (st.mode & 0o077) !== 0) chmodSync(p, 0o600);
    } catch {
      // vanished meanwhile
    }
  }
}

/** Map Automation API failures to errors the user can act on; the passphrase never reaches a message. */
export function pulumiError(
  err: unknown,
  o: Pick<AppsStackOptions, 'project' | 'stackName' | 'passphrase' | 'signal'> & { clusterDir?: string },
  doing: string,
): Error {
  if (err instanceof UserError || err instanceof RemoteError) return err;
  if (o.signal?.aborted) return new AbortedError();
  if (isPulumiMissing(err)) return pulumiCliMissingError();
  const raw = err instanceof Error ? err.message : String(err);
  const text = o.passphrase ? raw.split(o.passphrase).join('<redacted>') : raw;
  const lines = text.split('\n').map((l) => l.trimEnd());
  const errorLines = lines.filter((l) => /error:/i.test(l));
  const tail = (errorLines.length ? errorLines : lines.filter(Boolean)).slice(-12).join('\n');
  if (/currently locked/.test(text)) {
    return new RemoteError(`Pulumi ${o.project}: the stack ${o.stackName} is locked by another update`, {
      fix:
        'Wait for the other flatcar-k3s run to finish. If none is running, a previous run was killed: remove its lock with ' +
        `\`cd ${o.clusterDir ? shq(pulumiPaths(o.clusterDir, o.project).workDir) : '<state dir>/clusters/<name>/pulumi/' + o.project} && pulumi cancel --stack ${shq(o.stackName)} --yes\`, then run again.`,
      detail: tail,
      cause: err,
    });
  }
  if (isPluginDownloadFailure(text)) {
    const p = kubernetesPluginStatus();
    return new RemoteError(`Pulumi ${o.project}: the Kubernetes plugin v${p.version} is not installed and could not be downloaded`, {
      fix: `On a machine with internet access download ${p.offline.url}, copy it here and run \`${p.offline.command}\`, then run again.`,
      detail: tail,
      cause: err,
    });
  }
  if (/passphrase must be set|incorrect passphrase|failed to decrypt/i.test(text)) {
    return new UserError(`Pulumi ${o.project}: the stack's secrets passphrase does not match`, {
      fix: "The Pulumi passphrase in the cluster's secrets file was changed or lost. Restore it, or remove <state dir>/<cluster>/pulumi to start the apps stacks afresh.",
      detail: tail,
      cause: err,
    });
  }
  return new RemoteError(`Pulumi ${o.project} could not ${doing} (stack ${o.stackName})`, {
    fix: 'Read the Pulumi errors above, fix the cause, and run again: Pulumi resumes from where it stopped.',
    detail: tail,
    cause: err,
  });
}
