/** Where the step list comes from: steps/index.ts, unless the caller hands the runner its own (tests do). */
import type { Config } from '../config/schema.js';
import type { RunOptions, Step } from '../../steps/types.js';

export type BuildSteps = (config: Config, options: RunOptions) => Step[] | Promise<Step[]>;

/** The product's step list (loaded on first use: `--help` does not need it). */
export async function loadBuildSteps(): Promise<BuildSteps> {
  const mod = await import('../../steps/index.js');
  return mod.buildSteps;
}
