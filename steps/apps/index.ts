import type { Config } from '../../src/config/schema.js';
import type { RunOptions, Step } from '../types.js';

/** Placeholder until this module lands: no steps yet. */
export function appSteps(_config: Config, _options: RunOptions): Step[] {
  return [];
}
