#!/usr/bin/env node
/**
 * The published entry point: check the Node.js version first, then run the CLI with the real process
 * streams and exit with its code. Only the version check is imported statically: static imports are
 * loaded before any code runs, and the CLI's dependencies fail on an old Node before we could explain.
 */
// A namespace import: a named import of enableCompileCache would not even load on Node 20 (no such export).
import * as nodeModule from 'node:module';
import { nodeVersionProblem } from '../src/cli/node-version.js';

// Node's on-disk compile cache (22.1+): the CLI's modules (ink, React, the steps) load from cached
// bytecode after the first start. Where it cannot be used (read-only cache dir, old Node) it is skipped.
try {
  (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  /* not fatal: only slower */
}

const problem = nodeVersionProblem(process.versions.node);
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`);
  process.exit(2);
}
const { runCli, reportError } = await import('../src/cli/main.js');
const { processIo } = await import('../src/cli/io.js');
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
