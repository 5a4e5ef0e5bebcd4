/**
 * Ctrl-C / SIGTERM during a run: the first signal aborts the run's signal (running steps stop and go
 * back to pending, the state is saved); the second quits at once, since every transition is already
 * saved. Returns the uninstaller. Used by up and destroy.
 */
import { EXIT } from '../errors.js';
import { writeLine, type CliIo } from './io.js';

export function stopOnSignals(
  io: CliIo,
  run: { log: { write(line: string): void }; close(): void },
  controller: AbortController,
  resume: string,
): (() => void) | undefined {
  let signals = 0;
  return io.onSignal?.((sig) => {
    signals++;
    run.log.write(`received ${sig}`);
    if (signals === 1) {
      writeLine(
        io.stderr,
        `\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping; waiting for running steps to stop (press Ctrl-C again to quit at once)…`,
      );
      controller.abort();
      return;
    }
    writeLine(io.stderr, `Quitting at once. Resume with:\n  ${resume}`);
    run.close();
    process.exit(EXIT.interrupted);
  });
}
