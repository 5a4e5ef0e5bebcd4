/**
 * What the node steps share: step ids, the node plan, recorded outputs, the node Ignition snippet,
 * VM tags/description, the SSH identity and target for nodes (host keys pinned as `node-ssh:<name>`),
 * and a poll helper that reports progress.
 */
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Config } from '../../src/config/schema.js';
import { planNodes, type PlannedNode } from '../../src/config/layout.js';
import { BugError, UserError } from '../../src/errors.js';
import { ignitionHash, ignitionJson, nodeIgnition, shortHash, type NodeIgnitionEnv } from '../../src/ignition/index.js';
import { agentSocket, findDefaultKeys, loadPrivateKey, publicKeyLineOf } from '../../src/ssh/keys.js';
import { HostKeyMismatchError, SshAuthError } from '../../src/ssh/errors.js';
import { connectWithRetry } from '../../src/ssh/retry.js';
import type { SshSession, SshTarget } from '../../src/ssh/types.js';
import { STEP, type TemplateOutputs } from '../ids.js';
import type { StepContext } from '../types.js';
import { recorded } from '../shared.js';

export const NODES_STEP = {
  /** Where each VM goes (PVE host), decided once and recorded. */
  placement: STEP.placement,
  /** Every node's Ignition snippet uploaded to the PVE snippets storage. */
  snippets: 'nodes:snippets',
  /** The k3s version resolved and its sha256 (and the air-gap binary downloaded). */
  k3sRelease: STEP.k3sRelease,
  clone: (name: string) => STEP.node(name, 'clone'),
  vm: (name: string) => STEP.node(name, 'vm'),
  start: (name: string) => STEP.node(name, 'start'),
  ssh: (name: string) => STEP.node(name, 'ssh'),
  k3sBinary: (name: string) => STEP.node(name, 'k3s-binary'),
  k3s: (name: string) => STEP.node(name, 'k3s'),
} as const;

export const LANES = { clone: 'pve-clone', serverJoin: 'k3s-server-join', agentRoll: 'k3s-roll-agent' } as const;

export const pinKeyOf = (name: string): string => `node-ssh:${name}`;

export type { PlacementOutputs } from '../ids.js';

export interface SnippetsOutputs {
  [k: string]: unknown;
  /** node name → { volid, hash12 } */
  snippets: Record<string, { volid: string; hash12: string; host?: string }>;
}

export interface NodeVmOutputs {
  [k: string]: unknown;
  vmid: number;
  pveNode: string;
  name: string;
  role: string;
  mac: string;
  /** ms epoch when this tool created the VM (a re-created VM has a new host key). */
  createdAt?: number;
}

export interface NodeSshOutputs {
  [k: string]: unknown;
  address: string;
  port: number;
  hostKey: string;
  addressSource: 'static' | 'guest-agent';
  /** The host key was trusted on first contact with a VM this tool had just created. */
  trustedOnFirstContact: boolean;
  /** createdAt of the VM whose key is pinned. */
  vmCreatedAt?: number;
}

export interface K3sReleaseOutputs {
  [k: string]: unknown;
  requested: string;
  version: string;
  arch: 'amd64' | 'arm64';
  sha256: string;
  downloadUrl: string;
  /** Air-gap: the verified binary on this machine. */
  binaryPath?: string;
}

export interface NodeK3sOutputs {
  [k: string]: unknown;
  role: string;
  version: string;
  unit: string;
  configSha256: string;
  address: string;
}

export function nodeByName(config: Config, name: string): PlannedNode {
  const n = planNodes(config).find((x) => x.name === name);
  if (!n) throw new BugError(`node ${name} is not in the plan`);
  return n;
}

export function firstServer(config: Config): PlannedNode {
  return planNodes(config).find((n) => n.role === 'server' && n.index === 1)!;
}

export function template(ctx: StepContext): TemplateOutputs {
  const t = ctx.outputs<TemplateOutputs & Record<string, unknown>>(STEP.templateReady);
  if (!t?.templateVmid) throw new BugError(`the node steps ran without the outputs of ${STEP.templateReady}`);
  return t;
}

const keyCache = new Map<string, { mtimeMs: number; key: ReturnType<typeof loadPrivateKey> }>();

/** loadPrivateKey, parsed once per file (and again when the file changes). */
function loadKey(path: string): ReturnType<typeof loadPrivateKey> {
  const mtimeMs = statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  const c = keyCache.get(path);
  if (c && c.mtimeMs === mtimeMs) return c.key;
  const key = loadPrivateKey(path);
  keyCache.set(path, { mtimeMs, key });
  return key;
}

/** The SSH public keys nodes accept: nodes.sshKeys plus the key of nodes.sshPrivateKeyFile. */
export function nodeAuthorizedKeys(config: Config): string[] {
  const keys = [...config.nodes.sshKeys];
  if (config.nodes.sshPrivateKeyFile) {
    const line = loadKey(config.nodes.sshPrivateKeyFile).publicKeyLine;
    const blob = (l: string) => l.trim().split(/\s+/)[1];
    if (!keys.some((k) => blob(k) === blob(line))) keys.push(line);
  }
  return keys;
}

/** The node's Ignition (base + hostname + static address + SSH keys), as uploaded. */
export function nodeSnippet(config: Config, node: PlannedNode, env: NodeIgnitionEnv = {}): { json: string; hash12: string; file: string } {
  const keys = nodeAuthorizedKeys(config);
  if (keys.length === 0) {
    throw new UserError('No SSH public key for the nodes: flatcar-k3s logs in to them as core with your key', {
      field: 'nodes.sshKeys',
      fix: 'Add your public key to nodes.sshKeys (the contents of ~/.ssh/id_ed25519.pub), or set nodes.sshPrivateKeyFile.',
    });
  }
  const cfg = { ...config, nodes: { ...config.nodes, sshKeys: keys } };
  const json = ignitionJson(nodeIgnition(cfg, node, env));
  const hash12 = shortHash(ignitionHash(json));
  return { json, hash12, file: `flatcar-k3s-${config.cluster.name}-${node.name}-${hash12}.ign` };
}

/** PVE tags: flatcar-k3s, the cluster, the role. */
export function nodeTags(config: Config, node: PlannedNode): string[] {
  return ['flatcar-k3s', config.cluster.name, node.role];
}

export function nodeDescription(config: Config, node: PlannedNode, t: TemplateOutputs, tool: string): string {
  return [
    `flatcar-k3s node of cluster ${config.cluster.name}`,
    `role: ${node.role} ${node.index}`,
    `template: ${t.templateName} (VMID ${t.templateVmid}, Flatcar ${t.flatcarVersion})`,
    `tool: flatcar-k3s ${tool}`,
    'Managed by flatcar-k3s: `flatcar-k3s up` reconciles it.',
  ].join('\n');
}

export function addressOf(node: PlannedNode): string | undefined {
  return node.address?.split('/')[0];
}

/** The private key / agent used to log in to nodes as core. */
export function nodeIdentity(ctx: StepContext): Pick<SshTarget, 'privateKey' | 'agent'> {
  const file = ctx.config.nodes.sshPrivateKeyFile;
  if (file) return { privateKey: loadKey(file).privateKey };
  const agent = agentSocket(process.env);
  const def = findDefaultKeys(ctx.options.homeDir ?? homedir())[0];
  let privateKey: string | undefined;
  if (def) {
    try {
      privateKey = loadKey(def).privateKey;
    } catch (err) {
      if (!agent) throw err;
    }
  }
  if (!privateKey && !agent) {
    throw new UserError('No SSH key to log in to the nodes as core', {
      field: 'nodes.sshPrivateKeyFile',
      fix: 'Set nodes.sshPrivateKeyFile, or start ssh-agent with the key whose public half is in nodes.sshKeys.',
    });
  }
  return { privateKey, agent };
}

/** Public key line of the identity in use (for messages), if known. */
export function identityPublicKey(ctx: StepContext): string | undefined {
  try {
    const id = nodeIdentity(ctx);
    return id.privateKey ? publicKeyLineOf(id.privateKey) : undefined;
  } catch {
    return undefined;
  }
}

/** Connect to a node whose host key is recorded (ssh step outputs / pin). */
export async function connectNode(ctx: StepContext, name: string, opts: { timeoutMs?: number } = {}): Promise<SshSession> {
  const ssh = recorded<NodeSshOutputs>(ctx, NODES_STEP.ssh(name), 'address and host key');
  const pinned = ctx.services.pins.get(pinKeyOf(name)) || ssh.hostKey;
  const target: SshTarget = {
    host: ssh.address,
    port: ssh.port,
    username: 'core',
    label: name,
    hostKeyFingerprint: pinned,
    forgetPinHint: `\`flatcar-k3s forget-host-key ${name}\` (or remove the pin ${pinKeyOf(name)} from the state)`,
    ...nodeIdentity(ctx),
  };
  const connect = async () => {
    try {
      return await connectWithRetry(ctx.services.ssh, target, {
        signal: ctx.signal,
        timeoutMs: opts.timeoutMs ?? 120_000,
        onWait: (attempt, err) => ctx.progress(`${name}: waiting for SSH (attempt ${attempt}: ${err.message})`),
      });
    } catch (err) {
      throw explainSshError(err, name);
    }
  };
  // One connection per node for the whole run, shared by every check and run (reconnected after a drop).
  return ctx.services.sshPool ? ctx.services.sshPool.get(target, connect) : connect();
}

export function explainSshError(err: unknown, name: string): unknown {
  if (err instanceof HostKeyMismatchError) {
    return new UserError(
      `WARNING: the SSH host key of node ${name} changed: pinned ${err.pinned}, presented ${err.presented}. Refusing to connect (this is what a machine-in-the-middle attack looks like).`,
      {
        fix: `If you re-created ${name} yourself, forget the pin with \`flatcar-k3s forget-host-key ${name}\` (or remove ${pinKeyOf(name)} from the state) and run again; otherwise find out who answers at its address.`,
        cause: err,
      },
    );
  }
  if (err instanceof SshAuthError) {
    return new UserError(`Node ${name} refused the SSH login as core: ${err.message}`, {
      field: 'nodes.sshKeys',
      fix: 'The nodes accept only the keys in nodes.sshKeys (written by Ignition at first boot): use the matching private key (nodes.sshPrivateKeyFile or ssh-agent). A changed key list needs re-created VMs.',
      cause: err,
    });
  }
  return err;
}

/** Run `fn` with a session to `name` (the run's shared connection; closing a lease leaves it open). */
export async function withNode<T>(ctx: StepContext, name: string, fn: (s: SshSession) => Promise<T>): Promise<T> {
  const s = await connectNode(ctx, name);
  try {
    return await fn(s);
  } finally {
    await s.close().catch(() => undefined);
  }
}
