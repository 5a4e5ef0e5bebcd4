/**
 * The destroy plan (`flatcar-k3s destroy`): proxmox:connect (read-only, as for `up`) → per node
 * destroy:<node>:vm (lane pve-destroy) → destroy:snippets, destroy:template (unless --keep-template),
 * destroy:kubeconfig → destroy:local (state records, node pins, then the secrets file). Every check is
 * "already gone?", so a second destroy is a no-op and an interrupted one resumes.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import type { RunOptions, Step } from '../types.js';
import { proxmoxSteps } from '../proxmox/index.js';
import { destroyVmStep, type DestroyTarget } from './vm.js';
import { NODES_STEP } from '../nodes/common.js';
import { destroySnippetsStep } from './snippets.js';
import { destroyTemplateStep } from './template.js';
import { destroyKubeconfigStep, destroyLocalStep, type LocalForget } from './local.js';

import { DESTROY_STEP } from './common.js';
export { DESTROY_STEP, DESTROY_LANE } from './common.js';
export type { DestroyTarget } from './vm.js';
export type { LocalForget } from './local.js';

/** The part of the run's saved state destroy reads: step records (outputs) and pins. */
export interface SavedRecords {
  steps: Record<string, { outputs?: Record<string, unknown> }>;
  pins: Record<string, string>;
}

/** The part of the run's state store (ClusterRun.store) destroy edits. */
export interface RecordsStore {
  get(): SavedRecords;
  update(fn: (s: SavedRecords) => void): void;
}

export interface DestroyOptions {
  keepTemplate?: boolean;
  /** Edits the run's state (ClusterRun.store): see storeForget. */
  state: LocalForget;
  /** Nodes an earlier `up` recorded that the config no longer plans (see recordedNodes). */
  recorded?: DestroyTarget[];
}

/** Nodes whose clone `up` recorded in the state but the config no longer plans (e.g. a lowered count). */
export function recordedNodes(config: Config, state: Pick<SavedRecords, 'steps'> | undefined): DestroyTarget[] {
  const planned = new Set(planNodes(config).map((n) => n.name));
  const out: DestroyTarget[] = [];
  for (const [id, rec] of Object.entries(state?.steps ?? {})) {
    const m = /^node:(.+):clone$/.exec(id);
    const o = rec.outputs as { vmid?: unknown; name?: unknown } | undefined;
    if (!m || planned.has(m[1]!) || typeof o?.vmid !== 'number' || o.name !== m[1] || id !== NODES_STEP.clone(m[1]!)) continue;
    out.push({ name: m[1]!, vmid: o.vmid });
  }
  return out.sort((a, b) => a.vmid - b.vmid);
}

/** LocalForget over the run's StateStore, looked up when the last step runs (the store exists by then). */
export function storeForget(store: () => RecordsStore): LocalForget {
  const matching = (records: (id: string) => boolean, pins: (key: string) => boolean) => {
    const s = store().get();
    return { ids: Object.keys(s.steps).filter(records), keys: Object.keys(s.pins).filter(pins) };
  };
  return {
    count(records, pins) {
      const m = matching(records, pins);
      return m.ids.length + m.keys.length;
    },
    forget(records, pins) {
      const m = matching(records, pins);
      if (m.ids.length + m.keys.length === 0) return 0;
      store().update((s) => {
        for (const id of m.ids) delete s.steps[id];
        for (const k of m.keys) delete s.pins[k];
      });
      return m.ids.length + m.keys.length;
    },
  };
}

export function destroySteps(config: Config, options: RunOptions, d: DestroyOptions): Step[] {
  const steps: Step[] = [...proxmoxSteps(config, options)];
  const targets: DestroyTarget[] = [...planNodes(config), ...(d.recorded ?? [])];
  for (const n of targets) steps.push(destroyVmStep(config, n, options));
  const vmSteps = targets.map((n) => DESTROY_STEP.vm(n.name));
  steps.push(destroySnippetsStep(config, options, vmSteps));
  if (!d.keepTemplate) steps.push(destroyTemplateStep(config, options, vmSteps));
  steps.push(destroyKubeconfigStep(config, options, vmSteps));
  steps.push(
    destroyLocalStep(
      config,
      options,
      d.state,
      steps.map((s) => s.id),
    ),
  );
  return steps;
}
