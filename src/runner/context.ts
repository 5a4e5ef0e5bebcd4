/** Builds the StepContext each step gets: outputs of earlier steps, redacted logging, the signal, services. */
import type { Config } from '../config/schema.js';
import type { RunEvents } from '../events.js';
import type { RunOptions, Step, StepContext, StepOutputs, StepServices } from '../../steps/types.js';
import type { Redactor } from '../log/redact.js';
import type { ClusterState } from './state.js';

export interface ContextBase {
  config: Config;
  clusterDir: string;
  stateDir: string;
  /** The current state (read at call time, so outputs recorded a moment ago are seen). */
  state: () => Readonly<ClusterState> | undefined;
  events: RunEvents;
  redactor: Redactor;
  services: StepServices;
  options: RunOptions;
  now?: () => number;
}

export function contextFactory(base: ContextBase): (step: Step, signal: AbortSignal) => StepContext {
  const now = base.now ?? Date.now;
  return (step, signal) => {
    // A poller reports the same "waiting for … (N s)" on every try (every 10 ms while a VM boots): only a
    // change of message or fraction reaches the screen and the log.
    let lastProgress: string | undefined;
    return {
      config: base.config,
      clusterDir: base.clusterDir,
      stateDir: base.stateDir,
      outputs<T extends StepOutputs = StepOutputs>(stepId: string): T | undefined {
        return base.state()?.steps[stepId]?.outputs as T | undefined;
      },
      outputsMatching(prefix: string) {
        const steps = base.state()?.steps ?? {};
        return Object.entries(steps)
          .filter(([id, rec]) => id.startsWith(prefix) && rec.outputs)
          .map(([id, rec]) => ({ id, outputs: rec.outputs! }));
      },
      log(line, level = 'info') {
        for (const l of base.redactor.redact(String(line)).split('\n'))
          base.events.emitEvent({ type: 'log', id: step.id, group: step.group, line: l, level, at: now() });
      },
      progress(message, fraction) {
        const key = `${fraction ?? ''}\0${message}`;
        if (key === lastProgress) return;
        lastProgress = key;
        base.events.emitEvent({
          type: 'progress',
          id: step.id,
          group: step.group,
          message: base.redactor.redact(message),
          fraction,
          at: now(),
        });
      },
      signal,
      services: base.services,
      options: base.options,
    };
  };
}
