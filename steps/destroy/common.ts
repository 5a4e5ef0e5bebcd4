/**
 * What the destroy steps share: their ids and lane, which VMs and snippet files are this cluster's
 * (our tags AND the planned/recorded name; file names as steps/nodes and steps/template write them),
 * and deleting a VM the way Proxmox wants it (stop, then DELETE purge + destroy-unreferenced-disks,
 * retried on lock timeouts).
 */
import type { Config } from '../../src/config/schema.js';
import { RemoteError } from '../../src/errors.js';
import { withLockRetry } from '../../src/proxmox/retry.js';
import type { ProxmoxClient } from '../../src/proxmox/types.js';
import type { SshSession } from '../../src/ssh/types.js';
import type { StepContext } from '../types.js';
import { awaitTask, facts, findVm, splitTags } from '../shared.js';
import { connectPveSsh } from '../template/pve-ssh.js';
import { snippetPath } from '../template/snippet.js';
import { waitUnlocked } from '../nodes/clone.js';

export const DESTROY_STEP = {
  /** Per node: its VM (the planned VMID and the one recorded by `up`, if different). */
  vm: (name: string) => `destroy:${name}:vm`,
  /** The nodes' Ignition snippets on the PVE host. */
  snippets: 'destroy:snippets',
  /** The cluster's template VM(s) and their snippet, when no linked clone needs them. */
  template: 'destroy:template',
  /** The cluster's entries in ~/.kube/config and its own kubeconfig file. */
  kubeconfig: 'destroy:kubeconfig',
  /** Last: the cluster's step records and node host-key pins, then the secrets file (k3s token). */
  local: 'destroy:local',
} as const;

/** VM deletions in flight: each holds its VM's lock and the storage's; Proxmox's lock timeouts bite beyond a few. */
export const DESTROY_LANE = 'pve-destroy';

export type FoundVm = NonNullable<Awaited<ReturnType<typeof findVm>>>;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** File names of the nodes' snippets of this cluster (any node, any content hash). */
export function nodeSnippetPattern(config: Config): RegExp {
  const c = esc(config.cluster.name);
  return new RegExp(`^flatcar-k3s-${c}-${c}-(server|agent)-\\d+-[0-9a-f]{12}\\.ign$`);
}

/** File names of the template's snippets of this cluster (any content hash). */
export function templateSnippetPattern(config: Config): RegExp {
  return new RegExp(`^flatcar-k3s-${esc(config.cluster.name)}-template-[0-9a-f]{12}\\.ign$`);
}

/** Why a VM is not ours to delete, or undefined when it is (our tags, the expected name, no template). */
export function notOursBecause(config: Config, vm: FoundVm, name: string): string | undefined {
  const tags = splitTags(vm.tags);
  if (vm.template) return 'it is a template';
  if (vm.name !== name) return `its name is "${vm.name ?? ''}", not ${name}`;
  const missing = ['flatcar-k3s', config.cluster.name].filter((t) => !tags.includes(t));
  if (missing.length) return `it lacks the tag${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`;
  return undefined;
}

/** Snippet files in the snippets storage (file names), listed through the API on `pveNode`. */
export async function listSnippets(pve: ProxmoxClient, pveNode: string, storage: string): Promise<string[]> {
  const vols = await pve.storageContent(pveNode, storage, 'snippets');
  return vols
    .filter((v) => v.content === 'snippets' || v.volid.includes(':snippets/'))
    .map((v) => v.volid.replace(/^[^:]*:snippets\//, ''));
}

/**
 * This cluster's snippet files by the host that holds them: with a shared snippets storage (or one
 * PVE node) one entry under `undefined` (the API's host over proxmox.ssh), listed once; otherwise one
 * entry per PVE node whose own storage lists any (each removed over SSH to that host). `recorded`
 * files (from the state) go with the first entry, so a listing that hides them is checked anyway.
 */
export async function snippetsByHost(
  pve: ProxmoxClient,
  pveNodes: string[],
  storage: string,
  pattern: RegExp,
  recorded: string[],
): Promise<Map<string | undefined, string[]>> {
  const first = pveNodes[0]!;
  const shared = pveNodes.length < 2 || ((await pve.storages(first)).find((s) => s.storage === storage)?.shared ?? false);
  const out = new Map<string | undefined, string[]>();
  for (const host of shared ? [first] : pveNodes) {
    const files = (await listSnippets(pve, host, storage)).filter((f) => pattern.test(f));
    if (files.length) out.set(shared ? undefined : host, files);
  }
  const rec = recorded.filter((f) => pattern.test(f));
  if (rec.length) {
    const key = shared ? undefined : first;
    out.set(key, [...new Set([...(out.get(key) ?? []), ...rec])]);
  }
  return out;
}

/** A volid "local:snippets/x.ign" → "x.ign". */
export const fileOfVolid = (volid: string): string => volid.replace(/^[^:]*:snippets\//, '');

/** The first of these snippet files still on its host ("<file> is still on <host>"), or undefined when none is. */
export async function snippetLeftOnHosts(ctx: StepContext, byHost: Iterable<[string | undefined, string[]]>): Promise<string | undefined> {
  for (const [host, files] of byHost) {
    const session = await connectPveSsh(ctx, host);
    try {
      for (const f of files)
        if (await session.stat(snippetPath(facts(ctx).snippetsPath, f))) return `${f} is still on ${host ?? 'the host'}`;
    } finally {
      await session.close();
    }
  }
  return undefined;
}

/** Remove snippet files (by file name) from each PVE host's snippets storage, over SSH to that host. */
export async function removeSnippetsOnHosts(ctx: StepContext, byHost: Iterable<[string | undefined, string[]]>): Promise<string[]> {
  const removed: string[] = [];
  for (const [host, files] of byHost) {
    const session = await connectPveSsh(ctx, host);
    try {
      removed.push(
        ...(await removeFiles(
          ctx,
          session,
          files.map((f) => snippetPath(facts(ctx).snippetsPath, f)),
        )),
      );
    } finally {
      await session.close();
    }
  }
  return removed;
}

/** Remove files over SFTP; returns the ones that were there. */
export async function removeFiles(ctx: StepContext, session: SshSession, paths: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const p of paths) {
    if (ctx.signal.aborted) break;
    if (await session.remove(p)) {
      removed.push(p);
      ctx.log(`Removed ${p}`);
    }
  }
  return removed;
}

/**
 * Stop (if running) and delete a VM with purge (out of backup jobs, HA, replication) and
 * destroy-unreferenced-disks; lock timeouts are retried. A VM that vanished meanwhile counts as deleted.
 */
export async function deleteVm(ctx: StepContext, pve: ProxmoxClient, vm: FoundVm, what: string): Promise<void> {
  const retry = {
    signal: ctx.signal,
    onRetry: ({ attempt, delayMs }: { attempt: number; delayMs: number }) =>
      ctx.log(`Proxmox lock busy, retrying (attempt ${attempt + 1}) in ${Math.round(delayMs / 100) / 10} s`, 'warn'),
  };
  const st = await pve.vmStatus(vm.node, vm.vmid);
  if (st.status === 'running') {
    ctx.progress(`stopping ${what}`);
    await withLockRetry(async () => {
      const upid = await pve.stopVm(vm.node, vm.vmid);
      await awaitTask(ctx, pve, vm.node, upid);
    }, retry);
    ctx.log(`Stopped ${what}`);
  }
  ctx.progress(`deleting ${what}`);
  try {
    await withLockRetry(async () => {
      const upid = await pve.deleteVm(vm.node, vm.vmid, { purge: true, destroyUnreferencedDisks: true });
      await awaitTask(ctx, pve, vm.node, upid);
    }, retry);
  } catch (err) {
    if (!(await findVm(ctx, pve, vm.vmid, 0))) return; // gone anyway (deleted by someone, or our answer was lost)
    throw err;
  }
  const left = await findVm(ctx, pve, vm.vmid, 0);
  if (left)
    throw new RemoteError(`Proxmox reported ${what} as deleted, but VM ${vm.vmid} is still listed`, {
      fix: `Look at VM ${vm.vmid} on ${left.node} in the Proxmox UI, then run destroy again.`,
    });
  ctx.log(`Deleted ${what} with its disks`);
}

/** Wait for a locked VM (an interrupted clone or delete) and read it again. */
export async function settled(ctx: StepContext, pve: ProxmoxClient, vm: FoundVm): Promise<FoundVm | undefined> {
  if (!vm.lock) return vm;
  await waitUnlocked(ctx, pve, vm.node, vm.vmid).catch(async (err) => {
    if (await findVm(ctx, pve, vm.vmid, 0)) throw err;
  });
  return findVm(ctx, pve, vm.vmid, 0);
}
