/**
 * Authentication and permissions as pve-access-control does them, for the simulator's fixed users:
 * root@pam (password), the privileged token root@pam!flatcar-k3s (privsep 0) and a privilege-separated
 * token root@pam!limited with no ACL (so every permission check fails for it).
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { MethodInfo } from './schema/types.js';

export interface AuthInfo {
  /** user@realm or user@realm!token */
  authId: string;
  user: string;
  kind: 'token' | 'ticket';
  /** true when every privilege is granted (root@pam, or a token without privilege separation) */
  allPrivs: boolean;
  /** A token made with `addToken`: exactly these privileges, on every path. */
  privs?: ReadonlySet<string>;
}

export class HttpError extends Error {
  /** raised by an endpoint (formatted as an API answer) rather than by the auth layer (bare 401) */
  fromHandler = false;
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

const safeEq = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export interface AuthSecrets {
  password: string;
  tokenSecret: string;
  limitedTokenSecret: string;
  ticketKey: string;
}

export class AuthService {
  readonly login: { username: string; password: string };
  readonly token: { tokenId: string; tokenSecret: string };
  readonly limitedToken: { tokenId: string; tokenSecret: string };
  private readonly key: Buffer;
  /** Tokens with a chosen set of privileges (tests: a token missing one privilege). */
  private readonly extraTokens: Array<{ tokenId: string; tokenSecret: string; privs: ReadonlySet<string> }> = [];
  /** The simulated PVE version: 8.x checks VM.Monitor where 9 checks VM.GuestAgent.*. */
  pveVersion = '8.4.1';

  /** `saved`: the credentials of a persisted simulator (fresh random ones otherwise). */
  constructor(saved?: AuthSecrets) {
    this.login = { username: 'root@pam', password: saved?.password ?? randomBytes(12).toString('base64url') };
    this.token = { tokenId: 'root@pam!flatcar-k3s', tokenSecret: saved?.tokenSecret ?? randomUUID() };
    this.limitedToken = { tokenId: 'root@pam!limited', tokenSecret: saved?.limitedTokenSecret ?? randomUUID() };
    this.key = saved?.ticketKey ? Buffer.from(saved.ticketKey, 'base64') : randomBytes(32);
  }

  /** A privilege-separated token root@pam!<name> holding exactly `privs` on every path (not persisted). */
  addToken(name: string, privs: string[]): { tokenId: string; tokenSecret: string } {
    const t = { tokenId: `root@pam!${name}`, tokenSecret: randomUUID(), privs: new Set(privs) };
    this.extraTokens.push(t);
    return { tokenId: t.tokenId, tokenSecret: t.tokenSecret };
  }

  /** GET /access/permissions for the caller: path → privilege → propagate. */
  permissionsOf(auth: AuthInfo, path = '/'): Record<string, Record<string, number>> {
    const privs = auth.allPrivs ? allPrivileges(this.pveVersion) : [...(auth.privs ?? [])];
    return privs.length ? { [path]: Object.fromEntries(privs.map((p) => [p, 1])) } : {};
  }

  /** Everything secret, to persist (tickets stay valid across a restart, as on a real node). */
  secrets(): AuthSecrets {
    return {
      password: this.login.password,
      tokenSecret: this.token.tokenSecret,
      limitedTokenSecret: this.limitedToken.tokenSecret,
      ticketKey: this.key.toString('base64'),
    };
  }

  private sign(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64');
  }

  /** POST /access/ticket */
  createTicket(username: string, password: string, realm?: string): { username: string; ticket: string; CSRFPreventionToken: string } {
    const user = realm && !username.includes('@') ? `${username}@${realm}` : username;
    if (user !== this.login.username || !safeEq(password, this.login.password)) throw new HttpError(401, 'authentication failure');
    const time = Math.floor(Date.now() / 1000)
      .toString(16)
      .toUpperCase();
    const plain = `PVE:${user}:${time}`;
    const ticket = `${plain}::${this.sign(plain)}`;
    const csrfPlain = `${time}:${user}`;
    const csrf = `${time}:${this.sign(csrfPlain).replace(/=+$/, '')}`;
    return { username: user, ticket, CSRFPreventionToken: csrf };
  }

  private verifyTicket(ticket: string): string | undefined {
    const m = /^(PVE:([^:]+):([0-9A-F]{8}))::(.+)$/.exec(ticket);
    if (!m || !safeEq(this.sign(m[1]!), m[4]!)) return undefined;
    const age = Date.now() / 1000 - parseInt(m[3]!, 16);
    return age < 7200 ? m[2] : undefined;
  }

  private verifyCsrf(token: string | undefined, user: string): boolean {
    if (!token) return false;
    const m = /^([0-9A-F]{8}):(.+)$/.exec(token);
    return !!m && safeEq(this.sign(`${m[1]}:${user}`).replace(/=+$/, ''), m[2]!);
  }

  /**
   * Authenticate a request. Returns undefined for anonymous requests; throws HttpError(401) for bad
   * credentials ("authentication failure"), missing ones ("No ticket"), or a missing CSRF token.
   */
  authenticate(headers: Record<string, string | string[] | undefined>, method: string): AuthInfo | undefined {
    const authz = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    if (authz?.startsWith('PVEAPIToken')) {
      const m = /^PVEAPIToken[= ]([^!=\s]+@[^!=\s]+)!([A-Za-z][A-Za-z0-9._-]*)[=:](\S+)$/.exec(authz);
      if (!m) throw new HttpError(401, 'authentication failure');
      const tokenId = `${m[1]}!${m[2]}`;
      for (const t of [this.token, this.limitedToken]) {
        if (t.tokenId === tokenId && safeEq(t.tokenSecret, m[3]!)) {
          return { authId: tokenId, user: m[1]!, kind: 'token', allPrivs: t === this.token };
        }
      }
      for (const t of this.extraTokens) {
        if (t.tokenId === tokenId && safeEq(t.tokenSecret, m[3]!))
          return { authId: tokenId, user: m[1]!, kind: 'token', allPrivs: false, privs: t.privs };
      }
      throw new HttpError(401, 'authentication failure');
    }
    const cookie = typeof headers.cookie === 'string' ? headers.cookie : '';
    const c = /(?:^|;\s*)PVEAuthCookie=([^;]+)/.exec(cookie);
    if (!c) return undefined;
    let raw = c[1]!;
    try {
      raw = decodeURIComponent(raw);
    } catch {
      // not URL-encoded: use as sent
    }
    const user = this.verifyTicket(raw);
    if (!user) throw new HttpError(401, 'authentication failure');
    if (method !== 'GET') {
      const csrf = headers.csrfpreventiontoken;
      if (!this.verifyCsrf(typeof csrf === 'string' ? csrf : undefined, user))
        throw new HttpError(401, 'Permission denied - invalid csrf token');
    }
    return { authId: user, user, kind: 'ticket', allPrivs: user === 'root@pam' };
  }

  /** Evaluate the schema's permission check for a request; throws HttpError(403) as Proxmox does. */
  checkPermissions(info: MethodInfo, auth: AuthInfo | undefined, params: Record<string, unknown>): void {
    const perms = info.permissions;
    if (perms?.user === 'world') return;
    if (!auth) throw new HttpError(401, 'No ticket');
    if (auth.kind === 'token' && info.allowtoken === 0) throw new HttpError(401, 'API tokens are not allowed for this method');
    if (auth.allPrivs) return;
    if (perms?.user === 'all' && !perms.check) return;
    if (!perms?.check) throw new HttpError(403, 'Permission check failed');
    const failure = evaluate(perms.check, params, auth.privs && { privs: auth.privs, major: Number(this.pveVersion.split('.')[0]) });
    if (failure) throw new HttpError(403, `Permission check failed (${failure})`);
  }

  /** Would this (privilege-less) caller see objects guarded by a privilege? */
  canSee(auth: AuthInfo | undefined): boolean {
    return !!auth?.allPrivs || !!auth?.privs?.has('VM.Audit');
  }
}

/** Every privilege a PVE version knows that the simulator's checks use (root@pam has them all). */
function allPrivileges(version: string): string[] {
  const agent = Number(version.split('.')[0]) >= 9 ? ['VM.GuestAgent.Audit', 'VM.GuestAgent.Unrestricted'] : ['VM.Monitor'];
  return [
    'VM.Allocate',
    'VM.Clone',
    'VM.Audit',
    'VM.PowerMgmt',
    'VM.Console',
    'VM.Backup',
    'VM.Snapshot',
    'VM.Migrate',
    'VM.Config.Disk',
    'VM.Config.CDROM',
    'VM.Config.CPU',
    'VM.Config.Memory',
    'VM.Config.Network',
    'VM.Config.HWType',
    'VM.Config.Options',
    'VM.Config.Cloudinit',
    ...agent,
    'Datastore.Allocate',
    'Datastore.AllocateSpace',
    'Datastore.AllocateTemplate',
    'Datastore.Audit',
    'Sys.Audit',
    'Sys.Modify',
    'Sys.AccessNetwork',
    'Sys.PowerMgmt',
    'Sys.Console',
    'SDN.Use',
    'SDN.Audit',
    'SDN.Allocate',
    'Permissions.Modify',
    'User.Modify',
  ].sort();
}

/**
 * Returns the failing "path, priv", or undefined. Without `have` every perm check fails (a caller with no
 * privileges); with it, a perm check passes when the caller holds the privilege (PVE 8 checks VM.Monitor
 * where PVE 9 checks VM.GuestAgent.*).
 */
function evaluate(
  check: unknown[],
  params: Record<string, unknown>,
  have?: { privs: ReadonlySet<string>; major: number },
): string | undefined {
  const [op, ...rest] = check as [string, ...unknown[]];
  if (op === 'and') {
    for (const c of rest) {
      const f = evaluate(c as unknown[], params, have);
      if (f) return f;
    }
    return undefined;
  }
  if (op === 'or') {
    let first: string | undefined;
    for (const c of rest) {
      const f = evaluate(c as unknown[], params, have);
      if (!f) return undefined;
      first ??= f;
    }
    return first;
  }
  if (op === 'perm') {
    const path = String(rest[0]).replace(/\{([^}]+)\}/g, (_m, k: string) => String(params[k] ?? ''));
    let privs = rest[1] as string[];
    const any = rest.includes('any');
    if (have && have.major < 9 && privs.some((p) => p.startsWith('VM.GuestAgent.'))) privs = ['VM.Monitor'];
    if (have) {
      const missing = privs.filter((p) => !have.privs.has(p));
      if (any ? missing.length < privs.length : missing.length === 0) return undefined;
      return `${path}, ${any ? privs.join('|') : missing[0]}`;
    }
    return `${path}, ${any ? privs.join('|') : privs[0]}`;
  }
  if (op === 'userid-group' || op === 'userid-param' || op === 'admin') return `/access, ${op}`;
  return `/, ${op}`;
}
