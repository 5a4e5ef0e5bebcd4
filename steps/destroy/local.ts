/**
 * The local side of destroy:
 * - destroy:kubeconfig — remove the cluster's entries from ~/.kube/config (backup first): only the
 *   cluster entry named after the cluster whose server is this cluster's (recorded, the cluster's own
 *   kubeconfig file, the VIP or the first server's address), the context of that name pointing at it,
 *   and the user of that name once no other context uses it; then <clusterDir>/kubeconfig.
 * - destroy:local (last) — the cluster's step records and node host-key pins leave the state (the
 *   Proxmox TLS/SSH pins stay: the host is the same), the apps' Pulumi state is deleted, then the
 *   secrets file (k3s token, Pulumi passphrase).
 *   The run log stays.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, copyFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Config } from '../../src/config/schema.js';
import { serverUrl } from '../../src/k3s/config.js';
import { parseKubeconfig, type KubeconfigDoc } from '../../src/kubeconfig/kubeconfig.js';
import { UserError } from '../../src/errors.js';
import { writeFileAtomicAsync } from '../../src/store/atomic.js';
import { clusterFiles } from '../../src/store/layout.js';
import { STEP, type KubeconfigOutputs } from '../ids.js';
import type { CheckResult, RunOptions, Step, StepContext } from '../types.js';
import { addressOf, firstServer } from '../nodes/common.js';
import { DESTROY_STEP } from './common.js';

const userKubeconfig = (ctx: StepContext) => join(ctx.options.homeDir ?? homedir(), '.kube', 'config');
const ownKubeconfig = (ctx: StepContext) => clusterFiles(ctx.clusterDir).kubeconfig;

/** The API server URLs this cluster's kubeconfig entries may point at. */
export function clusterServers(config: Config, ctx: Pick<StepContext, 'outputs' | 'clusterDir'>): string[] {
  const out = new Set<string>();
  const rec = ctx.outputs<KubeconfigOutputs & Record<string, unknown>>(STEP.kubeconfig)?.server;
  if (typeof rec === 'string') out.add(rec);
  const own = clusterFiles(ctx.clusterDir).kubeconfig;
  if (existsSync(own)) {
    try {
      const s = parseKubeconfig(readFileSync(own, 'utf8'), own).clusters?.find((c) => c.name === config.cluster.name)?.cluster?.server;
      if (typeof s === 'string') out.add(s);
    } catch {}
  }
  if (config.nodes.vip) out.add(serverUrl(config.nodes.vip));
  const first = addressOf(firstServer(config));
  if (first) out.add(serverUrl(first));
  return [...out];
}

/** `doc` without this cluster's entries (only those named after it and pointing at one of `servers`). */
export function withoutCluster(doc: KubeconfigDoc, name: string, servers: string[]): { doc: KubeconfigDoc; removed: string[] } {
  const removed: string[] = [];
  const cluster = doc.clusters?.find((c) => c.name === name);
  if (!cluster || !servers.includes(String(cluster.cluster?.server ?? ''))) return { doc, removed };
  const out: KubeconfigDoc = { ...doc, clusters: doc.clusters!.filter((c) => c !== cluster) };
  removed.push(`cluster ${name}`);
  const ctx = doc.contexts?.find((c) => c.name === name);
  if (ctx && ctx.context?.cluster === name) {
    out.contexts = doc.contexts!.filter((c) => c !== ctx);
    removed.push(`context ${name}`);
    if (out['current-context'] === name) out['current-context'] = '';
  }
  const userUsed = (out.contexts ?? []).some((c) => c.context?.user === name);
  if (!userUsed && doc.users?.some((u) => u.name === name)) {
    out.users = doc.users.filter((u) => u.name !== name);
    removed.push(`user ${name}`);
  }
  return { doc: out, removed };
}

interface KubeconfigPlan {
  text?: string;
  next?: string;
  removed: string[];
}

export function destroyKubeconfigStep(config: Config, _options: RunOptions, vmSteps: string[]): Step<KubeconfigPlan> {
  const name = config.cluster.name;
  const plan = (ctx: StepContext): KubeconfigPlan => {
    const path = userKubeconfig(ctx);
    if (!existsSync(path)) return { removed: [] };
    const text = readFileSync(path, 'utf8');
    let doc: KubeconfigDoc;
    try {
      doc = parseKubeconfig(text, path);
    } catch (err) {
      throw new UserError(`${path} cannot be read as a kubeconfig, so it was left alone: ${(err as Error).message}`, {
        fix: `Fix it, or remove the cluster/context/user "${name}" from it yourself; then run destroy again.`,
      });
    }
    const r = withoutCluster(doc, name, clusterServers(config, ctx));
    return { text, next: r.removed.length ? stringify(r.doc, { lineWidth: 0 }) : undefined, removed: r.removed };
  };
  return {
    id: DESTROY_STEP.kubeconfig,
    title: 'Remove the kubeconfig entries',
    group: 'cluster',
    needs: vmSteps,
    inputs: {},
    describe: (ctx) =>
      `Remove cluster/context/user "${name}" from ${userKubeconfig(ctx)} (backup first; only entries pointing at ${clusterServers(config, ctx).join(' or ') || 'this cluster'}) and delete ${ownKubeconfig(ctx)}`,
    async check(ctx: StepContext): Promise<CheckResult<KubeconfigPlan>> {
      const p = plan(ctx);
      if (p.next) return { done: false, reason: `${userKubeconfig(ctx)} has ${p.removed.join(', ')}`, plan: p };
      if (existsSync(ownKubeconfig(ctx))) return { done: false, reason: `${ownKubeconfig(ctx)} exists`, plan: p };
      return { done: true, reason: `no kubeconfig entry of ${name} is left` };
    },
    async run(ctx: StepContext, checked?: KubeconfigPlan) {
      const p = checked ?? plan(ctx);
      let backup: string | undefined;
      if (p.next && p.text !== undefined) {
        const path = userKubeconfig(ctx);
        backup = `${path}.bak-${new Date(ctx.services.now()).toISOString().replace(/[:.]/g, '-')}`;
        await copyFile(path, backup);
        await chmod(backup, 0o600);
        await writeFileAtomicAsync(path, p.next, 0o600);
        ctx.log(`Removed ${p.removed.join(', ')} from ${path} (previous file kept as ${backup})`);
      }
      if (existsSync(ownKubeconfig(ctx))) {
        rmSync(ownKubeconfig(ctx), { force: true });
        ctx.log(`Deleted ${ownKubeconfig(ctx)}`);
      }
      return { removed: p.removed, ...(backup ? { backup } : {}) };
    },
  };
}

/** State records that belong to the cluster that was (not to destroy itself or the Proxmox connection). */
const isClusterRecord = (id: string) => !id.startsWith('destroy:') && id !== STEP.proxmoxConnect;
/** Node host keys and the cluster CA (k3s.ca): both belong to the VMs that go. */
const isNodePin = (key: string) => key.startsWith('node-ssh:') || key === 'k3s.ca';

/**
 * The state is only reachable through the run's store, which steps do not get: this step edits the
 * state file's records through `forget`, given by the command (src/cli/commands/destroy.ts).
 */
export interface LocalForget {
  /** Remove the matching step records and pins; returns how many were there. */
  forget(records: (id: string) => boolean, pins: (key: string) => boolean): number;
  /** How many matching records/pins there are. */
  count(records: (id: string) => boolean, pins: (key: string) => boolean): number;
}

/**
 * The apps' Pulumi state. It describes apps in a cluster that is gone and is encrypted with a passphrase from
 * the secrets file: kept, the next `up` would find the apps "applied" and could not decrypt them.
 */
const pulumiDir = (clusterDir: string) => clusterFiles(clusterDir).pulumi;

export function destroyLocalStep(config: Config, _options: RunOptions, state: LocalForget, needs: string[]): Step {
  const secrets = (ctx: StepContext) => clusterFiles(ctx.clusterDir).secrets;
  return {
    id: DESTROY_STEP.local,
    title: 'Forget the cluster locally',
    group: 'cluster',
    needs,
    inputs: {},
    describe: (ctx) =>
      `Forget ${config.cluster.name} locally: its step records and node host-key pins leave ${clusterFiles(ctx.clusterDir).state}, the apps' Pulumi state ${pulumiDir(ctx.clusterDir)} is deleted, then ${secrets(ctx)} (k3s token); the run log stays`,
    async check(ctx: StepContext): Promise<CheckResult> {
      const n = state.count(isClusterRecord, isNodePin);
      if (n) return { done: false, reason: `${n} record(s) of the cluster in the state` };
      if (existsSync(pulumiDir(ctx.clusterDir))) return { done: false, reason: `${pulumiDir(ctx.clusterDir)} exists` };
      if (existsSync(secrets(ctx))) return { done: false, reason: `${secrets(ctx)} exists` };
      return { done: true, reason: `nothing of ${config.cluster.name} is recorded any more` };
    },
    async run(ctx: StepContext) {
      const n = state.forget(isClusterRecord, isNodePin);
      if (n) ctx.log(`Forgot ${n} step record(s) and node host-key pin(s) of ${config.cluster.name}`);
      if (existsSync(pulumiDir(ctx.clusterDir))) {
        rmSync(pulumiDir(ctx.clusterDir), { recursive: true, force: true });
        ctx.log(`Deleted ${pulumiDir(ctx.clusterDir)} (the Pulumi state of the cluster's apps)`);
      }
      // Last: the k3s token and other secrets of the cluster.
      if (existsSync(secrets(ctx))) {
        rmSync(secrets(ctx), { force: true });
        ctx.log(`Deleted ${secrets(ctx)} (the k3s token and other secrets of the cluster)`);
      }
      return { forgotten: n };
    },
  };
}
