/**
 * The log file: every run event appended as a timestamped line (debug lines included), secrets
 * redacted, file mode 0600. Writes are synchronous so a crash or SIGKILL loses nothing written.
 */
import { appendFileSync, chmodSync, closeSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunEvent, RunEvents } from '../events.js';
import { eventLines, logLineText } from './format.js';
import type { Redactor } from './redact.js';

/** Open log files, flushed when the process exits. */
const open = new Set<LogFile>();
const flushAll = () => {
  for (const l of open) l.flush();
};

export class LogFile {
  private fd: number | undefined;
  /** Lines of this turn of the event loop, written together at its end (one write, not one per line). */
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private flushing = false;

  constructor(
    readonly path: string,
    private readonly redactor?: Redactor,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.fd = openSync(path, 'a', 0o600);
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    // process.exit() right after a run: what is buffered still reaches the file.
    if (open.size === 0) process.on('exit', flushAll);
    open.add(this);
  }

  /** Write what is buffered (also done at the end of every turn of the event loop, and by close()). */
  flush(): void {
    if (this.fd === undefined || !this.buffer.length) return;
    const text = this.buffer.join('');
    this.buffer = [];
    this.bufferedBytes = 0;
    writeSync(this.fd, text);
  }

  /** The ISO timestamp of the last `at` written: a flood's lines share their millisecond. */
  private stampAt = Number.NaN;
  private stamp = '';

  /** Append one line (or several, split on newlines), each with an ISO timestamp. */
  write(text: string, at: number = Date.now()): void {
    if (this.fd === undefined) return;
    if (at !== this.stampAt) {
      this.stampAt = at;
      this.stamp = new Date(at).toISOString();
    }
    const stamp = this.stamp;
    const body = this.redactor ? this.redactor.redact(text) : text;
    const lines = body.includes('\n')
      ? body
          .split('\n')
          .map((l) => `${stamp} ${l}\n`)
          .join('')
      : `${stamp} ${body}\n`;
    this.buffer.push(lines);
    this.bufferedBytes += lines.length;
    // A flood (thousands of lines a second) costs one write per turn of the event loop, not per line.
    if (this.bufferedBytes >= 256 * 1024) this.flush();
    else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => {
        this.flushing = false;
        this.flush();
      });
    }
  }

  event(e: RunEvent): void {
    if (e.type === 'log') return this.write(logLineText(e), e.at);
    const at = 'at' in e ? e.at : Date.now();
    for (const l of eventLines(e)) this.write(l.text, at);
  }

  attach(events: RunEvents): () => void {
    return events.onEvent((e) => this.event(e));
  }

  close(): void {
    this.flush();
    open.delete(this);
    if (open.size === 0) process.off('exit', flushAll);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Append one line to a log file without keeping it open (errors before a cluster is known). */
export function appendLogLine(path: string, text: string, redactor?: Redactor): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const body = redactor ? redactor.redact(text) : text;
    const stamp = new Date().toISOString();
    appendFileSync(
      path,
      body
        .split('\n')
        .map((l) => `${stamp} ${l}\n`)
        .join(''),
      { mode: 0o600 },
    );
  } catch {
    // The log is a help, not a requirement: never fail a command because it cannot be written.
  }
}
