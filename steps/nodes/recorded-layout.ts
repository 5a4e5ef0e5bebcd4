/** The layout an earlier run built, as its step records say (kept when the config's counts change). */
import type { SavedRun } from '../types.js';
import { NODES_STEP } from './common.js';

/** node name → the VMID its clone step recorded and its static address (any node an earlier run built). */
export function recordedLayout(saved: SavedRun | undefined): Map<string, { vmid: number; address?: string }> {
  const out = new Map<string, { vmid: number; address?: string }>();
  for (const [id, rec] of Object.entries(saved?.steps ?? {})) {
    const m = /^node:(.+):clone$/.exec(id);
    const o = rec.outputs as { vmid?: unknown; name?: unknown } | undefined;
    if (!m || typeof o?.vmid !== 'number' || o.name !== m[1]) continue;
    const ssh = saved!.steps[NODES_STEP.ssh(m[1]!)]?.outputs as { address?: unknown; addressSource?: unknown } | undefined;
    const address = ssh?.addressSource === 'static' && typeof ssh.address === 'string' ? ssh.address : undefined;
    out.set(m[1]!, { vmid: o.vmid, ...(address ? { address } : {}) });
  }
  return out;
}
