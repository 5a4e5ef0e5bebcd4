/**
 * Helpers every step phase shares (proxmox, template, nodes, destroy): the recorded outputs of other
 * steps, the facts of proxmox:connect, PVE tags, and the waits on Proxmox tasks and VMs.
 */
import { AbortedError, BugError, RemoteError } from '../src/errors.js';
import type { ProxmoxClient, PveTaskStatus, Upid } from '../src/proxmox/types.js';
import { STEP, type ProxmoxFacts } from './ids.js';
import type { StepContext } from './types.js';

/** The outputs step `id` recorded; a missing record is a bug (the step is in `needs`). */
export function recorded<T>(ctx: StepContext, id: string, what: string): T {
  const o = ctx.outputs(id) as T | undefined;
  if (!o) throw new BugError(`${id} has no recorded ${what}`);
  return o;
}

/** What proxmox:connect found: PVE version, nodes, snippets path. */
export function facts(ctx: StepContext): ProxmoxFacts {
  const f = ctx.outputs<ProxmoxFacts & Record<string, unknown>>(STEP.proxmoxConnect);
  if (!f || !Array.isArray(f.pveNodes) || f.pveNodes.length === 0) {
    throw new BugError(`a step ran without the facts of ${STEP.proxmoxConnect} (PVE version, nodes, snippets path)`);
  }
  return f;
}

/** PVE tags ("a;b", also "a,b" or "a b") as a list. */
export function splitTags(tags: unknown): string[] {
  return typeof tags === 'string' ? tags.split(/[;, ]+/).filter(Boolean) : [];
}

/**
 * Poll `probe` until it returns a value, with an interval that grows with the time waited (2 %, 25 ms – 1 s:
 * a probe is one or two SSH round trips, cheap next to the time a late notice costs on the critical path;
 * the 25 ms grow when many waits run at once),
 * reporting progress. Throws RemoteError after timeoutMs.
 */
/**
 * Waits (pollUntil, awaitTask) under way in this process. Polling fast is cheap for a few waits; with
 * dozens at once (200 agents joining) the probes themselves cost CPU, SSH and API time, so the
 * shortest interval grows with their number (25 ms × waits / 4).
 */
let activeWaits = 0;
const minPollMs = (floor: number) => floor * Math.max(1, activeWaits / 4);

export async function pollUntil<T>(
  ctx: StepContext,
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; fix?: string; onTimeout?: () => Promise<string | undefined> },
): Promise<T> {
  const started = ctx.services.now();
  activeWaits++;
  try {
    for (;;) {
      if (ctx.signal.aborted) throw new AbortedError();
      const v = await probe();
      if (v !== undefined) return v;
      const waited = ctx.services.now() - started;
      if (waited > opts.timeoutMs) {
        const detail = opts.onTimeout ? await opts.onTimeout().catch(() => undefined) : undefined;
        throw new RemoteError(`Timed out after ${Math.round(waited / 1000)} s waiting for ${what}`, { fix: opts.fix, detail });
      }
      ctx.progress(`waiting for ${what} (${Math.round(waited / 1000)} s)`);
      await ctx.services.sleep(Math.min(1000, Math.max(minPollMs(25), waited * 0.02)), ctx.signal);
    }
  } finally {
    activeWaits--;
  }
}

/**
 * Wait for a Proxmox task, polling its status at an interval that grows with the time waited (10 %,
 * from the client's pollFloorMs – about two GET round trips, 20 ms on a LAN – to 1 s), then let the
 * client's waitTask report the result (exit status, log tail) from the stopped status read here. Short
 * tasks (a linked clone, a resize) hold Proxmox locks and our clone slots only as long as they run.
 */
export async function awaitTask(ctx: StepContext, pve: ProxmoxClient, node: string, upid: Upid): Promise<PveTaskStatus> {
  const started = ctx.services.now();
  let stopped: PveTaskStatus;
  activeWaits++;
  try {
    for (;;) {
      if (ctx.signal.aborted) throw new AbortedError();
      const st = await pve.taskStatus(node, upid);
      if (st.status === 'stopped') {
        stopped = st;
        break;
      }
      const waited = ctx.services.now() - started;
      await ctx.services.sleep(Math.min(1000, Math.max(minPollMs(pve.pollFloorMs?.() ?? 20), waited * 0.1)), ctx.signal);
    }
  } finally {
    activeWaits--;
  }
  return pve.waitTask(node, upid, { signal: ctx.signal, onLog: (l) => ctx.log(l, 'debug'), known: stopped });
}

/**
 * Our VM by VMID: looked up in the cluster listing (shared between steps, at most `maxAgeMs` old; 0 =
 * fresh), then read on its host (status and config), so name, lock and tags are current.
 */
export async function findVm(
  ctx: StepContext,
  pve: ProxmoxClient,
  vmid: number,
  maxAgeMs = 1000,
): Promise<{ vmid: number; node: string; name?: string; lock?: string; status: string; template: boolean; tags?: string } | undefined> {
  const listed = (await listVms(ctx, pve, maxAgeMs)).find((v) => v.vmid === vmid);
  if (!listed) return undefined;
  try {
    return await readVm(pve, listed.node, vmid);
  } catch {
    // Gone (or moved) since the listing: ask again, fresh.
    if (maxAgeMs === 0) return undefined;
    return findVm(ctx, pve, vmid, 0);
  }
}

export type FoundVmInfo = NonNullable<Awaited<ReturnType<typeof findVm>>>;

/** A VM's status and config on `node` (two small GETs): name, lock, tags, template flag. */
async function readVm(pve: ProxmoxClient, node: string, vmid: number): Promise<FoundVmInfo> {
  const [st, cfg] = await Promise.all([pve.vmStatus(node, vmid), pve.vmConfig(node, vmid)]);
  return {
    vmid,
    node,
    name: st.name ?? (cfg.name as string | undefined),
    lock: st.lock ?? (cfg.lock as string | undefined),
    status: st.status,
    template: st.template === true || Number(cfg.template ?? 0) === 1,
    tags: cfg.tags as string | undefined,
  };
}

const NO_SUCH_VM = /does not exist|no such VM|not found/i;

/**
 * Our VM by VMID, read on the host where it should be (its own status and config, not the cluster
 * listing, which grows with every guest). Only when it is not there does the listing say whether it is
 * elsewhere: the listing of this run (fetched once), or a fresh one with `fresh` (after a clone was
 * refused because the VMID is taken).
 */
export async function findVmAt(
  ctx: StepContext,
  pve: ProxmoxClient,
  vmid: number,
  host: string | undefined,
  fresh = false,
): Promise<FoundVmInfo | undefined> {
  if (host) {
    try {
      return await readVm(pve, host, vmid);
    } catch (err) {
      if (!NO_SUCH_VM.test(String((err as Error)?.message))) throw err;
    }
  }
  const listed = (await listVms(ctx, pve, fresh ? 0 : Infinity)).find((v) => v.vmid === vmid);
  if (!listed || listed.node === host) return undefined;
  try {
    return await readVm(pve, listed.node, vmid);
  } catch (err) {
    if (NO_SUCH_VM.test(String((err as Error)?.message))) return undefined;
    throw err;
  }
}

const listings = new WeakMap<ProxmoxClient, { at: number; vms: Promise<Awaited<ReturnType<ProxmoxClient['vms']>>> }>();

/**
 * The cluster's VM listing, shared by the steps checking at about the same moment: one
 * GET /cluster/resources (slow on big clusters) answers many checks. At most `maxAgeMs` old.
 */
export function listVms(ctx: StepContext, pve: ProxmoxClient, maxAgeMs = 1000): ReturnType<ProxmoxClient['vms']> {
  const now = ctx.services.now();
  const c = listings.get(pve);
  if (c && now - c.at <= maxAgeMs) return c.vms;
  const vms = pve.vms();
  listings.set(pve, { at: now, vms });
  vms.catch(() => listings.delete(pve));
  return vms;
}
