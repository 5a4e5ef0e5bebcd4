/**
 * Redactor: replaces every known secret value in text with "***". Fed with the config's secrets
 * (SECRET_PATHS) and every value the SecretStore holds; every step log line, error message and log
 * file line passes through it.
 */
import type { Config } from '../config/schema.js';
import { SECRET_PATHS } from '../config/schema.js';

export const REDACTED = '***';

export class Redactor {
  private readonly secrets = new Set<string>();
  private pattern: RegExp | undefined;

  /** Values shorter than 4 characters are ignored: redacting them would mangle ordinary text. */
  add(value: string | undefined | null): void {
    if (!value || value.length < 4 || this.secrets.has(value)) return;
    this.secrets.add(value);
    // URL-encoded and base64 forms appear in HTTP logs and headers.
    const enc = encodeURIComponent(value);
    if (enc !== value) this.secrets.add(enc);
    this.pattern = undefined;
  }

  addConfig(config: Config): void {
    for (const path of SECRET_PATHS) {
      let cur: unknown = config;
      for (const k of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
      if (typeof cur === 'string') this.add(cur);
    }
  }

  redact(text: string): string {
    if (this.secrets.size === 0) return text;
    this.pattern ??= new RegExp(
      [...this.secrets]
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'g',
    );
    return text.replace(this.pattern, REDACTED);
  }

  /** Redact every string inside a JSON-like value. */
  redactDeep<T>(value: T): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.redactDeep(v)) as T;
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.redactDeep(v)])) as T;
    return value;
  }
}
