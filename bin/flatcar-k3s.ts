#!/usr/bin/env node
/** The published entry point: run the CLI with the real process streams and exit with its code. */
import { runCli, reportError } from '../src/cli/main.js';
import { processIo } from '../src/cli/io.js';

const io = processIo();
let code: number;
try {
  code = await runCli(process.argv.slice(2), io);
} catch (err) {
  code = reportError(err, io);
}
// Log and state writes are synchronous, and stdout/stderr pipes are synchronous on Linux: exiting
// now cannot lose output, and it stops a stray handle (a socket a step left open) from hanging us.
process.exit(code);
