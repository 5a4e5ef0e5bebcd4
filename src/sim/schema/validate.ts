/**
 * A port of PVE::JSONSchema's check_prop/check_object/parse_property_string (pve-common), precompiled:
 * each property schema becomes a closure once, so a request check is a handful of map lookups.
 * Error texts are Proxmox's own, so clients see what a real host would answer.
 */
import { HASH_FORMATS, STRING_FORMATS, splitList } from './formats.js';
import type { ParamErrors, PropSchema } from './types.js';

export type CheckFn = (value: unknown, path: string, errors: ParamErrors) => void;

export function addError(errors: ParamErrors, path: string, msg: string): void {
  const p = path || '_root';
  errors[p] = errors[p] ? `${errors[p]}\\n${msg}` : msg;
}

const isNumber = (v: string): boolean => /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v);
const isInteger = (v: string): boolean => /^[+-]?\d+$/.test(v);

/** Turn a pattern from apidata (a stringified Perl regex) into an anchored JS RegExp, or null if JS cannot read it. */
export function perlPattern(pattern: string): RegExp | null {
  let flags = '';
  let src = pattern.replace(/\(\?\^([a-z]*):/g, (_m, f: string) => {
    if (f.includes('i')) flags = 'i';
    return '(?:';
  });
  src = src
    .replace(/\{,(\d+)\}/g, '{0,$1}')
    .replace(/\\z/g, '$')
    .replace(/\\A/g, '^');
  try {
    return new RegExp(`^(?:${src})$`, flags);
  } catch {
    return null;
  }
}

function parseBoolean(v: string): 0 | 1 | undefined {
  if (/^(1|on|yes|true)$/i.test(v)) return 1;
  if (/^(0|off|no|false)$/i.test(v)) return 0;
  return undefined;
}

class FormatError extends Error {}

/** Parse a property string against a hash format; throws FormatError with Proxmox's text. */
export function parsePropertyString(
  format: Record<string, PropSchema>,
  data: string,
  path: string,
  compiled?: CompiledObject,
): Record<string, string | number> {
  const res: Record<string, string | number> = {};
  let defaultKey: string | undefined;
  for (const part of data.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/s.exec(part);
    if (kv) {
      let k = kv[1]!;
      let v: string | number = kv[2]!;
      if (res[k] !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${k}\n`);
      let schema = Object.hasOwn(format, k) ? format[k] : undefined;
      if (schema?.alias) {
        if (schema.keyAlias) {
          if (res[schema.keyAlias] !== undefined) throw new FormatError(`key alias '${schema.keyAlias}' is already defined\n`);
          res[schema.keyAlias] = k;
        }
        k = schema.alias;
        schema = format[k];
      }
      if (!schema) throw new FormatError(`invalid key in comma-separated list property: ${k}\n`);
      if (schema.type === 'boolean') v = parseBoolean(v) ?? v;
      res[k] = v;
    } else if (!part.includes('=')) {
      if (defaultKey) throw new FormatError(`duplicate key in comma-separated list property: ${defaultKey}\n`);
      for (const key of Object.keys(format)) {
        if (format[key]!.default_key) {
          defaultKey = key;
          if (!res[defaultKey]) {
            res[defaultKey] = part;
            break;
          }
          throw new FormatError(`duplicate key in comma-separated list property: ${defaultKey}\n`);
        }
      }
      if (!defaultKey) throw new FormatError('value without key, but schema does not define a default key\n');
    } else {
      throw new FormatError('missing key in comma-separated list property\n');
    }
  }
  const errors: ParamErrors = {};
  (compiled ?? compileObject(format, false))(res, path, errors);
  const keys = Object.keys(errors);
  if (keys.length) throw new FormatError('format error\n' + keys.map((k) => `${k}: ${errors[k]}\n`).join(''));
  return res;
}

export type CompiledObject = (value: Record<string, unknown>, path: string, errors: ParamErrors) => void;

/** check_object: every schema key, then every value key not in the schema. */
export function compileObject(props: Record<string, PropSchema>, additional: boolean | undefined): CompiledObject {
  const checks = Object.entries(props).map(([k, s]) => [k, compileProp(s)] as const);
  const requires = Object.entries(props).filter(([, s]) => typeof s.requires === 'string') as Array<
    [string, PropSchema & { requires: string }]
  >;
  return (value, path, errors) => {
    for (const [k, check] of checks) check(value[k], path ? `${path}.${k}` : k, errors);
    for (const [k, s] of requires) {
      if (value[k] !== undefined && value[s.requires] === undefined) {
        addError(
          errors,
          path ? `${path}.${s.requires}` : s.requires,
          `missing property - '${path ? `${path}.${k}` : k}' requires this property`,
        );
      }
    }
    if (additional === false) {
      for (const k of Object.keys(value)) {
        if (!Object.hasOwn(props, k)) {
          addError(
            errors,
            path ? `${path}.${k}` : k,
            'property is not defined in schema and the schema does not allow additional properties',
          );
        }
      }
    }
  };
}

function compileFormat(format: string | Record<string, PropSchema>): ((v: string, path: string) => void) | undefined {
  if (typeof format === 'object') {
    const compiled = compileObject(format, false);
    return (v, path) => void parsePropertyString(format, v, path, compiled);
  }
  if (format === 'regex') return undefined;
  const m = /^(.*?)(?:-(list|opt))?$/.exec(format)!;
  const name = m[1]!;
  const kind = m[2];
  const hash = HASH_FORMATS[name];
  if (hash) {
    const compiled = compileObject(hash, false);
    return (v, path) => void parsePropertyString(hash, v, path, compiled);
  }
  const fn = STRING_FORMATS[name];
  if (!fn) return undefined; // a format the simulator does not know: accept, as the value cannot be checked here
  if (kind === 'list') return (v) => splitList(v).forEach(fn);
  if (kind === 'opt') return (v) => (v ? fn(v) : undefined);
  return (v) => fn(v);
}

/** check_prop for one (non-object) property schema. */
export function compileProp(schema: PropSchema): CheckFn {
  const optional = !!schema.optional || !!schema.alias;
  const type = schema.type;
  const format = schema.format !== undefined ? compileFormat(schema.format) : undefined;
  const pattern = schema.pattern !== undefined ? perlPattern(schema.pattern) : null;
  const maxLength = schema.maxLength;
  const minLength = schema.minLength;
  const maximum = schema.maximum !== undefined ? Number(schema.maximum) : undefined;
  const minimum = schema.minimum !== undefined ? Number(schema.minimum) : undefined;
  const enumValues = Array.isArray(schema.enum) ? schema.enum.map(String) : undefined;
  const items = schema.items ? compileProp(schema.items) : undefined;
  return (value, path, errors) => {
    if (value === undefined || value === null) {
      if (!optional) addError(errors, path, 'property is missing and it is not optional');
      return;
    }
    // check_type
    if (type === 'array' || type === 'object') {
      // form-encoded requests carry arrays as repeated keys; a single value is taken as a one-element list
      const list = Array.isArray(value) ? value : [value];
      if (type === 'array' && items) list.forEach((el, i) => items(el, `${path}[${i}]`, errors));
      return;
    }
    if (Array.isArray(value) || (typeof value === 'object' && value !== null)) {
      addError(errors, path, `type check ('${type}') failed - got ${Array.isArray(value) ? 'ARRAY' : 'HASH'}`);
      return;
    }
    if (type === 'boolean' && typeof value === 'boolean') return;
    const v = String(value);
    if (type === 'boolean' && v !== '1' && v !== '0') return addError(errors, path, `type check ('boolean') failed - got '${v}'`);
    if (type === 'integer' && !isInteger(v)) return addError(errors, path, `type check ('integer') failed - got '${v}'`);
    if (type === 'number' && !isNumber(v)) return addError(errors, path, `type check ('number') failed - got '${v}'`);
    if (format) {
      try {
        format(v, path);
      } catch (e) {
        return addError(errors, path, `invalid format - ${(e as Error).message}`);
      }
    }
    if (pattern && !pattern.test(v)) return addError(errors, path, 'value does not match the regex pattern');
    if (maxLength !== undefined && [...v].length > maxLength)
      return addError(errors, path, `value may only be ${maxLength} characters long`);
    if (minLength !== undefined && [...v].length < minLength)
      return addError(errors, path, `value must be at least ${minLength} characters long`);
    if (isNumber(v)) {
      if (maximum !== undefined && Number(v) > maximum)
        return addError(errors, path, `value must have a maximum value of ${schema.maximum}`);
      if (minimum !== undefined && Number(v) < minimum)
        return addError(errors, path, `value must have a minimum value of ${schema.minimum}`);
    }
    if (enumValues && !enumValues.includes(v)) {
      addError(errors, path, `value '${v}' does not have a value in the enumeration '${enumValues.join(', ')}'`);
    }
  };
}
