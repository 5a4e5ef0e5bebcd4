/** The ordered step list (a DAG through `needs`) for a validated config. */
import type { Config } from '../src/config/schema.js';
import type { RunOptions, SavedRun, Step } from './types.js';
import { leavingNodes, scaleDownSteps } from './scale/scale-down.js';
import { proxmoxSteps } from './proxmox/index.js';
import { templateSteps } from './template/index.js';
import { nodeSteps } from './nodes/index.js';
import { appSteps } from './apps/index.js';
import { STEP } from './ids.js';

export function buildSteps(config: Config, options: RunOptions, saved?: SavedRun): Step[] {
  const steps = [
    ...proxmoxSteps(config, options),
    ...templateSteps(config, options),
    ...nodeSteps(config, options, saved),
    ...appSteps(config, options),
  ];
  // nodes an earlier up built beyond the config's counts leave, after the cluster is Ready
  steps.push(...scaleDownSteps(config, options, leavingNodes(config, saved)));
  const ids = new Set<string>();
  for (const s of steps) {
    if (ids.has(s.id)) throw new Error(`duplicate step id ${s.id}`);
    ids.add(s.id);
  }
  // Drop dependencies on steps that are not in this plan (e.g. a module not selected).
  for (const s of steps) s.needs = s.needs.filter((n) => ids.has(n));
  // The apps preflight (is the Pulumi CLI installed?) gates every root step: a missing CLI stops the
  // run before any VM exists, not after the cluster is built.
  const gate = steps.find((s) => s.id === STEP.appsPreflight);
  if (gate) for (const s of steps) if (s !== gate && s.needs.length === 0) s.needs.push(gate.id);
  return steps;
}
