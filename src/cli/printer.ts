/**
 * The plain printer: one line per step transition and per step log line, on stdout.
 * Colours only when stdout is a terminal and CI is not set.
 */
import type { RunEvents } from '../events.js';
import { eventLines, type Tone } from '../log/format.js';
import type { OutStream } from './io.js';
import type { RunResult } from '../runner/driver.js';

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

/** After a failed run: each failed step with its fix, what waits for it, and the command that resumes. */
export function printFailedRun(out: OutStream, result: Pick<RunResult, 'failed' | 'blocked'>, resume: string, logFile: string): void {
  for (const f of result.failed) {
    out.write(`Step ${f.id} (${f.title}) failed: ${f.error.message}\n`);
    if (f.error.fix) out.write(`  fix: ${f.error.fix}\n`);
  }
  if (result.blocked.length) out.write(`${result.blocked.length} step(s) wait for the failed one(s).\n`);
  out.write(`Fix the cause, then resume with:\n  ${resume}\nLog: ${logFile}\n`);
}
