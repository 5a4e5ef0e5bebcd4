/** One text line (or a few) per run event: shared by the plain printer and the log file. */
import type { RunEvent } from '../events.js';

export type Tone = 'ok' | 'bad' | 'warn' | 'dim' | 'plain';

export interface EventLine {
  text: string;
  tone: Tone;
  /** Debug lines go to the log file only. */
  debug?: boolean;
}

/** The text of a step's log line (the hot path of a log flood: the log file writes it directly). */
export function logLineText(e: Extract<RunEvent, { type: 'log' }>): string {
  return `  ${e.id}: ${e.level === 'info' ? '' : `${e.level}: `}${e.line}`;
}

export function eventLines(e: RunEvent): EventLine[] {
  switch (e.type) {
    case 'plan':
      return [{ text: `plan: ${e.steps.length} step${e.steps.length === 1 ? '' : 's'}`, tone: 'dim' }];
    case 'step': {
      const head = `${e.id}  ${e.title}`;
      switch (e.status) {
        case 'running':
          return [{ text: `running  ${head}`, tone: 'plain' }];
        case 'done':
          return [{ text: `done     ${head}${e.via === 'check' ? ' (already done)' : ''}${e.reason ? ` (${e.reason})` : ''}`, tone: 'ok' }];
        case 'skipped':
          return [{ text: `skipped  ${head}${e.reason ? ` (${e.reason})` : ''}`, tone: 'dim' }];
        case 'pending':
          return [{ text: `pending  ${head}${e.reason ? ` (${e.reason}; checked again on the next run)` : ''}`, tone: 'warn' }];
        case 'failed': {
          const lines: EventLine[] = [{ text: `FAILED   ${head}: ${e.error?.message ?? 'failed'}`, tone: 'bad' }];
          if (e.error?.fix) lines.push({ text: `         fix: ${e.error.fix}`, tone: 'bad' });
          for (const d of (e.error?.detail ?? '').split('\n').filter(Boolean)) lines.push({ text: `         | ${d}`, tone: 'dim' });
          return lines;
        }
      }
      return [];
    }
    case 'log':
      return [
        {
          text: logLineText(e),
          tone: e.level === 'error' ? 'bad' : e.level === 'warn' ? 'warn' : 'dim',
          debug: e.level === 'debug',
        },
      ];
    case 'progress':
      return [{ text: `  ${e.id}: ${e.message}${e.fraction !== undefined ? ` (${Math.round(e.fraction * 100)}%)` : ''}`, tone: 'dim' }];
    case 'run':
      return [
        {
          text: `run ${e.status}${e.message ? `: ${e.message}` : ''}`,
          tone: e.status === 'succeeded' ? 'ok' : e.status === 'started' ? 'plain' : 'bad',
        },
      ];
  }
}
