/**
 * SSH to the Proxmox host (snippets cannot be uploaded through the API). The host key is pinned like
 * the TLS fingerprint: config.proxmox.ssh.hostKey wins, else the pin `pve-ssh:<host>` in the state;
 * on first contact the key is trusted only with --yes (or a UI confirmation, which sets it), else
 * the run stops with the fingerprint and how to pin it.
 *
 * Another PVE node (snippets and templates on local storage go to each host that runs VMs) is reached
 * at proxmox.ssh.nodes.<node>.host, else at its address from /cluster/status, with the same user and key;
 * the node that answers the API (`local` there) and a node without a known address use proxmox.ssh.
 */
import { homedir } from 'node:os';
import { UserError } from '../../src/errors.js';
import { HostKeyMismatchError, SshAuthError, SshConnectError, UnknownHostKeyError } from '../../src/ssh/errors.js';
import { agentSocket, findDefaultKeys, loadPrivateKey } from '../../src/ssh/keys.js';
import type { SshSession, SshTarget } from '../../src/ssh/types.js';
import type { StepContext } from '../types.js';

export const pveSshPinKey = (host: string): string => `pve-ssh:${host}`;

export function pveSshHost(ctx: StepContext): string {
  return ctx.config.proxmox.ssh.host ?? new URL(ctx.config.proxmox.url).hostname.replace(/^\[|\]$/g, '');
}

/** Where SSH to one PVE host goes, and which config field sets its host key. */
export interface PveSshEndpoint {
  host: string;
  port: number;
  hostKey?: string;
  /** "proxmox.ssh" or "proxmox.ssh.nodes.pve2" */
  field: string;
  /** The PVE node name, when it is not the API's own host. */
  pveNode?: string;
}

export function mainPveSshEndpoint(ctx: StepContext): PveSshEndpoint {
  const ssh = ctx.config.proxmox.ssh;
  return { host: pveSshHost(ctx), port: ssh.port, hostKey: ssh.hostKey, field: 'proxmox.ssh' };
}

/** The SSH endpoint of PVE node `pveNode` (see the header); undefined = the API's own host. */
export async function pveSshEndpoint(ctx: StepContext, pveNode?: string): Promise<PveSshEndpoint> {
  const ssh = ctx.config.proxmox.ssh;
  const main = mainPveSshEndpoint(ctx);
  if (!pveNode) return main;
  const own = ssh.nodes[pveNode];
  const field = `proxmox.ssh.nodes.${pveNode}`;
  if (own?.host) return { host: own.host, port: own.port ?? ssh.port, hostKey: own.hostKey, field, pveNode };
  const row = (await (await ctx.services.proxmox()).clusterNodes()).find((r) => r.name === pveNode);
  if (!row || row.local || !row.ip)
    return own?.hostKey || own?.port ? { ...main, port: own.port ?? main.port, hostKey: own.hostKey ?? main.hostKey } : main;
  return { host: row.ip, port: own?.port ?? ssh.port, hostKey: own?.hostKey, field, pveNode };
}

export function pveSshTarget(ctx: StepContext, endpoint: PveSshEndpoint = mainPveSshEndpoint(ctx)): SshTarget {
  const ssh = ctx.config.proxmox.ssh;
  const host = endpoint.host;
  const pinKey = pveSshPinKey(host);
  const pinned = endpoint.hostKey ?? ctx.services.pins.get(pinKey);
  const target: SshTarget = {
    host,
    port: endpoint.port,
    username: ssh.user,
    label: `the Proxmox host ${endpoint.pveNode ? `${endpoint.pveNode} (${host})` : host}`,
    hostKeyFingerprint: pinned,
    forgetPinHint: endpoint.hostKey
      ? `updating ${endpoint.field}.hostKey in the config`
      : `setting ${endpoint.field}.hostKey to the new fingerprint in the config (it overrides the pin ${pinKey} in the state)`,
    onNewHostKey: (fp) => {
      if (!ctx.options.yes) return false;
      ctx.services.pins.set(pinKey, fp);
      ctx.log(`Trusting the SSH host key of ${host} on first use: ${fp} (pinned as ${pinKey})`, 'warn');
      return true;
    },
  };
  if (ssh.privateKeyFile) {
    target.privateKey = loadPrivateKey(ssh.privateKeyFile).privateKey;
  } else {
    target.agent = agentSocket(process.env);
    const file = findDefaultKeys(ctx.options.homeDir ?? homedir())[0];
    if (file) {
      try {
        target.privateKey = loadPrivateKey(file).privateKey;
      } catch (err) {
        if (!target.agent) throw err;
      }
    }
    if (!target.privateKey && !target.agent) {
      throw new UserError(
        `No SSH key to log in to the Proxmox host ${host} as ${ssh.user} (needed to upload the Ignition snippet: Proxmox has no API for snippets)`,
        {
          field: 'proxmox.ssh.privateKeyFile',
          fix: 'Set proxmox.ssh.privateKeyFile, start ssh-agent with your key loaded, or create ~/.ssh/id_ed25519 and add its .pub to /root/.ssh/authorized_keys on the PVE host.',
        },
      );
    }
  }
  return target;
}

/** A terminal/UI confirmation, when the services offer one (the same hook the TLS first-use check uses). */
type Confirm = (question: string) => Promise<boolean>;
const confirmOf = (ctx: StepContext): Confirm | undefined => ctx.services.confirm;

/** Connect with the pinning rules above (to PVE node `pveNode`, default the API's host); failures name the cause and the fix. */
export async function connectPveSsh(ctx: StepContext, pveNode?: string): Promise<SshSession> {
  const endpoint = await pveSshEndpoint(ctx, pveNode);
  const target = pveSshTarget(ctx, endpoint);
  const f = endpoint.field;
  try {
    const session = await ctx.services.ssh.connect(target, { signal: ctx.signal });
    // The key in use is recorded whatever vouched for it: a config that later drops proxmox.ssh.hostKey
    // falls back to this pin, never to trust on first use (only forget-host-key clears it).
    const key = ctx.config.proxmox.ssh.hostKey;
    if (key && ctx.services.pins.get(pveSshPinKey(target.host)) !== key) ctx.services.pins.set(pveSshPinKey(target.host), key);
    return session;
  } catch (err) {
    const host = target.host;
    const confirm = confirmOf(ctx);
    if (err instanceof UnknownHostKeyError && confirm && !target.hostKeyFingerprint) {
      const ok = await confirm(
        `The Proxmox host ${host} presents an SSH host key flatcar-k3s has not seen before.\nFingerprint: ${err.presented}\n(on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)\nTrust it and pin it for this cluster?`,
      );
      if (ok) {
        ctx.services.pins.set(pveSshPinKey(host), err.presented);
        ctx.log(`Pinned the SSH host key of ${host} after confirmation: ${err.presented}`, 'warn');
        return connectPveSsh(ctx, pveNode);
      }
    }
    if (err instanceof UnknownHostKeyError) {
      throw new UserError(`The SSH host key of the Proxmox host ${host} is not known yet: ${err.presented}`, {
        field: `${f}.hostKey`,
        fix: `Compare it with \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the PVE host; if it matches, set ${f}.hostKey: "${err.presented}" in the config, or run again with --yes to trust it on first use.`,
        cause: err,
      });
    }
    if (err instanceof HostKeyMismatchError) {
      throw new UserError(
        `The SSH host key of the Proxmox host ${host} changed: pinned ${err.pinned}, now ${err.presented}. Refusing to connect (this is what a machine-in-the-middle attack looks like).`,
        {
          field: `${f}.hostKey`,
          fix: `If the host was reinstalled or its keys were regenerated, check the new key with \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on it and set ${f}.hostKey: "${err.presented}" in the config.`,
          cause: err,
        },
      );
    }
    if (err instanceof SshAuthError) {
      throw new UserError(`The Proxmox host ${host} refused the SSH login of ${target.username}: ${err.message}`, {
        field: 'proxmox.ssh.privateKeyFile',
        fix: `Add your public key to /root/.ssh/authorized_keys on ${host} (ssh-copy-id ${target.username}@${host}), or set proxmox.ssh.privateKeyFile / proxmox.ssh.user.`,
        cause: err,
      });
    }
    if (err instanceof SshConnectError) {
      throw new UserError(`Cannot reach SSH on the Proxmox host ${host}:${target.port}: ${err.message}`, {
        field: `${f}.host`,
        fix: `flatcar-k3s uploads the Ignition snippet over SSH (Proxmox has no API for snippets): make sure sshd runs on ${host} and is reachable on port ${target.port}, or set ${f}.host / ${f}.port.`,
        cause: err,
      });
    }
    throw err;
  }
}
