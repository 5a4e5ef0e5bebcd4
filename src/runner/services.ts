/**
 * StepServices wiring: the Proxmox client (connected and TLS-pinned on first use), the SSH connector,
 * secrets, pins, clock. Heavy modules (proxmox-api, ssh2) load only when a step first needs them.
 *
 * Trust on first use of the Proxmox TLS certificate: when neither proxmox.fingerprint nor a pin in
 * the state is known and the certificate is not signed by a trusted CA, the fingerprint is trusted
 * only if the user passed --yes (it is logged and pinned) or confirms it on the terminal.
 *
 * The fingerprint in use is recorded in the state whatever vouched for it (proxmox.fingerprint, the CA
 * of proxmox.caFile, or first use), so a later config that names neither falls back to that pin and
 * never to trust on first use: only `forget-host-key proxmox.tls` clears it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import type { ProxmoxClient } from '../proxmox/types.js';
import type { SshConnector } from '../ssh/types.js';
import { SshPool } from '../ssh/pool.js';
import type { PinStore, SecretStore, StepServices } from '../../steps/types.js';
import { UserError } from '../errors.js';

/** Pin key of the Proxmox API TLS certificate fingerprint (SHA-256, "AB:CD:…"). */
export const PIN_PVE_TLS = 'proxmox.tls';

export interface ServicesOptions {
  config: Config;
  secrets: SecretStore;
  pins: PinStore;
  /** --yes: trust an unknown TLS certificate on first use (it is logged and pinned). */
  yes?: boolean;
  /** Ask a yes/no question on the terminal; absent when there is no terminal to ask on. */
  confirm?: (question: string) => Promise<boolean>;
  log?: (line: string, level?: 'info' | 'warn' | 'error' | 'debug') => void;
  now?: () => number;
  /** Tests: replaces src/proxmox/client.ts's createProxmoxClient. */
  createProxmoxClient?: typeof import('../proxmox/client.js')['createProxmoxClient'];
}

export function createServices(opts: ServicesOptions): StepServices & { sshPool: SshPool; close(): Promise<void> } {
  let proxmox: Promise<ProxmoxClient> | undefined;
  let ssh: Promise<SshConnector> | undefined;
  const log = opts.log ?? (() => {});
  const sshPool = new SshPool();

  const connectProxmox = async (): Promise<ProxmoxClient> => {
    const create = opts.createProxmoxClient ?? (await import('../proxmox/client.js')).createProxmoxClient;
    const p = opts.config.proxmox;
    const recorded = opts.pins.get(PIN_PVE_TLS);
    // The config's fingerprint wins; with a CA file the CA vouches (a renewed certificate is fine);
    // with neither, the recorded pin.
    const pinned = p.fingerprint ?? (p.caFile ? undefined : recorded);
    const { client, fingerprint } = await create({
      url: p.url,
      tokenId: p.tokenId,
      tokenSecret: p.tokenSecret,
      username: p.username,
      password: p.password,
      fingerprint: pinned,
      caFile: p.caFile,
      log: (line) => log(line, 'debug'),
      onUnknownFingerprint: async (fp) => {
        if (opts.yes) {
          log(`Trusting the Proxmox TLS certificate ${fp} on first use (--yes); it is pinned from now on.`, 'warn');
          return true;
        }
        if (opts.confirm)
          return opts.confirm(
            `Proxmox at ${p.url} presents a certificate no trusted CA signed.\nSHA-256 fingerprint: ${fp}\nTrust it and pin it for this cluster?`,
          );
        throw new UserError(
          `Proxmox at ${p.url} presents an unknown TLS certificate (SHA-256 ${fp}) and there is no terminal to confirm it`,
          {
            field: 'proxmox.fingerprint',
            fix: `Check the fingerprint in the Proxmox UI (Datacenter → Certificates), then set proxmox.fingerprint: "${fp}" in the config (or PROXMOX_VE_FINGERPRINT), or pass --yes to trust it on first use.`,
          },
        );
      },
    });
    if (fingerprint && recorded !== fingerprint) {
      if (recorded)
        log(
          `The Proxmox TLS certificate in use is now ${fingerprint} (${p.fingerprint ? 'proxmox.fingerprint' : 'signed by proxmox.caFile'}); pinned in place of ${recorded}.`,
          'info',
        );
      opts.pins.set(PIN_PVE_TLS, fingerprint);
    }
    return client;
  };

  return {
    proxmox() {
      proxmox ??= connectProxmox().catch((err: unknown) => {
        proxmox = undefined; // a failed connection is retried by the next caller
        throw err;
      });
      return proxmox;
    },
    ssh: {
      async connect(target, o) {
        ssh ??= Promise.all([import('../ssh/client.js'), import('../ssh/native.js')]).then(([m, n]) => {
          const native = n.nativeCryptoStatus();
          log(native.line, native.active ? 'info' : 'warn');
          return m.createSshConnector();
        });
        return (await ssh).connect(target, o);
      },
    },
    sshPool,
    /** End of the run: the shared SSH connections close. */
    async close() {
      await sshPool.closeAll();
    },
    secrets: opts.secrets,
    pins: opts.pins,
    // Steps ask through the same hook as the TLS first-use check (e.g. the PVE host's SSH key).
    ...(opts.confirm ? { confirm: opts.confirm } : {}),
    now: opts.now ?? Date.now,
    async sleep(ms, signal) {
      await delay(ms, undefined, signal ? { signal } : undefined);
    },
  };
}

/** Services for `plan`: describe() may read config and state, but nothing may connect anywhere. */
export function offlineServices(secrets: SecretStore, pins: PinStore): StepServices {
  const refuse = (): never => {
    throw new Error('plan touches nothing: a step tried to connect while describing itself');
  };
  return {
    proxmox: async () => refuse(),
    ssh: { connect: async () => refuse() },
    secrets,
    pins,
    now: Date.now,
    sleep: async () => {},
  };
}
