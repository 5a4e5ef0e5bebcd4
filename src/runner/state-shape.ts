/**
 * The shape check of a state file read from disk: every field the code relies on, with its path,
 * so a hand-edited, truncated or foreign file is reported with what is wrong instead of failing later
 * as a TypeError that looks like our bug. Hand-written (no zod): `status` and `plan` read this file
 * and must stay fast to start.
 */

const STATUSES = ['pending', 'running', 'done', 'skipped', 'failed'];
const RUN_STATUSES = ['running', 'succeeded', 'failed', 'interrupted'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

type Check = (v: unknown) => boolean;
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const str: Check = (v) => typeof v === 'string';

/** Problems of an optional field: `expected` describes what `ok` accepts. */
function field(
  problems: string[],
  obj: Record<string, unknown>,
  path: string,
  key: string,
  ok: Check,
  expected: string,
  required = false,
): void {
  const v = obj[key];
  if (v === undefined) {
    if (required) problems.push(`"${path}${key}" is missing (expected ${expected})`);
    return;
  }
  if (!ok(v)) problems.push(`"${path}${key}" is ${kind(v)}${typeof v === 'string' ? ` ("${v.slice(0, 40)}")` : ''}, expected ${expected}`);
}

function stepProblems(problems: string[], id: string, rec: unknown): void {
  const path = `steps.${id}.`;
  if (!isObject(rec)) {
    problems.push(`"steps.${id}" is ${kind(rec)}, expected a step record object`);
    return;
  }
  field(problems, rec, path, 'status', (v) => STATUSES.includes(v as string), `one of ${STATUSES.join(', ')}`, true);
  field(problems, rec, path, 'at', num, 'a time in ms', true);
  for (const k of ['title', 'reason', 'inputsHash']) field(problems, rec, path, k, str, 'a string');
  field(problems, rec, path, 'via', (v) => v === 'check' || v === 'run', '"check" or "run"');
  field(problems, rec, path, 'outputs', isObject, 'an object');
  field(problems, rec, path, 'error', (v) => isObject(v) && typeof v.message === 'string', 'an object with a "message" string');
}

/**
 * What is wrong with a parsed state document, one line per problem (at most 5); empty when it has
 * the shape of a version-1 state. A document of another version yields one line saying so.
 */
export function stateShapeProblems(doc: unknown): string[] {
  if (!isObject(doc)) return [`it holds ${kind(doc)}, expected a JSON object with "version": 1`];
  if (doc.version !== 1) {
    return [
      doc.version === undefined
        ? '"version" is missing (expected 1)'
        : `it is format version ${JSON.stringify(doc.version)}, this flatcar-k3s reads version 1`,
    ];
  }
  const problems: string[] = [];
  field(problems, doc, '', 'cluster', str, 'the cluster name', true);
  field(problems, doc, '', 'createdAt', num, 'a time in ms');
  field(problems, doc, '', 'updatedAt', num, 'a time in ms');
  field(problems, doc, '', 'configHash', str, 'a string');
  field(problems, doc, '', 'config', isObject, 'an object');
  field(problems, doc, '', 'order', (v) => Array.isArray(v) && v.every(str), 'a list of step ids');
  field(problems, doc, '', 'titles', (v) => isObject(v) && Object.values(v).every(str), 'an object of strings');
  field(problems, doc, '', 'pins', (v) => isObject(v) && Object.values(v).every(str), 'an object of fingerprint strings');
  field(problems, doc, '', 'steps', isObject, 'an object of step records', true);
  if (isObject(doc.steps)) for (const [id, rec] of Object.entries(doc.steps)) stepProblems(problems, id, rec);
  const run = doc.lastRun;
  if (run !== undefined) {
    if (!isObject(run)) problems.push(`"lastRun" is ${kind(run)}, expected an object`);
    else {
      field(problems, run, 'lastRun.', 'status', (v) => RUN_STATUSES.includes(v as string), `one of ${RUN_STATUSES.join(', ')}`, true);
      field(problems, run, 'lastRun.', 'startedAt', num, 'a time in ms', true);
      field(problems, run, 'lastRun.', 'finishedAt', num, 'a time in ms');
      field(problems, run, 'lastRun.', 'pid', num, 'a process id');
      field(problems, run, 'lastRun.', 'command', str, 'a string');
      field(problems, run, 'lastRun.', 'message', str, 'a string');
    }
  }
  return problems.length > 5 ? [...problems.slice(0, 5), `… and ${problems.length - 5} more`] : problems;
}
