/**
 * Run events: the one stream the plain printer, the log file and the Ink UI all consume.
 * The runner emits; it never imports React.
 */
import { EventEmitter } from 'node:events';

export type StepStatus = 'pending' | 'running' | 'done' | 'skipped' | 'failed';

export type RunEvent =
  | { type: 'plan'; steps: Array<{ id: string; title: string; group: string; status: StepStatus }> }
  | {
      type: 'step';
      id: string;
      title: string;
      group: string;
      status: StepStatus;
      at: number;
      via?: 'check' | 'run';
      reason?: string;
      error?: { message: string; fix?: string; detail?: string };
    }
  | { type: 'log'; id: string; group: string; line: string; level: 'info' | 'warn' | 'error' | 'debug'; at: number }
  | { type: 'progress'; id: string; group: string; message: string; fraction?: number; at: number }
  | { type: 'run'; status: 'started' | 'succeeded' | 'failed' | 'interrupted'; at: number; message?: string };

export class RunEvents extends EventEmitter<{ event: [RunEvent] }> {
  emitEvent(e: RunEvent): void {
    this.emit('event', e);
  }
  onEvent(fn: (e: RunEvent) => void): () => void {
    this.on('event', fn);
    return () => this.off('event', fn);
  }
}
