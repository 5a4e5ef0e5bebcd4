/**
 * Validate an Ignition config the two ways the tests use: the real `ignition-validate` (which also
 * catches semantic errors: unit extensions, duplicate paths, relative paths, bad data URLs) and the
 * spec's JSON schema (draft-04) from vendor/ignition.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Ajv04Module from 'ajv-draft-04';
import { vendorDir } from '../../src/paths.js';

const run = promisify(execFile);
export const IGNITION_VALIDATE = '/usr/bin/ignition-validate';

export interface ValidationResult {
  ok: boolean;
  /** ignition-validate output (errors and warnings), or schema errors. */
  messages: string[];
}

/** Runs /usr/bin/ignition-validate on the JSON text. Warnings count as failures too. */
export async function ignitionValidate(json: string): Promise<ValidationResult> {
  const dir = await mkdtemp(join(tmpdir(), 'ign-validate-'));
  try {
    const file = join(dir, 'config.ign');
    await writeFile(file, json);
    try {
      const { stdout, stderr } = await run(IGNITION_VALIDATE, [file]);
      const messages = `${stdout}${stderr}`.split('\n').filter((l) => l.trim());
      return { ok: messages.length === 0, messages };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      const messages = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').filter((l) => l.trim());
      return { ok: false, messages: messages.length ? messages : [e.message] };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Validator = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
let schemaValidator: Validator | undefined;

/** JSON schema check against vendor/ignition/ignition-v3_3.schema.json (draft-04). */
export function schemaValidate(doc: unknown): ValidationResult {
  if (!schemaValidator) {
    const Ajv04 = ((Ajv04Module as unknown as { default?: unknown }).default ?? Ajv04Module) as new (
      opts: object,
    ) => { compile(schema: object): Validator };
    const schema = JSON.parse(readFileSync(join(vendorDir(), 'ignition', 'ignition-v3_3.schema.json'), 'utf8')) as object;
    schemaValidator = new Ajv04({ allErrors: true, strict: false }).compile(schema);
  }
  const ok = schemaValidator(doc);
  return { ok, messages: ok ? [] : (schemaValidator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`) };
}

/** Both checks; the messages name which one failed. */
export async function validateIgnition(json: string): Promise<ValidationResult> {
  const a = await ignitionValidate(json);
  const b = schemaValidate(JSON.parse(json));
  return { ok: a.ok && b.ok, messages: [...a.messages.map((m) => `ignition-validate: ${m}`), ...b.messages.map((m) => `schema: ${m}`)] };
}
