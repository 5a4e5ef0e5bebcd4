/** A yes/no question on the terminal: anything but y/yes is no. */
import { createInterface } from 'node:readline/promises';
import type { InStream, OutStream } from './io.js';

export async function askYesNo(stdin: InStream, out: OutStream, question: string, signal?: AbortSignal): Promise<boolean> {
  const rl = createInterface({ input: stdin, output: out, terminal: false });
  try {
    const answer = await rl.question(`${question} (y/N) `, signal ? { signal } : {});
    return /^\s*y(es)?\s*$/i.test(answer);
  } catch {
    return false; // closed stdin or aborted: no
  } finally {
    rl.close();
  }
}
