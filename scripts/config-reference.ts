/**
 * `npm run docs:config`: regenerate the config reference table in docs/config.md (between the
 * config-reference markers) from the zod schema: every key, its type and its default.
 * `--print` writes the table to stdout instead.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigSchema } from '../src/config/schema.js';

type J = {
  type?: string | string[];
  properties?: Record<string, J>;
  required?: string[];
  items?: J;
  enum?: unknown[];
  default?: unknown;
  anyOf?: J[];
  format?: string;
  minimum?: number;
  maximum?: number;
  additionalProperties?: J | boolean;
};

/** One line for the keys that need more than their name, type and default. */
const NOTES: Record<string, string> = {
  preset: 'start from presets/NAME.yaml (homelab, ha); this file overrides it key by key',
  'cluster.name': 'names the VMs (`<name>-server-1`…), the state dir and the kubeconfig context',
  'cluster.k3sVersion': '`stable`, `latest` or a release like `v1.33.4+k3s1` (resolved once, then recorded)',
  'cluster.disable': 'k3s components to leave out',
  'cluster.airgap': 'download k3s once here, verify it, upload it to each node',
  'cluster.airgapImages':
    "air-gapped: image archives `{image, file, sha256}` put into k3s's images dir on every node, sha256-checked; kube-vip's is required with a VIP",
  'flatcar.ignition.consoleAutologin': "keep the Proxmox image's console autologin (`flatcar.autologin`), for debugging only; `plan` warns",
  'cluster.upgrade.agentBatch': 'agents upgraded at once by the rolling k3s upgrade (servers: always one at a time); see docs/day2.md',
  'cluster.upgrade.drainTimeoutSeconds': 'how long `kubectl drain` may take per node before the roll stops at it',
  'proxmox.url': 'the API endpoint, e.g. `https://pve.lan:8006` (env `PROXMOX_VE_ENDPOINT`)',
  'proxmox.tokenId': 'API token `user@realm!name` (env `PROXMOX_VE_API_TOKEN=id=secret`)',
  'proxmox.tokenSecret': 'secret: better from the environment; never logged or stored in the state',
  'proxmox.username': 'instead of a token: `root@pam` (env `PROXMOX_VE_USERNAME`)',
  'proxmox.password': 'secret (env `PROXMOX_VE_PASSWORD`)',
  'proxmox.fingerprint': 'SHA-256 of the API TLS certificate; absent = pinned on first use (see "Trust")',
  'proxmox.caFile': 'a CA bundle that signs the API certificate, instead of a fingerprint',
  'proxmox.nodes': 'PVE nodes to place VMs on (empty = every online node); the first builds the template',
  'proxmox.storage.disks': 'storage for VM disks (content `images`)',
  'proxmox.storage.images': 'storage the Flatcar image is downloaded to (content `import`, PVE >= 8.4)',
  'proxmox.storage.snippets': 'storage for the Ignition snippets (content `snippets`)',
  'proxmox.ssh.host': 'SSH address of the PVE host, used to upload the snippets (the API cannot)',
  'proxmox.ssh.hostKey': 'pinned host key `SHA256:…`; recorded on first use when absent',
  'proxmox.ssh.nodes':
    "per PVE node `{host, port, hostKey}`: SSH to that host (per-host snippets and templates on local storage); `host` defaults to the node's address from `/cluster/status`",
  'flatcar.version': '`current` or a release like `4593.2.5`',
  'flatcar.imageBaseUrl': 'image mirror; `{channel}` is replaced',
  'flatcar.templateVmid': 'default: nodes.vmids.start',
  'flatcar.ignition.maskedUnits': 'systemd units masked on every node',
  'flatcar.ignition.rebootStrategy': 'Flatcar update reboots; `off` lets kured decide',
  'nodes.servers.count': '1, or 3/5/7 for HA with embedded etcd (needs nodes.vip)',
  'nodes.servers.memory': 'MiB',
  'nodes.servers.disk': 'GiB',
  'nodes.servers.macs': 'fixed MACs by node index (default: derived from cluster and node name)',
  'nodes.agents.memory': 'MiB',
  'nodes.agents.disk': 'GiB',
  'nodes.vmids.start': 'first VMID of the cluster (the template, unless flatcar.templateVmid)',
  'nodes.vmids.end': 'last VMID the cluster may use',
  'nodes.network.mode': '`dhcp` (reserve the MACs in your DHCP server) or `static`',
  'nodes.network.firstAddress': 'static: servers first, then agents, counting up',
  'nodes.vip': 'control-plane virtual IP (kube-vip); required with more than one server',
  'nodes.sshKeys': 'public keys for the `core` user',
  'nodes.sshPrivateKeyFile': 'key to reach the nodes (default: ssh-agent, then ~/.ssh/id_ed25519, id_rsa)',
  'nodes.fullClone': 'full instead of linked clones',
  'apps.mode':
    '`local`: infra-apps runs from this machine. `operator`: the Pulumi Kubernetes Operator runs it from a Stack in the cluster and keeps it applied (see docs/apps.md)',
  'apps.source.git.url': "operator mode: run this repository's Pulumi program instead of the generated Program",
  'apps.source.git.dir': 'directory of the Pulumi project in the repository',
  'apps.backend.url': 'operator mode: Pulumi state backend of the in-cluster Stack; default a PVC mounted at /state (`file:///state`)',
  'apps.backend.storageClass': 'StorageClass of the state PVC (default: the cluster default, k3s local-path)',
  'apps.backend.size': 'size of the state PVC',
  'nodes.placement':
    '`spread`: servers on distinct hosts, agents balanced (fewer hosts than servers: a warning); `pack`: all on the first host; `{node: host}` pins nodes. On local disk storage each host with VMs gets its own template',
};

function typeOf(j: J): string {
  if (j.enum) return j.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (j.anyOf) return j.anyOf.map(typeOf).join(' or ');
  if (j.type === 'array') return `list of ${j.items ? typeOf(j.items) : 'any'}`;
  if (j.type === 'object' && j.additionalProperties && typeof j.additionalProperties === 'object')
    return `map of ${typeOf(j.additionalProperties)}`;
  const t = Array.isArray(j.type) ? j.type.join('/') : (j.type ?? 'any');
  const range = j.minimum !== undefined || j.maximum !== undefined ? ` (${j.minimum ?? ''}–${j.maximum ?? ''})` : '';
  return `${t === 'integer' ? 'whole number' : t}${j.format === 'uri' ? ' (URL)' : ''}${range}`;
}

const fmtDefault = (v: unknown): string => (v === undefined ? '' : `\`${JSON.stringify(v)}\``);

export function referenceRows(): string[] {
  const root = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as J;
  const rows: string[] = [];
  const walk = (j: J, path: string, required: boolean) => {
    const obj = j.anyOf?.find((a) => a.type === 'object' && a.properties);
    if (j.type === 'object' && j.properties) {
      for (const [k, v] of Object.entries(j.properties)) walk(v, path ? `${path}.${k}` : k, (j.required ?? []).includes(k));
      return;
    }
    if (obj && j.anyOf!.some((a) => a.type === 'boolean')) {
      rows.push(
        `| \`${path}\` | \`true\`/\`false\` or a map of the keys below | ${fmtDefault(j.default)} | app toggle; \`true\` = defaults below |`,
      );
      for (const [k, v] of Object.entries(obj.properties!)) walk(v, `${path}.${k}`, false);
      return;
    }
    if (j.type === 'array' && j.items?.type === 'object' && j.items.properties) {
      rows.push(`| \`${path}\` | list of maps | ${fmtDefault(j.default)} | ${NOTES[path] ?? ''} |`);
      for (const [k, v] of Object.entries(j.items.properties)) walk(v, `${path}[].${k}`, (j.items.required ?? []).includes(k));
      return;
    }
    const req = required && j.default === undefined ? '**required** ' : '';
    rows.push(`| \`${path}\` | ${typeOf(j)} | ${req}${fmtDefault(j.default)} | ${NOTES[path] ?? ''} |`);
  };
  walk(root, '', true);
  return ['| Key | Type | Default | Notes |', '| --- | --- | --- | --- |', ...rows];
}

const START = '<!-- config-reference:start (npm run docs:config) -->';
const END = '<!-- config-reference:end -->';

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('config-reference.ts')) {
  const table = referenceRows().join('\n');
  if (process.argv.includes('--print')) console.log(table);
  else {
    const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs/config.md');
    const text = readFileSync(readme, 'utf8');
    const a = text.indexOf(START);
    const b = text.indexOf(END);
    if (a < 0 || b < a) throw new Error(`docs/config.md lacks the markers ${START} … ${END}`);
    writeFileSync(readme, `${text.slice(0, a + START.length)}\n${table}\n${text.slice(b)}`);
    console.log(`docs/config.md: config reference updated (${table.split('\n').length - 2} keys)`);
  }
}
