/**
 * An append-only journal beside a snapshot file: one JSON object per line, each carrying a sequence
 * number `s`. Appends are written and fdatasync'd before they count as saved, so a run writes
 * O(transitions) bytes instead of rewriting the whole snapshot per transition. A kill mid-append
 * leaves at most one torn last line: readers stop at the first line that does not parse, and the
 * first append of a process cuts such a tail off, so new lines never glue onto a fragment.
 *
 * The owner writes a snapshot (src/store/atomic.ts) holding everything up to some `s`, then `reset()`s
 * the journal; entries with `s` at or below the snapshot's are skipped on load, so a crash between the
 * two (or an append that lands after the reset) changes nothing.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, ftruncateSync, openSync, readFileSync, write, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDirOf } from './atomic.js';

export interface JournalEntry {
  /** Sequence number: increasing over the life of the state. */
  s: number;
  [k: string]: unknown;
}

/** Every complete entry of the journal at `path`, sorted by `s` (none when there is no journal). */
export function readJournal<T extends JournalEntry>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const out: T[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break; // a torn last line (killed mid-append): not saved
    const line = text.slice(start, nl);
    start = nl + 1;
    if (!line) continue;
    let e: T;
    try {
      e = JSON.parse(line) as T;
    } catch {
      break; // never written whole: nothing after it was acknowledged either
    }
    if (typeof e?.s !== 'number') break;
    out.push(e);
  }
  // Appends of one process are ordered, but a synchronous append may overtake a group append under way.
  return out.sort((a, b) => a.s - b.s);
}

export class Journal {
  /** Bytes in the journal file (as far as this process knows). */
  bytes = 0;
  private repaired = false;

  constructor(
    readonly path: string,
    private readonly mode = 0o600,
  ) {}

  /** Once per process: drop a torn tail (bytes after the last newline), and learn the size. */
  private repair(): void {
    if (this.repaired) return;
    this.repaired = true;
    if (!existsSync(this.path)) return;
    const text = readFileSync(this.path);
    const end = text.lastIndexOf(0x0a) + 1;
    this.bytes = end;
    if (end === text.length) return;
    const fd = openSync(this.path, 'r+');
    try {
      ftruncateSync(fd, end);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The append descriptor, opened once and kept: a run appends thousands of times. */
  private fd?: number;

  private openAppend(): number {
    if (this.fd !== undefined) return this.fd;
    const created = !existsSync(this.path);
    this.fd = openSync(this.path, 'a', this.mode);
    // a new file must survive a crash as a directory entry too
    if (created) fsyncDirOf(dirname(this.path));
    return this.fd;
  }

  /** Append lines (each one JSON object, no newline inside) and fdatasync before returning. */
  appendSync(lines: string[]): void {
    if (!lines.length) return;
    this.repair();
    const data = lines.join('\n') + '\n';
    const fd = this.openAppend();
    writeSync(fd, data);
    fdatasyncSync(fd);
    this.bytes += Buffer.byteLength(data);
  }

  /** The same off the event loop (the write and the fdatasync run on libuv's threads). */
  async append(lines: string[]): Promise<void> {
    if (!lines.length) return;
    this.repair();
    const data = Buffer.from(lines.join('\n') + '\n');
    const fd = this.openAppend();
    for (let off = 0; off < data.length; ) {
      off += await new Promise<number>((res, rej) => write(fd, data, off, data.length - off, null, (err, n) => (err ? rej(err) : res(n))));
    }
    await new Promise<void>((res, rej) => fdatasync(fd, (err) => (err ? rej(err) : res())));
    this.bytes += data.length;
  }

  /** Close the append descriptor (the next append opens it again). */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  /** Empty the journal (after a snapshot that holds all of it). */
  resetSync(): void {
    this.repaired = true;
    this.bytes = 0;
    if (!existsSync(this.path)) return;
    // appends (O_APPEND) go on at the new end, through the same descriptor if it is open
    const fd = this.fd ?? openSync(this.path, 'r+');
    try {
      ftruncateSync(fd, 0);
      fdatasyncSync(fd);
    } finally {
      if (fd !== this.fd) closeSync(fd);
    }
  }
}
