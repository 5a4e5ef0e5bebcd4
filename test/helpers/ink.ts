/**
 * Test helper over Ink (in the style of ink-testing-library and Shopify cli-kit): render into a fake
 * terminal of a given size, write ONE key, then wait until the expected text appears in the last frame.
 */
import { EventEmitter } from 'node:events';
import type { ReactNode } from 'react';
import { render as inkRender, type Instance } from 'ink';

export class FakeStdout extends EventEmitter {
  frames: string[] = [];
  isTTY = true;
  constructor(
    public columns = 80,
    public rows = 24,
  ) {
    super();
  }
  write = (frame: string): boolean => {
    this.frames.push(frame);
    return true;
  };
  lastFrame = (): string => this.frames.at(-1) ?? '';
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

export class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  write = (data: string): void => {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  };
  read = (): string | null => {
    const d = this.data;
    this.data = null;
    return d;
  };
  setEncoding(): void {}
  setRawMode(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
}

export const KEYS = {
  enter: '\r',
  esc: '\x1b',
  tab: '\t',
  shiftTab: '\x1b[Z',
  up: '\x1b[A',
  down: '\x1b[B',
  right: '\x1b[C',
  left: '\x1b[D',
  backspace: '\x7f',
  space: ' ',
  ctrlC: '\x03',
} as const;

// eslint-disable-next-line no-control-regex
export const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, '');

export interface Rendered {
  stdout: FakeStdout;
  stdin: FakeStdin;
  stderr: FakeStdout;
  instance: Instance;
  /** The last frame without ANSI styling. */
  frame(): string;
  /** Every frame written so far, joined (to assert something never appeared). */
  allFrames(): string;
  /** Write one key (a KEYS value or text) and let React settle. */
  press(key: string): Promise<void>;
  /** Type text one character at a time. */
  type(text: string): Promise<void>;
  /** Wait until the last frame matches. */
  waitFor(match: string | RegExp | ((frame: string) => boolean), timeoutMs?: number): Promise<string>;
  unmount(): void;
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

export function render(tree: ReactNode, opts: { columns?: number; rows?: number } = {}): Rendered {
  const stdout = new FakeStdout(opts.columns ?? 80, opts.rows ?? 24);
  const stderr = new FakeStdout(opts.columns ?? 80, opts.rows ?? 24);
  const stdin = new FakeStdin();
  const instance = inkRender(tree, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
    interactive: true,
  });
  const r: Rendered = {
    stdout,
    stdin,
    stderr,
    instance,
    frame: () => stripAnsi(stdout.lastFrame()),
    allFrames: () => stripAnsi(stdout.frames.join('\n')),
    async press(key) {
      stdin.write(key);
      // A lone Esc is held by Ink's parser (20 ms) in case a sequence follows: wait it out.
      await tick(key === KEYS.esc ? 50 : 5);
    },
    async type(text) {
      for (const ch of text) await r.press(ch);
    },
    async waitFor(match, timeoutMs = 15_000) {
      const test =
        typeof match === 'function' ? match : typeof match === 'string' ? (f: string) => f.includes(match) : (f: string) => match.test(f);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const f = r.frame();
        if (test(f)) {
          // Let passive effects run: input handlers of a just-shown component attach after its frame.
          await tick(15);
          return f;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(match)}; last frame:\n${f}`);
        await tick(10);
      }
    },
    unmount() {
      instance.unmount();
      instance.cleanup();
    },
  };
  return r;
}
