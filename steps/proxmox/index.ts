/** The Proxmox phase: one read-only step that connects and checks what the later steps rely on. */
import type { Config } from '../../src/config/schema.js';
import type { RunOptions, Step } from '../types.js';
import { connectStep } from './connect.js';

export function proxmoxSteps(config: Config, _options: RunOptions): Step[] {
  return [connectStep(config)];
}
