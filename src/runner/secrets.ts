/**
 * SecretStore over `<clusterDir>/secrets.json` (mode 0600, written atomically): the k3s token,
 * the Pulumi passphrase and other generated secrets. Every value is handed to the Redactor so it
 * never reaches the screen or the log file.
 */
import { existsSync, readFileSync, statSync, chmodSync } from 'node:fs';
import type { SecretStore } from '../../steps/types.js';
import { UserError } from '../errors.js';
import type { Redactor } from '../log/redact.js';
import { writeFileAtomic } from '../store/atomic.js';
import { clusterFiles } from '../store/layout.js';

export class FileSecretStore implements SecretStore {
  private values: Record<string, string>;
  readonly file: string;

  constructor(
    clusterDir: string,
    private readonly redactor?: Redactor,
  ) {
    this.file = clusterFiles(clusterDir).secrets;
    this.values = {};
    if (existsSync(this.file)) {
      // Tighten a file someone loosened by hand: it holds cluster credentials.
      if ((statSync(this.file).mode & 0o077) !== 0) chmodSync(this.file, 0o600);
      const fix = 'Restore it from a backup; it holds the k3s token that joins nodes to the cluster.';
      let doc: unknown;
      try {
        doc = JSON.parse(readFileSync(this.file, 'utf8'));
      } catch (err) {
        throw new UserError(`The secrets file ${this.file} is not valid JSON (${(err as Error).message})`, { fix });
      }
      // Names only in the message: the values are secrets.
      const bad =
        typeof doc === 'object' && doc !== null && !Array.isArray(doc)
          ? Object.keys(doc).filter((k) => typeof (doc as Record<string, unknown>)[k] !== 'string')
          : undefined;
      if (!bad || bad.length) {
        const what = bad
          ? `the value${bad.length > 1 ? 's' : ''} of ${bad.map((k) => `"${k}"`).join(', ')} ${bad.length > 1 ? 'are' : 'is'} not a string`
          : 'it is not a JSON object of names to strings';
        throw new UserError(`The secrets file ${this.file} is malformed: ${what}`, { fix });
      }
      this.values = doc as Record<string, string>;
    }
    for (const v of Object.values(this.values)) this.redactor?.add(v);
  }

  get(name: string): string | undefined {
    return this.values[name];
  }

  getOrCreate(name: string, make: () => string): string {
    const existing = this.values[name];
    if (existing !== undefined) return existing;
    const value = make();
    this.set(name, value);
    return value;
  }

  set(name: string, value: string): void {
    this.redactor?.add(value);
    if (this.values[name] === value) return;
    const next = { ...this.values, [name]: value };
    writeFileAtomic(this.file, JSON.stringify(next, null, 2) + '\n', 0o600);
    this.values = next;
  }
}
