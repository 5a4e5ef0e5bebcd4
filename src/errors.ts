/**
 * Errors typed by who can fix them (see STYLE.md):
 * - UserError: bad input or a situation the user can fix; carries the fix.
 * - RemoteError: Proxmox / SSH / Pulumi said no; carries the remote detail (task exit status, stderr tail).
 * - BugError: our fault; the top-level handler asks for a bug report with the log path.
 */
export interface ErrorDetails {
  /** Config field path or input name the error is about, e.g. "nodes.servers.count". */
  field?: string;
  /** One line telling the user what to do. */
  fix?: string;
  /** Extra lines (remote output tail, lists of valid values). */
  detail?: string;
  cause?: unknown;
}

export class FlatcarK3sError extends Error {
  readonly field?: string;
  readonly fix?: string;
  readonly detail?: string;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = new.target.name;
    this.field = details.field;
    this.fix = details.fix;
    this.detail = details.detail;
  }
}

export class UserError extends FlatcarK3sError {}
export class RemoteError extends FlatcarK3sError {}
export class BugError extends FlatcarK3sError {}
/** Thrown when the run was asked to stop (Ctrl-C, SIGTERM, AbortSignal). */
export class AbortedError extends FlatcarK3sError {
  constructor(message = 'Stopped on request') {
    super(message);
  }
}

/** A whole config's problems at once; exit code 2. */
export class ConfigError extends UserError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[], source?: string) {
    super(
      `${source ? `${source}: ` : ''}the config has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => `  - ${formatIssue(i)}`).join('\n'),
      { fix: 'Correct the fields listed above and run the command again. Nothing was changed.' },
    );
    this.issues = issues;
  }
}

export interface ConfigIssue {
  /** Dotted path, e.g. "nodes.servers.count". */
  path: string;
  message: string;
  /** The value given, already redacted if secret. */
  given?: unknown;
  expected?: string;
  example?: string;
}

export function formatIssue(i: ConfigIssue): string {
  let s = `${i.path || '(top level)'}: ${i.message}`;
  if (i.given !== undefined) s += ` (given: ${JSON.stringify(i.given)})`;
  if (i.expected) s += `; expected ${i.expected}`;
  if (i.example) s += `; e.g. ${i.example}`;
  return s;
}

export function isAbort(err: unknown): boolean {
  return err instanceof AbortedError || (err instanceof Error && err.name === 'AbortError');
}

/** Exit codes: 0 ok, 1 a step failed (resumable), 2 bad usage / invalid config, 130 interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;
