/**
 * Kubeconfig handling: take k3s.yaml from the first server, point it at the VIP (or first server),
 * rename cluster/context/user to the cluster name, write it 0600, and merge it into ~/.kube/config
 * (backup first). A small merge of our own: entries with our name are replaced, others kept as they are.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { RemoteError, UserError } from '../errors.js';
import { writeFileAtomicAsync } from '../store/atomic.js';

type Named = { name: string; [k: string]: unknown };
export interface KubeconfigDoc {
  apiVersion?: string;
  kind?: string;
  clusters?: Array<Named & { cluster?: Record<string, unknown> }>;
  contexts?: Array<Named & { context?: Record<string, unknown> }>;
  users?: Array<Named & { user?: Record<string, unknown> }>;
  'current-context'?: string;
  preferences?: Record<string, unknown>;
  [k: string]: unknown;
}

export function parseKubeconfig(text: string, source: string): KubeconfigDoc {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new RemoteError(`${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (doc == null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new RemoteError(`${source} is not a kubeconfig (not a YAML mapping)`);
  return doc as KubeconfigDoc;
}

/** k3s.yaml → a kubeconfig for `name` whose server is `server` (https://VIP:6443). */
export function rewriteKubeconfig(k3sYaml: string, opts: { server: string; name: string }): string {
  const doc = parseKubeconfig(k3sYaml, 'k3s.yaml');
  const cluster = doc.clusters?.[0];
  const user = doc.users?.[0];
  if (!cluster?.cluster || !user?.user)
    throw new RemoteError('k3s.yaml on the first server has no cluster or user entry', {
      fix: 'Check k3s on the first server (sudo systemctl status k3s).',
    });
  const out: KubeconfigDoc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: opts.name, cluster: { ...cluster.cluster, server: opts.server } }],
    contexts: [{ name: opts.name, context: { cluster: opts.name, user: opts.name } }],
    users: [{ name: opts.name, user: { ...user.user } }],
    'current-context': opts.name,
    preferences: {},
  };
  return stringify(out, { lineWidth: 0 });
}

function upsert<T extends Named>(list: T[] | undefined, items: T[] | undefined): T[] {
  const out = [...(list ?? [])];
  for (const it of items ?? []) {
    const i = out.findIndex((x) => x.name === it.name);
    if (i >= 0) out[i] = it;
    else out.push(it);
  }
  return out;
}

/** Merge `ours` into `existing`: same-named clusters/contexts/users replaced, current-context switched. */
export function mergeKubeconfigs(existing: KubeconfigDoc, ours: KubeconfigDoc): KubeconfigDoc {
  return {
    ...existing,
    apiVersion: existing.apiVersion ?? 'v1',
    kind: existing.kind ?? 'Config',
    clusters: upsert(existing.clusters, ours.clusters),
    contexts: upsert(existing.contexts, ours.contexts),
    users: upsert(existing.users, ours.users),
    'current-context': ours['current-context'] ?? existing['current-context'],
    preferences: existing.preferences ?? {},
  };
}

/** Write a kubeconfig file (0600); returns false when it already had exactly this content. */
export async function writeKubeconfigFile(path: string, text: string): Promise<boolean> {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) {
    await chmod(path, 0o600);
    return false;
  }
  await writeFileAtomicAsync(path, text, 0o600);
  return true;
}

export interface MergeResult {
  path: string;
  changed: boolean;
  backup?: string;
}

/** Merge our kubeconfig into `<home>/.kube/config`, backing the old file up as config.bak-<timestamp>. */
export async function mergeIntoUserKubeconfig(home: string, ours: string, now: Date = new Date()): Promise<MergeResult> {
  const path = join(home, '.kube', 'config');
  const oursDoc = parseKubeconfig(ours, 'the new kubeconfig');
  let existingText: string | undefined;
  if (existsSync(path)) existingText = readFileSync(path, 'utf8');
  let existing: KubeconfigDoc = {};
  if (existingText !== undefined) {
    try {
      existing = parseKubeconfig(existingText, path);
    } catch (err) {
      throw new UserError(`${path} cannot be read as a kubeconfig, so it was left alone: ${(err as Error).message}`, {
        fix: `Fix or move ${path}, or run with --no-merge-kubeconfig and use the cluster's own kubeconfig file.`,
      });
    }
  }
  const merged = stringify(mergeKubeconfigs(existing, oursDoc), { lineWidth: 0 });
  if (existingText === merged) return { path, changed: false };
  let backup: string | undefined;
  if (existingText !== undefined) {
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    backup = `${path}.bak-${stamp}`;
    await copyFile(path, backup);
    await chmod(backup, 0o600);
  }
  await writeFileAtomicAsync(path, merged, 0o600);
  return { path, changed: true, backup };
}
