/** Where the step list comes from: steps/index.ts, or (tests only) the module named by FLATCAR_K3S_TEST_STEPS. */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from '../config/schema.js';
import type { RunOptions, Step } from '../../steps/types.js';
import type { ClusterState } from './state.js';

/** The plan for a config; `saved` is the cluster's state so far (what earlier runs built, e.g. nodes since removed from the config). */
export type BuildSteps = (config: Config, options: RunOptions, saved?: ClusterState) => Step[] | Promise<Step[]>;

export async function loadBuildSteps(env: NodeJS.ProcessEnv = process.env): Promise<BuildSteps> {
  const testModule = env.FLATCAR_K3S_TEST_STEPS;
  if (testModule) {
    const file = isAbsolute(testModule) ? testModule : resolve(testModule);
    const mod = (await import(pathToFileURL(file).href)) as { buildSteps?: BuildSteps };
    if (typeof mod.buildSteps !== 'function') throw new Error(`FLATCAR_K3S_TEST_STEPS=${testModule} does not export buildSteps`);
    return mod.buildSteps;
  }
  const mod = await import('../../steps/index.js');
  return mod.buildSteps;
}
