/**
 * What `status` shows of a cluster, read from its saved state only (no network): the steps, and one
 * entry per node with its VM, address, and the k3s and Flatcar versions as last observed (by the k3s
 * steps, the rolling upgrade and cluster:ready, whichever saw the node last).
 */
import type { ClusterState, StepRecord } from '../runner/state.js';

export interface StatusNode {
  name: string;
  role: string;
  vmid?: number;
  pveNode?: string;
  address?: string;
  /** The binary in /opt/bin/k3s, as last put there or checked. */
  k3sInstalled?: string;
  /** status.nodeInfo.kubeletVersion, as last observed. */
  k3sRunning?: string;
  flatcar?: string;
  ready?: boolean;
  /** When the versions were last observed (ISO time). */
  observedAt?: string;
}

export interface StatusStep {
  id: string;
  status: string;
  title?: string;
  time?: string;
  reason?: string;
  error?: { message: string; fix?: string };
}

export interface StatusDocument {
  cluster: string;
  lastRun?: ClusterState['lastRun'] & { state: string };
  steps: StatusStep[];
  nodes: StatusNode[];
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);
const out = <T>(r: StepRecord | undefined) => r?.outputs as T | undefined;

/** Step ids in plan order, then any others. */
export function stepIds(state: ClusterState): string[] {
  const order = state.order ?? [];
  return [...order, ...Object.keys(state.steps).filter((id) => !order.includes(id))];
}

/** The cluster's nodes: those of the last plan (or of the saved steps when there is no plan). */
export function statusNodes(state: ClusterState): StatusNode[] {
  const names: string[] = [];
  for (const id of stepIds(state)) {
    const m = /^node:(.+):clone$/.exec(id);
    if (m && !names.includes(m[1]!)) names.push(m[1]!);
  }
  const observed =
    out<{ observed?: Record<string, { k3s?: string; flatcar?: string; ready: boolean; at: number }> }>(state.steps['cluster:ready'])
      ?.observed ?? {};
  return names.map((name) => {
    const step = (phase: string) => state.steps[`node:${name}:${phase}`];
    const vm =
      out<{ vmid?: number; pveNode?: string; role?: string }>(step('clone')) ??
      out<{ vmid?: number; pveNode?: string; role?: string }>(step('vm'));
    const ssh = out<{ address?: string }>(step('ssh'));
    const bin = out<{ version?: string }>(step('k3s-binary'));
    const roll = out<{ version?: string; running?: string; flatcar?: string; at?: number }>(step('k3s-roll'));
    const seen = observed[name];
    const rollNewer = roll?.at !== undefined && (!seen || roll.at >= seen.at);
    const binAt = step('k3s-binary')?.at ?? 0;
    const n: StatusNode = { name, role: vm?.role ?? (/-server-\d+$/.test(name) ? 'server' : 'agent') };
    if (vm?.vmid !== undefined) n.vmid = vm.vmid;
    if (vm?.pveNode) n.pveNode = vm.pveNode;
    if (ssh?.address) n.address = ssh.address;
    const installed = roll?.version && (roll.at ?? 0) >= binAt ? roll.version : bin?.version;
    if (installed) n.k3sInstalled = installed;
    const running = rollNewer ? roll!.running : seen?.k3s;
    if (running) n.k3sRunning = running;
    const flatcar = (rollNewer ? roll!.flatcar : undefined) ?? seen?.flatcar;
    if (flatcar) n.flatcar = flatcar;
    if (seen) n.ready = seen.ready;
    const at = iso(rollNewer ? roll!.at : seen?.at);
    if (at) n.observedAt = at;
    return n;
  });
}

export function statusDocument(state: ClusterState, runState: string | undefined): StatusDocument {
  return {
    cluster: state.cluster,
    ...(state.lastRun ? { lastRun: { ...state.lastRun, state: runState ?? state.lastRun.status } } : {}),
    steps: stepIds(state).map((id) => {
      const r = state.steps[id];
      if (!r) return { id, status: 'pending', ...(state.titles?.[id] ? { title: state.titles[id] } : {}) };
      return {
        id,
        status: r.status,
        ...(r.title ? { title: r.title } : {}),
        ...(iso(r.at) ? { time: iso(r.at) } : {}),
        ...(r.reason ? { reason: r.reason } : {}),
        ...(r.error ? { error: { message: r.error.message, ...(r.error.fix ? { fix: r.error.fix } : {}) } } : {}),
      };
    }),
    nodes: statusNodes(state),
  };
}

/** The node table of text `status`. */
export function nodeTableLines(nodes: StatusNode[]): string[] {
  if (nodes.length === 0) return [];
  const rows = nodes.map((n) => [
    n.name,
    n.role,
    n.vmid !== undefined ? String(n.vmid) : '-',
    n.pveNode ?? '-',
    n.address ?? '-',
    n.k3sInstalled ?? '-',
    n.k3sRunning ? `${n.k3sRunning}${n.ready === false ? ' (not Ready)' : ''}` : '-',
    n.flatcar ?? '-',
  ]);
  const head = ['NODE', 'ROLE', 'VMID', 'PVE NODE', 'ADDRESS', 'K3S INSTALLED', 'K3S RUNNING', 'FLATCAR'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`;
  return ['Nodes (as last observed):', line(head), ...rows.map(line)];
}
