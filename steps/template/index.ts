/**
 * The template phase: release → image (download-url, verified) and snippet (SFTP) → VM (import) →
 * template. Every step's `check` reads the real state, so a repeated or resumed run redoes nothing.
 */
import type { Config } from '../../src/config/schema.js';
import type { RunOptions, Step } from '../types.js';
import { imageStep } from './image.js';
import { readyStep } from './ready.js';
import { releaseStep, type TemplateDeps } from './release.js';
import { snippetStep } from './snippet.js';
import { vmStep } from './vm.js';

export type { TemplateDeps } from './release.js';
export { TEMPLATE_STEP } from './common.js';

export function templateSteps(config: Config, options: RunOptions, deps: TemplateDeps = {}): Step[] {
  return [
    releaseStep(config, options, deps),
    imageStep(config, options),
    snippetStep(config, options),
    vmStep(config, options),
    readyStep(config, options),
  ];
}
