/**
 * Proxmox failures turned into errors a user can act on.
 * The HTTP layer (http.ts) throws PveHttpError for every non-2xx answer; `mapPveError` turns it into a
 * UserError (the user can fix it: credentials, privileges, names, storage content, PVE version) or a
 * RemoteError (Proxmox said no for another reason), keeping Proxmox's own words in the detail.
 */
import { RemoteError, UserError } from '../errors.js';

/** A non-2xx answer from Proxmox, with its body parsed when it was JSON. */
export class PveHttpError extends Error {
  readonly status: number;
  readonly statusText: string;
  readonly method: string;
  readonly path: string;
  /** PVE's per-parameter messages on 400 ("Parameter verification failed."). */
  readonly paramErrors: Record<string, string>;
  /** PVE's message: the body's "message" or the HTTP reason phrase. */
  readonly pveMessage: string;
  constructor(init: { status: number; statusText: string; method: string; path: string; bodyText: string }) {
    let body: { message?: unknown; errors?: unknown } = {};
    try {
      const parsed = JSON.parse(init.bodyText) as unknown;
      if (parsed && typeof parsed === 'object') body = parsed as typeof body;
    } catch {
      /* not JSON: keep the reason phrase */
    }
    const msg = (typeof body.message === 'string' && body.message.trim()) || init.statusText || `HTTP ${init.status}`;
    super(`${init.method} ${init.path}: ${init.status} ${msg.trim()}`);
    this.name = 'PveHttpError';
    this.status = init.status;
    this.statusText = init.statusText;
    this.method = init.method;
    this.path = init.path;
    this.pveMessage = msg.trim();
    const errs: Record<string, string> = {};
    if (body.errors && typeof body.errors === 'object') {
      for (const [k, v] of Object.entries(body.errors as Record<string, unknown>)) errs[k] = String(v).trim();
    }
    this.paramErrors = errs;
  }
}

/** The request may or may not have reached Proxmox (connection dropped, timeout): never re-sent blindly. */
export class PveAmbiguousError extends RemoteError {}

/** Who we are talking to Proxmox as; used in messages (never carries a secret). */
export interface AuthIdentity {
  kind: 'token' | 'ticket';
  /** user@realm */
  user: string;
  /** user@realm!name, for tokens. */
  tokenId?: string;
}

export interface ErrorContext {
  auth: AuthIdentity;
  url: string;
  method: string;
  path: string;
  params?: Record<string, unknown>;
  /** Known PVE version, if already read. */
  pveVersion?: string;
}

/** Walk an error's cause chain (undici and proxmox-api wrap errors twice). */
export function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  for (let i = 0; i < 8 && cur != null; i++) {
    out.push(cur);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

export function findCause<T>(err: unknown, cls: abstract new (...args: never[]) => T): T | undefined {
  return causeChain(err).find((e): e is T => e instanceof cls) as T | undefined;
}

const LOCK_RE = /can't lock file '[^']*' - got timeout|got lock request timeout|got lock timeout|trying to acquire (cfs )?lock.*timeout/i;
/** Transient Proxmox lock contention ("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"). */
export function isLockError(err: unknown): boolean {
  return causeChain(err).some((e) => e instanceof Error && LOCK_RE.test(e.message));
}

const VMID_TAKEN_RE = /VM \d+ already exists|config file already exists/i;
/** The VMID we asked for is used already (the API's nextid does not reserve). */
export function isVmidTaken(err: unknown): boolean {
  return causeChain(err).some((e) => e instanceof Error && VMID_TAKEN_RE.test(e.message));
}

/** Features that need a newer Proxmox VE, with what flatcar-k3s does instead. */
export const PVE_FEATURES = {
  importContent: {
    since: '8.4',
    what: "downloading a disk image into a storage's 'import' content",
    fallback:
      'Upgrade Proxmox VE to 8.4 or newer (apt update && apt full-upgrade), or connect as root@pam with its password (proxmox.username/password): flatcar-k3s then downloads the image as ISO content and imports it by absolute path, which Proxmox allows only for root@pam (manual way: qm disk import on the PVE host)',
  },
} as const;

function short(fp: string): string {
  return fp.length > 14 ? `${fp.slice(0, 8)}…${fp.slice(-5)}` : fp;
}

export function tlsPinMismatchError(pinned: string, seen: string | undefined): UserError {
  return new UserError(
    `The Proxmox TLS certificate changed: pinned ${short(pinned)} now ${seen ? short(seen) : '(no certificate)'}; if you renewed the certificate, update proxmox.fingerprint`,
    {
      field: 'proxmox.fingerprint',
      fix:
        'Check the new certificate on the PVE host with `pvenode cert info`; if it is yours, put its SHA-256 fingerprint into proxmox.fingerprint ' +
        '(a pin recorded in the state, "proxmox.tls" in `flatcar-k3s status`, is cleared only by `flatcar-k3s forget-host-key proxmox.tls`). ' +
        'If you did not change it, someone may be intercepting the connection: do not continue.',
      detail: `pinned: ${pinned}\nserver: ${seen ?? '(none)'}`,
    },
  );
}

const PERM_RE = /Permission check failed \(([^,]+),\s*([^)]+)\)/i;

function identityName(a: AuthIdentity): string {
  return a.kind === 'token' ? `the API token ${a.tokenId}` : `the user ${a.user}`;
}

export function aclCommand(a: AuthIdentity, path: string, priv: string): string {
  const role = /^VM\./.test(priv)
    ? 'PVEVMAdmin'
    : /^Datastore\./.test(priv)
      ? 'PVEDatastoreAdmin'
      : /^SDN\./.test(priv)
        ? 'PVESDNUser'
        : 'PVEAuditor';
  const who = a.kind === 'token' ? `--tokens '${a.tokenId}'` : `--users '${a.user}'`;
  return `pveum acl modify ${path} ${who} --roles ${role}`;
}

/**
 * Turn a PveHttpError into the error the user sees. Errors that need more facts (lists of nodes,
 * storages, bridges) are completed by the client, which can read them.
 */
export function mapPveError(err: PveHttpError, ctx: ErrorContext): Error {
  const where = `${err.method} ${err.path}`;
  const msg = err.pveMessage;
  if (err.status === 401) {
    if (/\/access\/ticket$/.test(err.path) || ctx.auth.kind === 'ticket') {
      return new UserError(`Proxmox rejected the login of ${ctx.auth.user} (401 ${msg})`, {
        field: 'proxmox.password',
        fix: 'Check proxmox.username (user@realm, e.g. root@pam) and proxmox.password; the realm matters (pam = Linux users of the PVE host, pve = Proxmox users).',
        cause: err,
      });
    }
    return new UserError(
      `Proxmox rejected the API token ${ctx.auth.tokenId} (401). Check proxmox.tokenId/tokenSecret; tokens are shown once at creation: Datacenter → Permissions → API Tokens`,
      {
        field: 'proxmox.tokenSecret',
        fix: 'Create a new token (Datacenter → Permissions → API Tokens → Add, or `pveum user token add root@pam flatcar`) and put its id into proxmox.tokenId and its secret into proxmox.tokenSecret.',
        detail: `Proxmox said: ${msg}`,
        cause: err,
      },
    );
  }
  if (err.status === 403) {
    const m = PERM_RE.exec(msg);
    if (m) {
      const [, path, priv] = m as unknown as [string, string, string];
      const privs = priv.split('|').join(' or ');
      return new UserError(`Proxmox refused ${where}: ${identityName(ctx.auth)} lacks the privilege ${privs} on ${path} (403)`, {
        field: ctx.auth.kind === 'token' ? 'proxmox.tokenId' : 'proxmox.username',
        fix:
          `Grant ${privs} on ${path}: Datacenter → Permissions → Add → ${ctx.auth.kind === 'token' ? 'API Token' : 'User'} Permission, or on the PVE host: ${aclCommand(ctx.auth, path, priv.split('|')[0]!)}` +
          (ctx.auth.kind === 'token' ? '. A token with "Privilege Separation" needs its own permissions, besides its user\'s.' : ''),
        detail: `Proxmox said: ${msg}`,
        cause: err,
      });
    }
    return new UserError(`Proxmox refused ${where} for ${identityName(ctx.auth)} (403 ${msg})`, {
      field: ctx.auth.kind === 'token' ? 'proxmox.tokenId' : 'proxmox.username',
      fix: 'Give the token or user the privileges listed in docs/proxmox.md.',
      cause: err,
    });
  }
  if (err.status === 400 && Object.keys(err.paramErrors).length > 0) {
    const feature = tooOldFeature(err, ctx);
    if (feature) return feature;
    const lines = Object.entries(err.paramErrors).map(([k, v]) => {
      const given = ctx.params?.[k];
      return `  - ${k}: ${v}${given !== undefined && !/secret|password/i.test(k) ? ` (sent: ${JSON.stringify(given)})` : ''}`;
    });
    return new UserError(`Proxmox rejected the parameters of ${where}:\n${lines.join('\n')}`, {
      field: Object.keys(err.paramErrors)[0],
      fix: 'If a value above comes from your config, correct it there; otherwise this is a flatcar-k3s bug: please report it with the log file.',
      detail: msg,
      cause: err,
    });
  }
  const contentMissing =
    /storage '([^']+)' does not support content[- ]type '([^']+)'|content[- ]type '([^']+)' is not (?:allowed|enabled|available) on storage '([^']+)'|storage '([^']+)' is not configured for content[- ]type '([^']+)'/i.exec(
      msg,
    );
  if (contentMissing) {
    const storage = contentMissing[1] ?? contentMissing[4] ?? contentMissing[5]!;
    const content = contentMissing[2] ?? contentMissing[3] ?? contentMissing[6]!;
    return storageContentError(storage, content, undefined, { cause: err, detail: `Proxmox said: ${msg}` });
  }
  return new RemoteError(`Proxmox answered ${where} with ${err.status}: ${msg}`, {
    detail: Object.keys(err.paramErrors).length
      ? Object.entries(err.paramErrors)
          .map(([k, v]) => `${k}: ${v}`)
          .join('\n')
      : undefined,
    cause: err,
  });
}

function tooOldFeature(err: PveHttpError, ctx: ErrorContext): UserError | undefined {
  const content = err.paramErrors.content;
  if (/download-url$/.test(err.path) && content && ctx.params?.content === 'import' && /enumeration/.test(content)) {
    const f = PVE_FEATURES.importContent;
    return new UserError(
      `Proxmox VE ${ctx.pveVersion ?? '(this version)'} is too old for ${f.what}: that needs Proxmox VE ${f.since} or newer`,
      {
        field: 'proxmox.storage.images',
        fix: f.fallback,
        detail: `Proxmox said: content: ${content}`,
        cause: err,
      },
    );
  }
  return undefined;
}

/**
 * The storage exists but lacks a content type. `existing` is its current list when known: the fix keeps
 * it, because `pvesm set --content` replaces the whole list.
 */
export function storageContentError(
  storage: string,
  content: string,
  existing: string[] | undefined,
  extra: { field?: string; cause?: unknown; detail?: string } = {},
): UserError {
  const list = existing ? [...existing.filter((c) => c !== content && c !== 'none'), content].join(',') : `<current types>,${content}`;
  return new UserError(
    `The Proxmox storage '${storage}' does not allow content type '${content}'${existing ? ` (it allows: ${existing.join(', ') || 'nothing'})` : ''}`,
    {
      field: extra.field,
      fix:
        `Enable it on the PVE host (this keeps the existing types): pvesm set ${storage} --content ${list}` +
        ' — or Datacenter → Storage → Edit → Content. flatcar-k3s does not change storage settings by itself.',
      detail: extra.detail,
      cause: extra.cause,
    },
  );
}

export function versionTooOldError(version: string): UserError {
  return new UserError(
    `Proxmox VE ${version} is too old: flatcar-k3s needs Proxmox VE 8.0 or newer (8.4 or newer to download the Flatcar image straight into 'import' storage)`,
    {
      field: 'proxmox.url',
      fix: 'Upgrade the PVE host(s) to Proxmox VE 8 (see https://pve.proxmox.com/wiki/Upgrade_from_7_to_8, run pve7to8 first), or point proxmox.url at a PVE 8/9 server.',
    },
  );
}
