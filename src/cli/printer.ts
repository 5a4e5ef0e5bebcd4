/**
 * The plain printer: one line per step transition and per step log line, on stdout.
 * Colours only when stdout is a terminal and CI is not set.
 */
import type { RunEvents } from '../events.js';
import { eventLines, type Tone } from '../log/format.js';
import type { OutStream } from './io.js';

const COLOURS: Record<Tone, [string, string]> = {
  ok: ['\x1b[32m', '\x1b[39m'],
  bad: ['\x1b[31m', '\x1b[39m'],
  warn: ['\x1b[33m', '\x1b[39m'],
  dim: ['\x1b[2m', '\x1b[22m'],
  plain: ['', ''],
};

export interface PrinterOptions {
  colour: boolean;
  /** Show debug log lines too. */
  verbose?: boolean;
}

export function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

export function attachPrinter(events: RunEvents, out: OutStream, opts: PrinterOptions): () => void {
  const lastProgress = new Map<string, string>();
  return events.onEvent((e) => {
    if (e.type === 'plan') return; // the command prints the plan itself
    if (e.type === 'progress') {
      // Plain output: only when the message changes, not for every percent.
      if (lastProgress.get(e.id) === e.message) return;
      lastProgress.set(e.id, e.message);
    }
    const at = 'at' in e ? e.at : Date.now();
    for (const l of eventLines(e)) {
      if (l.debug && !opts.verbose) continue;
      const [on, off] = opts.colour ? COLOURS[l.tone] : ['', ''];
      out.write(`${clock(at)} ${on}${l.text}${off}\n`);
    }
  });
}
