/** Where the step list comes from: steps/index.ts, unless the caller hands the runner its own (tests do). */
import type { Config } from '../config/schema.js';
import type { RunOptions, Step } from '../../steps/types.js';
import type { ClusterState } from './state.js';

/** The plan for a config; `saved` is the cluster's state so far (what earlier runs built, e.g. nodes since removed from the config). */
export type BuildSteps = (config: Config, options: RunOptions, saved?: ClusterState) => Step[] | Promise<Step[]>;

/** The product's step list (loaded on first use: `--help` does not need it). */
export async function loadBuildSteps(): Promise<BuildSteps> {
  const mod = await import('../../steps/index.js');
  return mod.buildSteps;
}
