/**
 * Check an answer against the `returns` schema of its method, as PVE::RESTHandler does when response
 * verification is on: every non-optional key present, each value of the right JSON type, enums kept.
 * Extra keys are allowed (real Proxmox sends many the schema does not list). Perl scalars are loose:
 * an integer may come as a numeric string (pve-manager's /cluster/nextid does) and a boolean as 0/1.
 */
import type { PropSchema } from './types.js';

type Returns = PropSchema & { properties?: Record<string, PropSchema>; items?: PropSchema };

/** Problems found, as "path: message" lines; empty when the value fits. */
export function checkReturns(schema: unknown, value: unknown, path = 'data'): string[] {
  const s = (schema ?? {}) as Returns;
  const out: string[] = [];
  if (value === null || value === undefined) {
    if (s.type && s.type !== 'null' && !s.optional) out.push(`${path}: missing (${s.type})`);
    return out;
  }
  switch (s.type) {
    case 'integer':
      if (!(Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value))))
        out.push(`${path}: ${JSON.stringify(value)} is not an integer`);
      break;
    case 'number':
      if (!(typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))))
        out.push(`${path}: ${JSON.stringify(value)} is not a number`);
      break;
    case 'boolean':
      if (!(typeof value === 'boolean' || value === 0 || value === 1 || value === '0' || value === '1'))
        out.push(`${path}: ${JSON.stringify(value)} is not a boolean`);
      break;
    case 'string':
      if (typeof value !== 'string') out.push(`${path}: ${JSON.stringify(value)} is not a string`);
      else if (Array.isArray(s.enum) && !s.enum.includes(value)) out.push(`${path}: '${value}' is not one of ${s.enum.join(', ')}`);
      break;
    case 'array':
      if (!Array.isArray(value)) out.push(`${path}: not an array`);
      else value.forEach((v, i) => out.push(...checkReturns(s.items, v, `${path}[${i}]`)));
      break;
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.push(`${path}: not an object`);
        break;
      }
      for (const [k, p] of Object.entries(s.properties ?? {})) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined) {
          if (!p.optional) out.push(`${path}.${k}: missing`);
        } else out.push(...checkReturns(p, v, `${path}.${k}`));
      }
      break;
    default:
      break;
  }
  return out;
}
