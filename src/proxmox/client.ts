/**
 * ProxmoxClient over `proxmox-api` (its engine does auth headers, tickets and form encoding) with our
 * own fetch (http.ts: TLS pinning, byte-correct bodies, structured errors). Policies live here:
 * - the library's own retry never fires: our fetch never throws into it (failures come back as
 *   markers, see http.ts), and we pass retries=1 besides;
 * - GETs are retried with backoff; lock errors are retried for any method Proxmox answered;
 * - a mutation whose answer was lost is never re-sent: create/clone re-check by reading;
 * - tickets are renewed before they expire (2 h) and once on 401.
 */
import type { ProxmoxEngine } from 'proxmox-api';
import { AbortedError, RemoteError, UserError } from '../errors.js';
import type {
  PveAgentInterface,
  PveBridge,
  PveNodeInfo,
  PveParams,
  PveClusterNode,
  PveStorageInfo,
  PveTaskStatus,
  PveVersion,
  PveVmResource,
  PveVolume,
  ProxmoxClient,
  Upid,
  WaitOptions,
} from './types.js';
import {
  PveAmbiguousError,
  PveHttpError,
  findCause,
  isLockError,
  mapPveError,
  storageContentError,
  type AuthIdentity,
  type ErrorContext,
} from './errors.js';
import { pveTransport, type PveTransport } from './http.js';
import type { Agent } from 'undici';
import { probeFingerprint, proxmoxAgent, normalizeFingerprint, unreachable, hostPort, type TlsAgent } from './tls.js';
import { backoffDelay, sleep as realSleep } from './retry.js';

export { probeFingerprint } from './tls.js';
export { pveVersionAtLeast } from './version.js';
export { withFreeVmid } from './vmid.js';
export { withLockRetry } from './retry.js';
export { isLockError, isVmidTaken, PveHttpError, PveAmbiguousError } from './errors.js';

/** Renew a ticket after 1 h 45 min (they live 2 h). */
export const TICKET_RENEW_MS = 105 * 60 * 1000;

export interface CreateProxmoxClientOptions {
  url: string;
  tokenId?: string;
  tokenSecret?: string;
  username?: string;
  password?: string;
  fingerprint?: string;
  caFile?: string;
  onUnknownFingerprint?: (fp: string) => boolean | Promise<boolean>;
  log?: (line: string) => void;
  timeoutMs?: number;
}

/** Knobs for tests; not part of the public options. */
export interface ClientTuning {
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  getAttempts?: number;
  lockAttempts?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Pause before re-reading after an ambiguous create/clone. */
  recheckDelayMs?: number;
  taskPollMs?: number;
  taskTimeoutMs?: number;
}

/**
 * `sshkeys` for PUT/POST …/config: Proxmox wants the URI-encoded key list (pattern ^[-%a-zA-Z0-9_.!~*'()]*$);
 * form encoding then encodes it once more on the wire.
 */
export function encodeSshKeys(keys: string[]): string {
  return encodeURIComponent(
    keys
      .map((k) => k.trim())
      .filter(Boolean)
      .join('\n'),
  );
}
const SSHKEYS_OK = /^[-%a-zA-Z0-9_.!~*'()]*$/;

/**
 * Throws a UserError unless connected as root@pam with a password (ticket). Proxmox checks
 * `authuser eq 'root@pam'` for `args`, import-from with an absolute path and non-socket serial ports,
 * so even the token root@pam!x is refused.
 */
export function requireRootPam(what: string, auth: AuthIdentity | { auth?: AuthIdentity } | undefined): void {
  const a = auth && 'kind' in auth ? auth : (auth as { auth?: AuthIdentity } | undefined)?.auth;
  if (a && a.kind === 'ticket' && a.user === 'root@pam') return;
  const who = !a ? 'an unknown identity' : a.kind === 'token' ? `the API token ${a.tokenId}` : `the user ${a.user}`;
  throw new UserError(
    `${what} needs root@pam logged in with its password: Proxmox allows it only for root@pam itself, not for API tokens (not even root@pam!…) or other users; you are connected as ${who}`,
    {
      field: a?.kind === 'token' ? 'proxmox.tokenId' : 'proxmox.username',
      fix: 'Set proxmox.username: root@pam and proxmox.password (or PROXMOX_VE_USERNAME / PROXMOX_VE_PASSWORD) and remove proxmox.tokenId/tokenSecret for this run.',
    },
  );
}

/** What in these VM parameters Proxmox allows only to root@pam (undefined when nothing). */
export function rootOnlyParameter(params: Record<string, unknown>): string | undefined {
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    if (k === 'args') return 'setting the VM option `args`';
    if (/^serial\d+$/.test(k) && String(v) !== 'socket') return `setting ${k}=${String(v)} (serial ports other than "socket")`;
    if (/^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$/.test(k) && /(^|,)import-from=\//.test(String(v)))
      return `importing a disk from an absolute path (${k} import-from)`;
  }
  return undefined;
}

const UUID_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * proxmox-api's engine with ticket renewal before expiry and on demand (401). The class is built on
 * first connect: proxmox-api (and what it pulls in) stays out of plan/--help, which only import this module.
 */
async function definePveEngine() {
  const { ProxmoxEngine } = await import('proxmox-api');
  return class PveEngine extends ProxmoxEngine {
    private ticketAt = 0;
    private pendingLogin?: Promise<{ ticket: string; CSRFPreventionToken: string }>;
    constructor(
      options: ConstructorParameters<typeof ProxmoxEngine>[0],
      private readonly ticketAuth: boolean,
      private readonly now: () => number,
    ) {
      super(options);
    }
    override getTicket(): Promise<{ ticket: string; CSRFPreventionToken: string }> {
      if (!this.ticketAuth) return super.getTicket();
      if (this.ticket && this.CSRFPreventionToken && this.now() - this.ticketAt < TICKET_RENEW_MS) return super.getTicket();
      if (!this.pendingLogin) {
        this.ticket = undefined;
        this.CSRFPreventionToken = undefined;
        this.pendingLogin = super
          .getTicket()
          .then((t) => {
            this.ticketAt = this.now();
            return t;
          })
          .finally(() => {
            this.pendingLogin = undefined;
          });
      }
      return this.pendingLogin;
    }
    invalidateTicket(): void {
      if (!this.ticketAuth) return;
      this.ticket = undefined;
      this.CSRFPreventionToken = undefined;
    }
  };
}
type PveEngine = InstanceType<Awaited<ReturnType<typeof definePveEngine>>>;
let pveEngineClass: ReturnType<typeof definePveEngine> | undefined;
const loadPveEngine = () => (pveEngineClass ??= definePveEngine());

function isNetworkError(err: unknown): boolean {
  if (findCause(err, PveHttpError) || findCause(err, UserError)) return false;
  return true;
}

function isTransientForGet(err: unknown): boolean {
  const http = findCause(err, PveHttpError);
  if (http) return [502, 503, 504, 595, 596].includes(http.status) && !/no such|does not exist/i.test(http.pveMessage);
  return isNetworkError(err);
}

function networkCode(err: unknown): string {
  for (const e of [err, ...collectCauses(err)]) {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string') return code;
    if (e instanceof Error && e.name === 'AbortError') return 'timeout';
  }
  return 'network error';
}
function collectCauses(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur = err instanceof Error ? err.cause : undefined;
  while (cur && out.length < 8) {
    out.push(cur);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

const enc = encodeURIComponent;
const bool = (v: unknown): boolean => v === 1 || v === true || v === '1';

export class PveClient implements ProxmoxClient {
  readonly auth: AuthIdentity;
  readonly tlsFingerprint: string;
  private cachedVersion?: string;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private readonly t: Required<Omit<ClientTuning, 'sleep' | 'now'>>;

  constructor(
    private readonly engine: PveEngine,
    private readonly transport: PveTransport,
    private readonly agent: Agent,
    private readonly url: string,
    auth: AuthIdentity,
    tlsFingerprint: string,
    private readonly logLine: (line: string) => void,
    tuning: ClientTuning = {},
  ) {
    this.auth = auth;
    this.tlsFingerprint = tlsFingerprint;
    this.sleep = tuning.sleep ?? realSleep;
    this.now = tuning.now ?? Date.now;
    this.t = {
      getAttempts: tuning.getAttempts ?? 4,
      lockAttempts: tuning.lockAttempts ?? 5,
      retryBaseMs: tuning.retryBaseMs ?? 500,
      retryMaxMs: tuning.retryMaxMs ?? 8_000,
      recheckDelayMs: tuning.recheckDelayMs ?? 1_000,
      taskPollMs: tuning.taskPollMs ?? 500,
      taskTimeoutMs: tuning.taskTimeoutMs ?? 15 * 60_000,
    };
  }

  requireRootPam(what: string): void {
    requireRootPam(what, this.auth);
  }

  // ---- transport ---------------------------------------------------------------------------------

  /** A running average of GET round trips (ms), for pollFloorMs. */
  private roundTripMs = 10;

  private observeRoundTrip(ms: number): void {
    this.roundTripMs += (ms - this.roundTripMs) / 8;
  }

  /**
   * The shortest sensible interval between two status reads of one task: twice a GET's round trip
   * (so one waiter keeps a pveproxy worker busy at most a third of the time), 5–50 ms. On a LAN (GETs
   * ~10 ms) that is 20 ms; against a nearby or simulated Proxmox a short task is seen done sooner.
   */
  pollFloorMs(): number {
    return Math.min(50, Math.max(5, Math.round(2 * this.roundTripMs)));
  }

  /** One API call with the retry policy; errors come out mapped (UserError / RemoteError / PveAmbiguousError). */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, params: Record<string, unknown> = {}): Promise<T> {
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) clean[k] = v;
    let getTries = 0;
    let lockTries = 0;
    let reauthed = false;
    for (;;) {
      let failure: unknown;
      let loginFailed = false;
      try {
        // The transport never throws into the library (no blind retry); failures come back as markers.
        const sent = this.now();
        const data = await this.engine.doRequest(method, `/api2/json${path}`, path, { ...clean }, 1);
        failure = this.transport.takeFailure(data);
        if (method === 'GET') this.observeRoundTrip(this.now() - sent);
        if (!failure) return data as T;
      } catch (err) {
        // Only the library's own login can throw here: the request itself was not sent.
        failure = this.transport.lastLoginFailure() ?? err;
        loginFailed = true;
      }
      const pin = findCause(failure, UserError);
      if (pin) throw pin;
      const http = findCause(failure, PveHttpError);
      if (http?.status === 401 && this.auth.kind === 'ticket' && !reauthed && !loginFailed) {
        reauthed = true;
        this.engine.invalidateTicket();
        this.logLine(`Proxmox ticket rejected (401): logging in again`);
        continue;
      }
      if (http && isLockError(http) && ++lockTries < this.t.lockAttempts) {
        const d = backoffDelay(lockTries, this.t.retryBaseMs * 2, this.t.retryMaxMs);
        this.logLine(
          `${method} ${path}: ${http.pveMessage}; retrying in ${(d / 1000).toFixed(1)} s (${lockTries}/${this.t.lockAttempts - 1})`,
        );
        await this.sleep(d);
        continue;
      }
      if ((method === 'GET' || (loginFailed && !http)) && isTransientForGet(failure) && ++getTries < this.t.getAttempts) {
        const d = backoffDelay(getTries, this.t.retryBaseMs, this.t.retryMaxMs);
        this.logLine(
          `${loginFailed ? 'login' : `GET ${path}`} failed (${http ? http.status : networkCode(failure)}); retrying in ${(d / 1000).toFixed(1)} s (${getTries}/${this.t.getAttempts - 1})`,
        );
        await this.sleep(d);
        continue;
      }
      throw await this.mapError(failure, loginFailed ? 'GET' : method, path, clean);
    }
  }

  /** Release the connection pool (the CLI calls this before exiting). */
  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }

  private async mapError(err: unknown, method: string, path: string, params: Record<string, unknown>): Promise<Error> {
    const http = findCause(err, PveHttpError);
    if (!http) {
      const code = networkCode(err);
      const root = collectCauses(err).at(-1) ?? err;
      if (/^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(code)) return unreachable(this.url, root as Error);
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
        return new UserError(`The Proxmox TLS certificate at ${this.url} did not verify against proxmox.caFile (${code})`, {
          field: 'proxmox.caFile',
          fix: 'Use the cluster CA /etc/pve/pve-root-ca.pem and a host name or IP listed in the certificate (pvenode cert info), or drop proxmox.caFile and pin proxmox.fingerprint instead.',
          cause: root,
        });
      }
      if (method === 'GET') return new RemoteError(`Proxmox did not answer ${method} ${path} (${code})`, { cause: root });
      return new PveAmbiguousError(
        `The connection to Proxmox failed during ${method} ${path} (${code}): the request may or may not have been carried out. It was not sent again.`,
        {
          fix: 'Run again: flatcar-k3s reads the current state first and only does what is missing.',
          cause: root,
        },
      );
    }
    const ctx: ErrorContext = { auth: this.auth, url: this.url, method, path, params, pveVersion: this.cachedVersion };
    const mapped = mapPveError(http, ctx);
    return (await this.enrich(mapped, http)) ?? mapped;
  }

  /** Unknown node / storage / bridge / missing content: list what exists (best effort, reads only). */
  private async enrich(mapped: Error, http: PveHttpError): Promise<Error | undefined> {
    const msg = http.pveMessage;
    try {
      let m = /no such (?:cluster )?node '([^']+)'|hostname lookup '([^']+)' failed/i.exec(msg);
      if (m) {
        const name = m[1] ?? m[2]!;
        const nodes = await this.nodes();
        return new UserError(`Proxmox has no node named '${name}'`, {
          field: 'proxmox.nodes',
          fix: `Use one of: ${nodes.map((n) => `${n.node} (${n.status})`).join(', ')}`,
          cause: http,
        });
      }
      m = /storage '([^']+)' does not exist/i.exec(msg);
      if (m) {
        const node = /^\/nodes\/([^/]+)/.exec(http.path)?.[1];
        const list = node ? await this.storages(decodeURIComponent(node)) : [];
        return new UserError(`Proxmox has no storage named '${m[1]}'${node ? ` on node ${decodeURIComponent(node)}` : ''}`, {
          field: 'proxmox.storage',
          fix: list.length
            ? `Use one of: ${list.map((s) => `${s.storage} (${s.content.join(',')})`).join(', ')}`
            : 'Check the storage names under Datacenter → Storage.',
          cause: http,
        });
      }
      m = /bridge '([^']+)' does not exist/i.exec(msg);
      if (m) {
        const node = /^\/nodes\/([^/]+)/.exec(http.path)?.[1];
        const list = node ? await this.bridges(decodeURIComponent(node)) : [];
        return new UserError(`Proxmox has no bridge named '${m[1]}'`, {
          field: 'proxmox.bridge',
          fix: list.length
            ? `Use one of: ${list.map((b) => b.iface).join(', ')}`
            : 'Create a Linux bridge under the node → System → Network.',
          cause: http,
        });
      }
      if (
        mapped instanceof UserError &&
        /does not allow content type '([^']+)'/.test(mapped.message) &&
        !/it allows/.test(mapped.message)
      ) {
        const storage = /storage '([^']+)'/.exec(mapped.message)![1]!;
        const content = /content type '([^']+)'/.exec(mapped.message)![1]!;
        const cfg = await this.storageConfig(storage);
        return storageContentError(storage, content, cfg.content, { field: 'proxmox.storage', cause: http, detail: mapped.detail });
      }
    } catch {
      /* the listing itself failed: keep the plain error */
    }
    return undefined;
  }

  private async pveVersionString(): Promise<string> {
    if (!this.cachedVersion) await this.version();
    return this.cachedVersion!;
  }

  // ---- reads -------------------------------------------------------------------------------------

  async version(): Promise<PveVersion> {
    const v = await this.request<{ version: string; release: string; repoid: string }>('GET', '/version');
    this.cachedVersion = v.version;
    return { version: String(v.version), release: String(v.release ?? ''), repoid: String(v.repoid ?? '') };
  }

  async nodes(): Promise<PveNodeInfo[]> {
    const list = await this.request<Array<Record<string, unknown>>>('GET', '/nodes');
    return list
      .map((n) => ({
        node: String(n.node),
        status: (n.status === 'online' || n.status === 'offline' ? n.status : 'unknown') as PveNodeInfo['status'],
        maxcpu: n.maxcpu as number | undefined,
        maxmem: n.maxmem as number | undefined,
        mem: n.mem as number | undefined,
        cpu: n.cpu as number | undefined,
      }))
      .sort((a, b) => a.node.localeCompare(b.node));
  }

  async clusterNodes(): Promise<PveClusterNode[]> {
    const list = await this.request<Array<Record<string, unknown>>>('GET', '/cluster/status');
    return list
      .filter((r) => r.type === 'node')
      .map((r) => ({
        name: String(r.name),
        ...(typeof r.ip === 'string' && r.ip ? { ip: r.ip } : {}),
        local: bool(r.local),
        online: r.online === undefined ? true : bool(r.online),
      }));
  }

  async storages(node: string): Promise<PveStorageInfo[]> {
    const list = await this.request<Array<Record<string, unknown>>>('GET', `/nodes/${enc(node)}/storage`);
    return list.map((s) => ({
      storage: String(s.storage),
      type: String(s.type),
      content: splitList(s.content),
      active: bool(s.active),
      enabled: s.enabled === undefined ? true : bool(s.enabled),
      shared: bool(s.shared),
      avail: s.avail as number | undefined,
      total: s.total as number | undefined,
      used: s.used as number | undefined,
    }));
  }

  async storageConfig(storage: string): Promise<{ storage: string; type: string; content: string[]; path?: string; shared?: boolean }> {
    const s = await this.request<Record<string, unknown>>('GET', `/storage/${enc(storage)}`);
    return {
      storage: String(s.storage ?? storage),
      type: String(s.type),
      content: splitList(s.content),
      path: s.path as string | undefined,
      shared: s.shared === undefined ? undefined : bool(s.shared),
    };
  }

  async setStorageContent(storage: string, content: string[]): Promise<void> {
    await this.request('PUT', `/storage/${enc(storage)}`, { content: content.join(',') });
  }

  async storageContent(node: string, storage: string, content?: string): Promise<PveVolume[]> {
    const list = await this.request<Array<Record<string, unknown>>>('GET', `/nodes/${enc(node)}/storage/${enc(storage)}/content`, {
      content,
    });
    return list.map((v) => ({
      volid: String(v.volid),
      format: v.format as string | undefined,
      size: v.size as number | undefined,
      content: String(v.content),
      ctime: v.ctime as number | undefined,
    }));
  }

  async bridges(node: string): Promise<PveBridge[]> {
    const list = await this.request<Array<Record<string, unknown>>>('GET', `/nodes/${enc(node)}/network`, { type: 'any_bridge' });
    return list
      .map((b) => ({
        iface: String(b.iface),
        type: String(b.type),
        active: b.active === undefined ? undefined : bool(b.active),
        cidr: b.cidr as string | undefined,
        comments: b.comments as string | undefined,
      }))
      .sort((a, b) => a.iface.localeCompare(b.iface));
  }

  async permissions(path?: string): Promise<Record<string, Record<string, number | boolean>>> {
    return (await this.request<Record<string, Record<string, number | boolean>>>('GET', '/access/permissions', path ? { path } : {})) ?? {};
  }

  async nodeDns(node: string): Promise<{ servers: string[]; search?: string }> {
    const d = await this.request<Record<string, unknown>>('GET', `/nodes/${enc(node)}/dns`);
    const servers = ['dns1', 'dns2', 'dns3'].map((k) => d[k]).filter((v): v is string => typeof v === 'string' && v.trim() !== '');
    return { servers: servers.map((v) => v.trim()), search: typeof d.search === 'string' && d.search ? d.search : undefined };
  }

  async vms(): Promise<PveVmResource[]> {
    const list = await this.request<Array<Record<string, unknown>>>('GET', '/cluster/resources', { type: 'vm' });
    return list
      .filter((r) => r.type === 'qemu' || r.type === 'lxc')
      .map((r) => ({
        type: r.type as 'qemu' | 'lxc',
        vmid: Number(r.vmid),
        node: String(r.node),
        name: r.name as string | undefined,
        status: String(r.status ?? 'unknown'),
        template: bool(r.template),
        lock: (r.lock as string | undefined) || undefined,
        tags: (r.tags as string | undefined) || undefined,
      }));
  }

  async freeVmid(range: { start: number; end: number }, exclude: Iterable<number> = []): Promise<number | null> {
    const used = new Set<number>(exclude);
    for (const vm of await this.vms()) used.add(vm.vmid);
    for (let id = range.start; id <= range.end; id++) {
      if (used.has(id)) continue;
      // Ask Proxmox too: it also knows ids outside the resource list (e.g. a config being created).
      try {
        // Proxmox answers the id as a string ({"data":"100"}) although its schema says integer
        const n = await this.request<string>('GET', '/cluster/nextid', { vmid: id });
        if (Number(n) === id) return id;
      } catch (err) {
        if (/already exists/i.test((err as Error).message) || findCause(err, PveHttpError)?.status === 400) continue;
        throw err;
      }
    }
    return null;
  }

  async vmConfig(node: string, vmid: number): Promise<Record<string, string | number>> {
    return this.request('GET', `/nodes/${enc(node)}/qemu/${vmid}/config`);
  }

  async vmStatus(
    node: string,
    vmid: number,
  ): Promise<{ status: string; name?: string; lock?: string; template?: boolean; qmpstatus?: string }> {
    const s = await this.request<Record<string, unknown>>('GET', `/nodes/${enc(node)}/qemu/${vmid}/status/current`);
    return {
      status: String(s.status),
      name: s.name as string | undefined,
      lock: (s.lock as string | undefined) || undefined,
      template: s.template === undefined ? undefined : bool(s.template),
      qmpstatus: s.qmpstatus as string | undefined,
    };
  }

  async agentInterfaces(node: string, vmid: number): Promise<PveAgentInterface[]> {
    const r = await this.request<{ result?: PveAgentInterface[] }>('GET', `/nodes/${enc(node)}/qemu/${vmid}/agent/network-get-interfaces`);
    return r?.result ?? [];
  }

  async taskStatus(node: string, upid: Upid): Promise<PveTaskStatus> {
    const s = await this.request<Record<string, unknown>>('GET', `/nodes/${enc(node)}/tasks/${enc(upid)}/status`);
    return {
      upid: String(s.upid ?? upid),
      node: String(s.node ?? node),
      status: s.status === 'running' ? 'running' : 'stopped',
      exitstatus: s.exitstatus as string | undefined,
      type: String(s.type ?? ''),
      id: s.id === undefined ? undefined : String(s.id),
      user: String(s.user ?? ''),
      starttime: Number(s.starttime ?? 0),
      endtime: s.endtime === undefined ? undefined : Number(s.endtime),
    };
  }

  async taskLog(node: string, upid: Upid, start = 0): Promise<string[]> {
    const lines = await this.request<Array<{ n: number; t: string }>>('GET', `/nodes/${enc(node)}/tasks/${enc(upid)}/log`, {
      start,
      limit: 1000,
    });
    return lines.map((l) => l.t);
  }

  async waitTask(node: string, upid: Upid, opts: WaitOptions = {}): Promise<PveTaskStatus> {
    const timeoutMs = opts.timeoutMs ?? this.t.taskTimeoutMs;
    const started = this.now();
    let logPos = 0;
    // Poll at ~10 % of the time waited (at least pollFloorMs(), at most 2 × max(taskPollMs, 200 ms)
    // = 1 s by default): a short task (template, resize: ~1 s) is seen done within tens of ms instead
    // of up to a fixed 200–2000 ms step, and a long one (download, import) costs about 10 status reads a
    // doubling of its duration.
    const minDelay = Math.min(this.pollFloorMs(), this.t.taskPollMs);
    const maxDelay = Math.max(this.t.taskPollMs, 200) * 2;
    const allLines: string[] = [];
    const readLog = async () => {
      try {
        const lines = await this.taskLog(node, upid, logPos);
        logPos += lines.length;
        for (const l of lines) {
          allLines.push(l);
          opts.onLog?.(l);
        }
      } catch {
        /* the log is a nicety; the status decides */
      }
    };
    // The log (progress lines) is read at most every 500 ms while the task runs, and once at its end.
    let logReadAt = -Infinity;
    for (;;) {
      if (opts.signal?.aborted) throw new AbortedError();
      const known = opts.known?.status === 'stopped' && logReadAt === -Infinity ? opts.known : undefined;
      const st = known ?? (await this.taskStatus(node, upid));
      if (st.status === 'stopped' || this.now() - logReadAt >= 500) {
        logReadAt = this.now();
        await readLog();
      }
      if (st.status === 'stopped') {
        if (st.exitstatus === 'OK' || /^WARNINGS: \d+$/.test(st.exitstatus ?? '')) return st;
        let tail = allLines;
        if (tail.length === 0) tail = await this.taskLog(node, upid, 0).catch(() => []);
        throw new RemoteError(
          `Proxmox task ${st.type}${st.id ? ` ${st.id}` : ''} on ${node} failed: ${st.exitstatus ?? 'unknown exit status'}`,
          {
            detail: `${upid}\n${tail.slice(-15).join('\n')}`,
          },
        );
      }
      if (this.now() - started > timeoutMs) {
        throw new RemoteError(
          `Proxmox task ${st.type}${st.id ? ` ${st.id}` : ''} on ${node} still runs after ${Math.round(timeoutMs / 1000)} s; it was left running`,
          {
            fix: 'Look at the task in the Proxmox web UI (the node → Task History); when it has finished, run again.',
            detail: `${upid}\n${allLines.slice(-15).join('\n')}`,
          },
        );
      }
      await this.sleep(Math.min(maxDelay, Math.max(minDelay, Math.round((this.now() - started) * 0.1))), opts.signal);
    }
  }

  // ---- mutations ---------------------------------------------------------------------------------

  async downloadUrl(
    node: string,
    storage: string,
    params: {
      url: string;
      content: 'iso' | 'vztmpl' | 'import';
      filename: string;
      checksum?: string;
      'checksum-algorithm'?: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
      'verify-certificates'?: boolean;
    },
  ): Promise<Upid> {
    if (params.content === 'import') await this.pveVersionString().catch(() => undefined);
    return this.request('POST', `/nodes/${enc(node)}/storage/${enc(storage)}/download-url`, params);
  }

  private guardRootOnly(params: PveParams): void {
    const what = rootOnlyParameter(params);
    if (what) this.requireRootPam(what.charAt(0).toUpperCase() + what.slice(1));
  }

  async createVm(node: string, params: PveParams & { vmid: number }): Promise<Upid> {
    this.guardRootOnly(params);
    try {
      return await this.request<Upid>('POST', `/nodes/${enc(node)}/qemu`, withSshKeys(params));
    } catch (err) {
      if (!(err instanceof PveAmbiguousError)) throw err;
      return this.recoverAmbiguous(node, 'qmcreate', params.vmid, params.vmid, err);
    }
  }

  async updateVmConfig(node: string, vmid: number, params: PveParams): Promise<void> {
    this.guardRootOnly(params);
    await this.request('PUT', `/nodes/${enc(node)}/qemu/${vmid}/config`, withSshKeys(params));
  }

  async updateVmConfigAsync(node: string, vmid: number, params: PveParams): Promise<Upid> {
    this.guardRootOnly(params);
    return this.request('POST', `/nodes/${enc(node)}/qemu/${vmid}/config`, withSshKeys(params));
  }

  async cloneVm(
    node: string,
    vmid: number,
    params: { newid: number; name?: string; description?: string; full?: boolean; target?: string; storage?: string; pool?: string },
  ): Promise<Upid> {
    try {
      return await this.request<Upid>('POST', `/nodes/${enc(node)}/qemu/${vmid}/clone`, params);
    } catch (err) {
      if (!(err instanceof PveAmbiguousError)) throw err;
      return this.recoverAmbiguous(node, 'qmclone', vmid, params.newid, err);
    }
  }

  async convertToTemplate(node: string, vmid: number): Promise<Upid> {
    return this.request('POST', `/nodes/${enc(node)}/qemu/${vmid}/template`);
  }

  async resizeDisk(node: string, vmid: number, disk: string, size: string): Promise<Upid> {
    return this.request('PUT', `/nodes/${enc(node)}/qemu/${vmid}/resize`, { disk, size });
  }

  async startVm(node: string, vmid: number): Promise<Upid> {
    return this.request('POST', `/nodes/${enc(node)}/qemu/${vmid}/status/start`);
  }

  async shutdownVm(node: string, vmid: number, timeoutSec?: number): Promise<Upid> {
    return this.request('POST', `/nodes/${enc(node)}/qemu/${vmid}/status/shutdown`, { timeout: timeoutSec });
  }

  async stopVm(node: string, vmid: number): Promise<Upid> {
    return this.request('POST', `/nodes/${enc(node)}/qemu/${vmid}/status/stop`);
  }

  async deleteVm(node: string, vmid: number, opts: { purge?: boolean; destroyUnreferencedDisks?: boolean } = {}): Promise<Upid> {
    return this.request('DELETE', `/nodes/${enc(node)}/qemu/${vmid}`, {
      purge: opts.purge,
      'destroy-unreferenced-disks': opts.destroyUnreferencedDisks,
    });
  }

  /**
   * The answer to a create/clone was lost. Do not send it again: read whether Proxmox got it.
   * Found its task → follow that task. Found the VM but no task → say so. Found nothing → nothing was
   * created; the caller may try again knowingly.
   */
  private async recoverAmbiguous(
    node: string,
    type: 'qmcreate' | 'qmclone',
    taskVmid: number,
    newVmid: number,
    err: PveAmbiguousError,
  ): Promise<Upid> {
    const sentAt = this.now();
    this.logLine(
      `${type === 'qmclone' ? 'clone' : 'create'} of VM ${newVmid}: the connection failed before Proxmox answered; checking whether it arrived (not re-sending)`,
    );
    await this.sleep(this.t.recheckDelayMs);
    let tasks: Array<Record<string, unknown>> = [];
    try {
      tasks = await this.request('GET', `/nodes/${enc(node)}/tasks`, { vmid: taskVmid, typefilter: type, source: 'all', limit: 20 });
    } catch {
      /* fall through to the VM check */
    }
    const exists = await this.vms().then(
      (vms) => vms.some((v) => v.vmid === newVmid),
      () => undefined,
    );
    const candidates = tasks.filter(
      (t) => t.type === type && String(t.id) === String(taskVmid) && Number(t.starttime ?? 0) * 1000 >= sentAt - 5 * 60_000,
    );
    const running = candidates.filter((t) => !t.endtime || t.status === undefined);
    const pick =
      type === 'qmcreate' ? candidates[0] : running.length === 1 ? running[0] : candidates.length === 1 ? candidates[0] : undefined;
    if (pick && exists !== false) {
      this.logLine(`Proxmox did receive it: following task ${String(pick.upid)}`);
      return String(pick.upid);
    }
    if (exists) {
      throw new RemoteError(
        `The connection failed while Proxmox was creating VM ${newVmid}; VM ${newVmid} exists now but its task could not be identified`,
        {
          fix: 'Wait until the VM is no longer locked in the Proxmox UI, then run again (the VM will be checked, not created twice).',
          cause: err,
        },
      );
    }
    throw new PveAmbiguousError(
      `The connection failed before Proxmox answered; Proxmox has no VM ${newVmid} and no task for it, so nothing was created. The request was not re-sent.`,
      {
        fix: 'Run again.',
        detail: err.message,
        cause: err,
      },
    );
  }
}

function splitList(v: unknown): string[] {
  return typeof v === 'string' && v.length
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

function withSshKeys<T extends PveParams>(params: T): T {
  const k = params.sshkeys;
  if (typeof k === 'string' && !SSHKEYS_OK.test(k)) return { ...params, sshkeys: encodeSshKeys(k.split('\n')) };
  return params;
}

/**
 * Connect to Proxmox: settle TLS trust (CA, pin, or ask about an unknown certificate), log in, and check
 * that the API answers. Returns the client and the fingerprint to record as the pin.
 */
export async function createProxmoxClient(
  opts: CreateProxmoxClientOptions,
  tuning: ClientTuning = {},
): Promise<{ client: ProxmoxClient; fingerprint: string }> {
  const log = opts.log ?? (() => {});
  let url: URL;
  try {
    url = new URL(opts.url);
    if (url.protocol !== 'https:') throw new Error('not https');
  } catch {
    throw new UserError(`proxmox.url must be an https:// URL like https://pve.example.lan:8006 (given: ${JSON.stringify(opts.url)})`, {
      field: 'proxmox.url',
      fix: 'Set proxmox.url to https://<PVE host>:8006',
    });
  }
  const base = `https://${url.host.includes(':') ? url.host : `${url.host}:8006`}`;
  const auth = authIdentity(opts);

  let pin = opts.fingerprint ? normalizeFingerprint(opts.fingerprint) : undefined;
  if (pin && pin.length !== 95) {
    throw new UserError(`proxmox.fingerprint is not a SHA-256 fingerprint (32 hex bytes separated by ":")`, {
      field: 'proxmox.fingerprint',
      fix: 'Copy it from `pvenode cert info` on the PVE host (the "fingerprint" line of pve-ssl.pem or pveproxy-ssl.pem).',
    });
  }
  if (!pin && !opts.caFile) {
    const cert = await probeFingerprint(base);
    const trusted = opts.onUnknownFingerprint ? await opts.onUnknownFingerprint(cert.fingerprint) : false;
    if (!trusted) {
      throw new UserError(
        `The Proxmox TLS certificate at ${base} is not trusted yet (SHA-256 ${cert.fingerprint}, subject ${cert.subject}, issuer ${cert.issuer}, valid until ${cert.validTo})`,
        {
          field: 'proxmox.fingerprint',
          fix: `Verify it on the PVE host with \`pvenode cert info\` (fingerprint of pve-ssl.pem or pveproxy-ssl.pem); if it matches, set proxmox.fingerprint: "${cert.fingerprint}" (or PROXMOX_VE_FINGERPRINT), or set proxmox.caFile to a copy of /etc/pve/pve-root-ca.pem.`,
        },
      );
    }
    pin = cert.fingerprint;
    log(`Trusting the Proxmox certificate ${cert.fingerprint} (pinned from now on)`);
  }
  const tls: TlsAgent = proxmoxAgent({ pin, caFile: opts.caFile });
  const { port } = hostPort(base);
  const now = tuning.now ?? Date.now;
  const engineOpts =
    auth.kind === 'token'
      ? {
          host: url.hostname,
          port,
          tokenID: opts.tokenId!,
          tokenSecret: opts.tokenSecret!.trim().toLowerCase(),
          queryTimeout: opts.timeoutMs ?? 60_000,
          authTimeout: opts.timeoutMs ?? 15_000,
        }
      : {
          host: url.hostname,
          port,
          username: opts.username!,
          password: opts.password!,
          queryTimeout: opts.timeoutMs ?? 60_000,
          authTimeout: opts.timeoutMs ?? 15_000,
        };
  const transport = pveTransport(tls.agent);
  const PveEngine = await loadPveEngine();
  const engine = new PveEngine({ ...engineOpts, schema: 'https', fetch: transport.fetch as never }, auth.kind === 'ticket', now);
  const client = new PveClient(engine, transport, tls.agent, base, auth, pin ?? '', log, tuning);
  let v: PveVersion;
  try {
    v = await client.version();
  } catch (err) {
    await client.close();
    throw err;
  }
  const fingerprint = pin ?? tls.seenFingerprint() ?? '';
  (client as { tlsFingerprint: string }).tlsFingerprint = fingerprint;
  log(`Connected to Proxmox VE ${v.version} at ${base} as ${auth.kind === 'token' ? auth.tokenId : auth.user}`);
  return { client, fingerprint };
}

function authIdentity(opts: CreateProxmoxClientOptions): AuthIdentity {
  if (opts.tokenId || opts.tokenSecret) {
    if (!opts.tokenId || !/^[^\s@!]+@[^\s@!]+![A-Za-z][A-Za-z0-9._-]*$/.test(opts.tokenId)) {
      throw new UserError(`proxmox.tokenId must look like "user@realm!tokenname" (given: ${JSON.stringify(opts.tokenId ?? '')})`, {
        field: 'proxmox.tokenId',
        fix: 'Copy the token id shown under Datacenter → Permissions → API Tokens, e.g. root@pam!flatcar.',
      });
    }
    if (!opts.tokenSecret || !UUID_LOWER.test(opts.tokenSecret.trim().toLowerCase())) {
      throw new UserError('proxmox.tokenSecret must be the token secret Proxmox showed once at creation (a UUID like 0d5c3c1e-…)', {
        field: 'proxmox.tokenSecret',
        fix: 'If you no longer have it, create a new token (Datacenter → Permissions → API Tokens → Add) and copy its secret.',
      });
    }
    return { kind: 'token', user: opts.tokenId.split('!')[0]!, tokenId: opts.tokenId };
  }
  if (opts.username && opts.password) return { kind: 'ticket', user: opts.username };
  throw new UserError(
    'No Proxmox credentials: set proxmox.tokenId and proxmox.tokenSecret (an API token), or proxmox.username and proxmox.password',
    {
      field: 'proxmox.tokenId',
      fix: 'Create an API token (Datacenter → Permissions → API Tokens) and set proxmox.tokenId / proxmox.tokenSecret, or PROXMOX_VE_API_TOKEN="user@realm!id=secret".',
    },
  );
}
