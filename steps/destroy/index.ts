/**
 * The destroy plan (`flatcar-k3s destroy`): proxmox:connect (read-only, as for `up`) → per node
 * destroy:<node>:vm (lane pve-destroy) → destroy:snippets, destroy:template (unless --keep-template),
 * destroy:kubeconfig → destroy:local (state records, node pins, then the secrets file). Every check is
 * "already gone?", so a second destroy is a no-op and an interrupted one resumes.
 */
import type { Config } from '../../src/config/schema.js';
import { planNodes } from '../../src/config/layout.js';
import type { StateStore } from '../../src/runner/state.js';
import type { RunOptions, Step } from '../types.js';
import { proxmoxSteps } from '../proxmox/index.js';
import { destroyVmStep } from './vm.js';
import { destroySnippetsStep } from './snippets.js';
import { destroyTemplateStep } from './template.js';
import { destroyKubeconfigStep, destroyLocalStep, type LocalForget } from './local.js';

export { DESTROY_STEP, DESTROY_LANE } from './common.js';
export type { LocalForget } from './local.js';

export interface DestroyOptions {
  keepTemplate?: boolean;
  /** Edits the run's state (ClusterRun.store): see storeForget. */
  state: LocalForget;
}

/** LocalForget over the run's StateStore, looked up when the last step runs (the store exists by then). */
export function storeForget(store: () => StateStore): LocalForget {
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
  for (const n of planNodes(config)) steps.push(destroyVmStep(config, n, options));
  steps.push(destroySnippetsStep(config, options));
  if (!d.keepTemplate) steps.push(destroyTemplateStep(config, options));
  steps.push(destroyKubeconfigStep(config, options));
  steps.push(destroyLocalStep(config, options, d.state, steps.map((s) => s.id)));
  return steps;
}
