/**
 * Test-only entry point: the CLI as bin/flatcar-k3s.ts runs it, with the step list of the module named
 * by the first argument (e.g. test/helpers/fake-steps.ts) handed in through the CLI's API (CliIo).
 *   node --import tsx test/helpers/cli-entry.ts <steps module> <flatcar-k3s arguments...>
 * The shipped binary has no such door.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { runCli, reportError } from '../../src/cli/main.js';
import { processIo } from '../../src/cli/io.js';
import type { BuildSteps } from '../../src/runner/steps.js';

const [stepsModule, ...argv] = process.argv.slice(2);
if (!stepsModule) throw new Error('usage: cli-entry.ts <steps module> [arguments...]');
const mod = (await import(pathToFileURL(resolve(stepsModule)).href)) as { buildSteps?: BuildSteps };
if (typeof mod.buildSteps !== 'function') throw new Error(`${stepsModule} does not export buildSteps`);
const io = { ...processIo(), buildSteps: mod.buildSteps };
let code: number;
try {
  code = await runCli(argv, io);
} catch (err) {
  code = reportError(err, io);
}
process.exit(code);
