/**
 * Config change detection between runs: the redacted, flattened config snapshot and per-step
 * input hashes are stored in the state; a new run lists the settings that changed and the steps
 * that re-opens (steps already done/skipped whose inputs hash differs). Re-opened steps are simply
 * checked again.
 */
import { sha256Hex } from '../sha256.js';
import type { Config } from '../config/schema.js';
import { SECRET_PATHS } from '../config/schema.js';
import type { Step } from '../../steps/types.js';
import type { Redactor } from '../log/redact.js';
import type { ClusterState } from './state.js';

const SECRET = '<redacted>';

/** Dotted paths → leaf values (arrays of scalars stay whole; secrets redacted). */
export function flattenConfig(config: Config | Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (value: unknown, path: string) => {
    if ((SECRET_PATHS as readonly string[]).includes(path)) {
      if (value !== undefined) out[path] = SECRET;
      return;
    }
    if (Array.isArray(value) && value.some((v) => v !== null && typeof v === 'object')) {
      if (value.length === 0) out[path] = [];
      value.forEach((v, i) => walk(v, `${path}.${i}`));
      return;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0 && path) out[path] = {};
      for (const [k, v] of entries) walk(v, path ? `${path}.${k}` : k);
      return;
    }
    if (value !== undefined) out[path] = value;
  };
  walk(config, '');
  return out;
}

/** Canonical JSON (sorted keys) for hashing. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value as Record<string, unknown>)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function hashOf(value: unknown, redactor?: Redactor): string {
  const text = stableJson(value);
  return sha256Hex(redactor ? redactor.redact(text) : text).slice(0, 32);
}

export function configHash(config: Config): string {
  return hashOf(flattenConfig(config));
}

export interface SettingChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

export function diffSettings(before: Record<string, unknown>, after: Record<string, unknown>): SettingChange[] {
  const paths = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const changes: SettingChange[] = [];
  for (const p of paths) if (stableJson(before[p]) !== stableJson(after[p])) changes.push({ path: p, from: before[p], to: after[p] });
  return changes;
}

export interface ConfigChanges {
  /** Settings that differ from the last run's config (empty on the first run). */
  settings: SettingChange[];
  /** Steps done or skipped before whose inputs changed: they will be checked again. */
  reopened: Array<{ id: string; title: string }>;
}

export function detectChanges(state: ClusterState | undefined, config: Config, steps: Step[], redactor?: Redactor): ConfigChanges {
  if (!state) return { settings: [], reopened: [] };
  const settings = state.config ? diffSettings(state.config, flattenConfig(config)) : [];
  const reopened: ConfigChanges['reopened'] = [];
  for (const s of steps) {
    const rec = state.steps[s.id];
    if (!rec || (rec.status !== 'done' && rec.status !== 'skipped')) continue;
    if (rec.inputsHash !== undefined && rec.inputsHash !== hashOf(s.inputs ?? null, redactor)) reopened.push({ id: s.id, title: s.title });
  }
  return { settings, reopened };
}

export function formatValue(v: unknown): string {
  if (v === undefined) return '(unset)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function formatChanges(c: ConfigChanges): string[] {
  const lines: string[] = [];
  if (c.settings.length) {
    lines.push('Settings changed since the last run:');
    for (const s of c.settings) lines.push(`  ${s.path}: ${formatValue(s.from)} → ${formatValue(s.to)}`);
  }
  if (c.reopened.length) {
    lines.push('Steps this re-opens (they will be checked again):');
    for (const r of c.reopened) lines.push(`  ${r.id}  ${r.title}`);
  } else if (c.settings.length) lines.push('No finished step depends on these settings.');
  return lines;
}
