/**
 * proxmox:connect — reach Proxmox (TLS pinned, logged in) and read whether it can host the cluster:
 * PVE version, the nodes to use, the storages with the content types the later steps need, the
 * bridge. Reads only: anything missing fails with a UserError naming the config field and the fix;
 * nothing is changed on Proxmox (not even a storage's content list).
 */
import type { Config } from '../../src/config/schema.js';
import { UserError } from '../../src/errors.js';
import type { ProxmoxClient, PveStorageInfo } from '../../src/proxmox/types.js';
import { pveVersionAtLeast } from '../../src/proxmox/version.js';
import { aclCommand, storageContentError, versionTooOldError, PVE_FEATURES, type AuthIdentity } from '../../src/proxmox/errors.js';
import { missingPrivileges, privilegesAt, requiredPrivileges } from '../../src/proxmox/privileges.js';
import { STEP, type ProxmoxFacts } from '../ids.js';
import type { CheckResult, Step, StepContext } from '../types.js';

/** Pin key of the PVE TLS certificate in the state (same key as src/runner/services.ts). */
const PIN_PVE_TLS = 'proxmox.tls';

export interface ConnectFacts extends ProxmoxFacts {
  [k: string]: unknown;
  /** PVE >= 8.4: the Flatcar image can be downloaded straight into 'import' content. */
  importContent: boolean;
}

interface Problem {
  field: string;
  message: string;
  fix: string;
}

type Log = (line: string, level?: 'info' | 'warn' | 'error' | 'debug') => void;

/** Read everything; return the facts and the list of problems (empty = ready). */
export async function inspectProxmox(
  config: Config,
  client: ProxmoxClient,
  log: Log,
  fallbackFingerprint?: string,
): Promise<{ facts: ConnectFacts; problems: Problem[] }> {
  const p = config.proxmox;
  const problems: Problem[] = [];
  const add = (e: UserError | Problem) => problems.push({ field: e.field ?? 'proxmox', message: e.message, fix: e.fix ?? '' });

  const { version } = await client.version();
  if (!pveVersionAtLeast(version, '8.0')) add(versionTooOldError(version));
  const importContent = pveVersionAtLeast(version, PVE_FEATURES.importContent.since);
  if (pveVersionAtLeast(version, '8.0') && !importContent) {
    log(
      `Proxmox VE ${version} predates ${PVE_FEATURES.importContent.since}: the Flatcar image cannot be downloaded into 'import' content; it goes to '${p.storage.images}' as ISO content and is imported by path, which Proxmox allows only for root@pam with its password`,
      'warn',
    );
  }

  // Nodes
  const all = await client.nodes();
  const describeNodes = () =>
    all.map((n) => `${n.node} (${n.status})`).join(', ') || '(none visible: does the token have Sys.Audit on /nodes?)';
  let pveNodes: string[];
  if (p.nodes.length) {
    pveNodes = [];
    for (const name of p.nodes) {
      const n = all.find((x) => x.node === name);
      if (!n) add({ field: 'proxmox.nodes', message: `Proxmox has no node named '${name}'`, fix: `Use names from: ${describeNodes()}` });
      else if (n.status !== 'online')
        add({
          field: 'proxmox.nodes',
          message: `The Proxmox node '${name}' is ${n.status}`,
          fix: `Start it or remove it from proxmox.nodes; online nodes: ${
            all
              .filter((x) => x.status === 'online')
              .map((x) => x.node)
              .join(', ') || 'none'
          }`,
        });
      else pveNodes.push(name);
    }
  } else {
    pveNodes = all.filter((n) => n.status === 'online').map((n) => n.node);
    if (!pveNodes.length) add({ field: 'proxmox.nodes', message: 'No Proxmox node is online', fix: `Nodes: ${describeNodes()}` });
  }

  // Every node's storages and bridges are read at once (round trips add up over hosts), and reported in order.
  const settle = <T>(p: Promise<T>) =>
    p.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
  const perNode = Promise.all(pveNodes.map((node) => Promise.all([settle(client.storages(node)), settle(client.bridges(node))])));
  // Privileges, up front: every missing one is named with the command that grants it, before anything exists.
  if (pveNodes[0]) await checkPrivileges(config, client, version, pveNodes[0], add);
  const fetched = await perNode;
  const userErrorOr = <T>(r: { value: T } | { error: unknown }, fallback: T): T => {
    if ('value' in r) return r.value;
    if (r.error instanceof UserError) {
      add(r.error);
      return fallback;
    }
    throw r.error;
  };

  // Storages and bridge on every node VMs may land on
  const templateHost = pveNodes[0];
  const s = p.storage;
  for (const [i, node] of pveNodes.entries()) {
    const [storageRead, bridgeRead] = fetched[i]!;
    const storages: PveStorageInfo[] = userErrorOr(storageRead, []);
    const need = (id: string, content: string, field: string, why: string) => {
      const st = storages.find((x) => x.storage === id);
      if (!st) {
        add({
          field,
          message: `Proxmox node ${node} has no storage '${id}' (needed for ${why})`,
          fix: `Set ${field} to one of: ${storages.map((x) => `${x.storage} (${x.content.join(',') || 'no content'})`).join(', ') || '(none visible: the token needs Datastore.Audit on /storage)'}`,
        });
        return undefined;
      }
      if (!st.enabled || !st.active) {
        add({
          field,
          message: `The storage '${id}' is ${!st.enabled ? 'disabled' : 'not active'} on node ${node}`,
          fix: `Enable it (Datacenter → Storage) or check it with \`pvesm status\` on ${node}`,
        });
        return st;
      }
      if (!st.content.includes(content)) {
        const e = storageContentError(id, content, st.content, { field, detail: `needed for ${why}` });
        add({ field, message: `${e.message} on node ${node}; it is needed for ${why}`, fix: e.fix! });
      }
      return st;
    };
    const disks = need(s.disks, 'images', 'proxmox.storage.disks', 'VM disks');
    if (disks?.avail !== undefined) {
      const wanted =
        (config.nodes.servers.count * config.nodes.servers.disk + config.nodes.agents.count * config.nodes.agents.disk) * 1024 ** 3;
      if (disks.avail < wanted / Math.max(1, pveNodes.length)) {
        log(
          `Storage ${s.disks} on ${node} has ${(disks.avail / 1024 ** 3).toFixed(1)} GiB free; the cluster's disks may need up to ${(wanted / 1024 ** 3).toFixed(0)} GiB (thin provisioning allocates on write)`,
          'warn',
        );
      }
    }
    need(s.snippets, 'snippets', 'proxmox.storage.snippets', 'the Ignition config snippets');
    if (node === templateHost) {
      need(
        s.images,
        importContent ? 'import' : 'iso',
        'proxmox.storage.images',
        importContent ? 'the Flatcar image (import content, PVE 8.4+)' : 'the Flatcar image (ISO content before PVE 8.4)',
      );
    }
    const bridges = userErrorOr(bridgeRead, undefined);
    if (bridges && !bridges.some((b) => b.iface === p.bridge)) {
      add({
        field: 'proxmox.bridge',
        message: `Proxmox node ${node} has no bridge '${p.bridge}'`,
        fix: `Set proxmox.bridge to one of: ${bridges.map((b) => b.iface).join(', ') || '(none: create a Linux bridge under the node → System → Network)'}`,
      });
    }
  }

  // Where snippets live on the PVE host (written over SSH/SFTP later)
  const snippetsMissing = problems.some((x) => x.field === 'proxmox.storage.snippets' && /has no storage/.test(x.message));
  const snippetsPath = snippetsMissing ? '' : await snippetsPathOf(client, s.snippets, log, add);
  const hostDns = templateHost ? await hostResolvers(config, client, templateHost, log, add) : undefined;

  const facts: ConnectFacts = {
    pveVersion: version,
    pveNodes,
    snippetsPath,
    tlsFingerprint: client.tlsFingerprint || fallbackFingerprint || '',
    importContent,
    ...(hostDns ? { hostDns } : {}),
  };
  return { facts, problems };
}

/** The directory of the snippets storage on the PVE host ('' when it has none: a problem is added). */
async function snippetsPathOf(client: ProxmoxClient, snippets: string, log: Log, add: (e: UserError | Problem) => void): Promise<string> {
  let snippetsPath = '';
  try {
    const sc = await client.storageConfig(snippets);
    if (sc.path) snippetsPath = sc.path;
    else
      add({
        field: 'proxmox.storage.snippets',
        message: `The storage '${snippets}' (type ${sc.type}) has no directory path, so snippets cannot be written to it`,
        fix: 'Use a file-based storage (dir, nfs, cifs, cephfs) with the snippets content type, e.g. "local".',
      });
  } catch (err) {
    // Reading a storage definition needs Datastore.Allocate, more than the rest of the run needs.
    if (err instanceof UserError && snippets === 'local' && /lacks the privilege/.test(err.message)) {
      snippetsPath = '/var/lib/vz';
      log(`Cannot read the definition of storage 'local' (${err.message}); assuming its default path /var/lib/vz`, 'warn');
    } else if (err instanceof UserError) add(err);
    else throw err;
  }
  return snippetsPath;
}

/**
 * The host's resolvers: what Proxmox's cloud-init gives a VM without a nameserver, and so what a node
 * with a static address and no nodes.network.dns gets in its network unit.
 */
async function hostResolvers(
  config: Config,
  client: ProxmoxClient,
  templateHost: string,
  log: Log,
  add: (e: UserError | Problem) => void,
): Promise<string[] | undefined> {
  if (!client.nodeDns) return undefined;
  let hostDns: string[] | undefined;
  try {
    hostDns = (await client.nodeDns(templateHost)).servers;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log(`Cannot read the DNS servers of ${templateHost} (${err.message})`, 'warn');
  }
  const net = config.nodes.network;
  if (net.mode === 'static' && !net.dns.length && !hostDns?.length) {
    add({
      field: 'nodes.network.dns',
      message: `Nodes with static addresses would have no DNS server: nodes.network.dns is empty and the DNS servers of ${templateHost} are ${hostDns ? 'not set' : 'unreadable'}`,
      fix: 'Set nodes.network.dns (e.g. [192.168.1.1]), or set the DNS of the Proxmox host (node → System → DNS; reading it needs Sys.Audit on /nodes).',
    });
  }
  return hostDns;
}

/** The caller's effective privileges (GET /access/permissions) against what the run needs on this PVE version. */
async function checkPrivileges(
  config: Config,
  client: ProxmoxClient,
  version: string,
  node: string,
  add: (p: Problem) => void,
): Promise<void> {
  if (!client.permissions) return;
  const p = config.proxmox;
  const reqs = requiredPrivileges({
    pveVersion: version,
    node,
    storages: [p.storage.images, p.storage.disks, p.storage.snippets],
    bridge: p.bridge,
  });
  const cache = new Map<string, Set<string>>();
  const paths = [...new Set(['/', ...reqs.map((r) => r.path)])];
  const read = await Promise.all(paths.map((path) => client.permissions!(path)));
  paths.forEach((path, i) => cache.set(path, privilegesAt(read[i]!, path)));
  const missing = missingPrivileges(reqs, (path) => cache.get(path)!, cache.get('/')!);
  if (!missing.length) return;
  const auth = client.auth;
  const identity: AuthIdentity =
    auth?.kind === 'token'
      ? { kind: 'token', user: auth.user, tokenId: auth.tokenId! }
      : { kind: 'ticket', user: auth?.user ?? 'the user' };
  const who = auth?.kind === 'token' ? `The API token ${auth.tokenId}` : `The user ${identity.user}`;
  for (const r of missing) {
    add({
      field: auth?.kind === 'token' ? 'proxmox.tokenId' : 'proxmox.username',
      message: `${who} lacks ${r.priv} on ${r.path} (Proxmox VE ${version}), needed to ${r.why}`,
      fix: `${aclCommand(identity, r.path, r.priv)}   # grants ${r.priv}; or add it to your role: pveum role modify <role> --append 1 --privs ${r.priv}`,
    });
  }
}

export function problemsError(problems: Problem[]): UserError {
  if (problems.length === 1) return new UserError(problems[0]!.message, { field: problems[0]!.field, fix: problems[0]!.fix });
  return new UserError(
    `Proxmox is not ready for this cluster (${problems.length} problems):\n${problems.map((p) => `  - ${p.message} [${p.field}]`).join('\n')}`,
    {
      field: problems[0]!.field,
      fix: problems
        .map((p) => p.fix)
        .filter(Boolean)
        .join('\n'),
      detail: 'Nothing was changed on Proxmox.',
    },
  );
}

export function connectStep(config: Config): Step {
  const p = config.proxmox;
  const gather = async (ctx: StepContext) => {
    const client = await ctx.services.proxmox();
    return inspectProxmox(config, client, (l, level) => ctx.log(l, level), p.fingerprint ?? ctx.services.pins.get(PIN_PVE_TLS));
  };
  return {
    id: STEP.proxmoxConnect,
    title: 'Connect to Proxmox',
    group: 'proxmox',
    needs: [],
    // No secrets here: inputs are stored in the state file.
    inputs: {
      url: p.url,
      nodes: p.nodes,
      storage: p.storage,
      bridge: p.bridge,
      fingerprint: p.fingerprint,
      caFile: p.caFile,
      auth: p.tokenId ?? p.username,
    },
    describe: () =>
      `Connect to ${p.url} (TLS ${p.caFile ? 'verified with the CA file' : 'pinned'}) and check the PVE version, node${p.nodes.length === 1 ? '' : 's'} ${p.nodes.length ? p.nodes.join(', ') : '(all online)'}, storages ${p.storage.disks} (disks), ${p.storage.images} (image), ${p.storage.snippets} (snippets) and bridge ${p.bridge}; changes nothing`,
    async check(ctx): Promise<CheckResult> {
      try {
        const { facts, problems } = await gather(ctx);
        if (problems.length) return { done: false, reason: problemsError(problems).message };
        return { done: true, outputs: facts, reason: `Proxmox VE ${facts.pveVersion}, nodes ${facts.pveNodes.join(', ')}` };
      } catch (err) {
        return { done: false, reason: (err as Error).message };
      }
    },
    async run(ctx) {
      const { facts, problems } = await gather(ctx);
      if (problems.length) throw problemsError(problems);
      ctx.log(`Proxmox VE ${facts.pveVersion}; nodes ${facts.pveNodes.join(', ')}; snippets in ${facts.snippetsPath}/snippets`);
      return facts;
    },
  };
}
