/** `npm test`'s first step: stop with the version message on a Node.js too old to run the suite. */
import { nodeVersionProblem } from '../src/cli/node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`);
  process.exit(2);
}
