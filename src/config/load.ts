/**
 * Loading a cluster config: YAML file → preset merged under it → environment fills secrets →
 * schema (zod) → cross-field checks. Every problem is reported at once as a ConfigError.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigSchema, SECRET_PATHS, type Config } from './schema.js';
import { ConfigError, UserError, type ConfigIssue } from '../errors.js';
import { presetsDir } from '../paths.js';
import { inSubnet, ipToInt, parseCidr } from './net.js';
import { nodeVmids, planNodes, templateVmid } from './layout.js';
import { kuredRebootIssues, operatorModeIssues } from './apps.js';

type Plain = Record<string, unknown>;

const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: objects merge key by key, arrays and scalars from `over` replace `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over === undefined ? base : over;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

export function listPresets(): string[] {
  return readdirSync(presetsDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => basename(f, '.yaml'))
    .sort();
}

export function readPreset(name: string): Plain {
  const file = join(presetsDir(), `${name}.yaml`);
  if (!/^[a-z0-9-]+$/.test(name) || !existsSync(file)) {
    throw new ConfigError([
      {
        path: 'preset',
        message: 'is not a known preset',
        given: name,
        expected: `one of ${listPresets().join(', ')}`,
        example: 'preset: homelab',
      },
    ]);
  }
  const doc = parseYaml(readFileSync(file, 'utf8')) as unknown;
  if (!isPlain(doc)) throw new Error(`preset ${name} is not a YAML mapping`);
  return doc;
}

export function parseYamlText(text: string, source: string): Plain {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw new UserError(
        `${source}: not valid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${err.message.split('\n')[0]}`,
        {
          fix: 'Fix the YAML syntax (indentation with spaces, "key: value" pairs) and run again.',
        },
      );
    }
    throw yamlValueError(err, source);
  }
  if (doc == null) doc = {};
  if (!isPlain(doc))
    throw new UserError(`${source}: the config must be a YAML mapping of keys to values`, {
      fix: 'Start the file with keys such as "preset: homelab" and "proxmox:".',
    });
  return doc;
}

/**
 * The YAML library fails while turning a parsed document into values on aliases: an alias bomb (aliases of
 * aliases that expand to millions of nodes), an alias without its anchor, or nesting too deep for the stack.
 * These are faults of the file, not of the program.
 */
function yamlValueError(err: unknown, source: string): UserError {
  const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  if (/Excessive alias count/.test(msg))
    return new UserError(
      `${source}: its YAML aliases expand to too many values (${msg}); a small file made of nested aliases is an "alias bomb"`,
      {
        fix: 'Write the values out instead of aliases of aliases (*name), and run again.',
      },
    );
  if (/Unresolved alias/.test(msg))
    return new UserError(`${source}: not valid YAML: ${msg}`, {
      fix: 'Define each anchor (&name) before the aliases (*name) that use it, or write the value out, and run again.',
    });
  if (err instanceof RangeError)
    return new UserError(`${source}: its YAML is nested too deeply to read (${msg})`, {
      fix: 'A config needs only a few levels of nesting: check the brackets and indentation.',
    });
  return new UserError(`${source}: cannot be read as YAML: ${msg}`, {
    fix: 'Fix the YAML (indentation with spaces, "key: value" pairs) and run again.',
  });
}

/** Secrets and endpoints from the environment, with the names other Proxmox tools use. */
export function configFromEnv(env: NodeJS.ProcessEnv): Plain {
  const proxmox: Plain = {};
  if (env.PROXMOX_VE_ENDPOINT) {
    let url = env.PROXMOX_VE_ENDPOINT.trim()
      .replace(/\/+$/, '')
      .replace(/\/api2\/json$/, '');
    proxmox.url = url;
  }
  if (env.PROXMOX_VE_API_TOKEN) {
    const m = /^([^=]+)=(.+)$/.exec(env.PROXMOX_VE_API_TOKEN.trim());
    if (!m) {
      throw new ConfigError([
        {
          path: 'PROXMOX_VE_API_TOKEN (environment)',
          message: 'is not "user@realm!id=secret"',
          expected: 'the token id and its secret joined by "="',
          example: 'root@pam!flatcar=0d5c…',
        },
      ]);
    }
    proxmox.tokenId = m[1];
    proxmox.tokenSecret = m[2];
  }
  if (env.PROXMOX_VE_USERNAME) proxmox.username = env.PROXMOX_VE_USERNAME;
  if (env.PROXMOX_VE_PASSWORD) proxmox.password = env.PROXMOX_VE_PASSWORD;
  if (env.PROXMOX_VE_FINGERPRINT) proxmox.fingerprint = env.PROXMOX_VE_FINGERPRINT;
  return Object.keys(proxmox).length ? { proxmox } : {};
}

/** env fills only what the file leaves unset. */
function fillFrom(target: unknown, fill: unknown): unknown {
  if (!isPlain(fill)) return target === undefined ? fill : target;
  const t: Plain = isPlain(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(fill)) t[k] = fillFrom(t[k], v);
  return t;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Name shown in errors, e.g. the file path. */
  source?: string;
  /** Overrides applied after the file (e.g. --demo's proxmox block). */
  /** Deep-merged over the preset + file document; a function gets that document first (the demo fits its overrides to the layout). */
  overrides?: Plain | ((doc: Plain) => Plain);
}

/** Validate a raw (already parsed) config document; returns the full config with defaults. */
export function resolveConfig(raw: Plain, opts: LoadOptions = {}): Config {
  let doc: unknown = raw;
  if (raw.preset !== undefined) {
    if (typeof raw.preset !== 'string')
      throw new ConfigError(
        [{ path: 'preset', message: 'must be a preset name', given: raw.preset, expected: `one of ${listPresets().join(', ')}` }],
        opts.source,
      );
    doc = deepMerge(readPreset(raw.preset), raw);
  }
  if (opts.overrides) doc = deepMerge(doc, typeof opts.overrides === 'function' ? opts.overrides(doc as Plain) : opts.overrides);
  doc = fillFrom(doc, configFromEnv(opts.env ?? process.env));
  const parsed = ConfigSchema.safeParse(doc);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error, doc);
    throw new ConfigError([...issues, ...crossChecksDespite(doc, parsed.error, issues)], opts.source);
  }
  const issues = crossChecks(parsed.data);
  if (issues.length) throw new ConfigError(issues, opts.source);
  return parsed.data;
}

export function loadConfigFile(file: string, opts: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`Cannot read the config file ${file}${code === 'ENOENT' ? ': it does not exist' : `: ${code}`}`, {
      fix: 'Pass an existing YAML file with --config FILE (see docs/config.md).',
    });
  }
  return resolveConfig(parseYamlText(text, file), { ...opts, source: opts.source ?? file });
}

/** Stand-ins for required values, so cross-field checks can still run when these are invalid. */
const PLACEHOLDERS: Record<string, unknown> = { 'cluster.name': 'placeholder', 'proxmox.url': 'https://placeholder.invalid:8006' };

/**
 * Report every problem at once: when the schema rejects some fields, drop those fields (defaults or
 * placeholders take their place) and run the cross-field checks on the rest. Issues about a field
 * already reported are left out.
 */
function crossChecksDespite(doc: unknown, error: z.ZodError, reported: ConfigIssue[]): ConfigIssue[] {
  if (!isPlain(doc)) return [];
  const repaired = structuredClone(doc) as Plain;
  for (const iss of error.issues) {
    // An invalid array element: drop the whole array (its default takes over).
    const idx = iss.path.findIndex((k) => typeof k === 'number');
    const path = (idx >= 0 ? iss.path.slice(0, idx) : iss.path).map(String);
    if (iss.code === 'unrecognized_keys' && idx < 0) {
      const parent = getPath(repaired, path);
      if (isPlain(parent)) for (const k of iss.keys) delete parent[k];
      continue;
    }
    if (path.length === 0) return [];
    const parent = getPath(repaired, path.slice(0, -1));
    if (!isPlain(parent)) continue;
    const key = path[path.length - 1]!;
    const dotted = path.join('.');
    if (dotted in PLACEHOLDERS) parent[key] = PLACEHOLDERS[dotted];
    else delete parent[key];
  }
  const again = ConfigSchema.safeParse(repaired);
  if (!again.success) return [];
  const seen = reported.map((i) => i.path);
  const related = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
  let extra: ConfigIssue[];
  try {
    extra = crossChecks(again.data);
  } catch {
    return [];
  }
  return extra.filter((i) => !seen.some((p) => related(p, i.path)));
}

function getPath(doc: unknown, path: PropertyKey[]): unknown {
  let cur = doc;
  for (const k of path) {
    if (cur == null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

export function redactValue(path: string, value: unknown): unknown {
  if ((SECRET_PATHS as readonly string[]).includes(path) && value !== undefined) return '<redacted>';
  return value;
}

function zodIssues(error: z.ZodError, doc: unknown): ConfigIssue[] {
  return error.issues.map((iss) => {
    const path = iss.path.map(String).join('.');
    const given = getPath(doc, iss.path);
    let message = iss.message;
    let expected: string | undefined;
    if (iss.code === 'unrecognized_keys') {
      message = `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
      expected = 'only the keys listed in docs/config.md';
      return { path, message, expected };
    }
    if (iss.code === 'invalid_type' && given === undefined)
      message = message.startsWith('is required') ? message : `is required (${message})`;
    else if (iss.code === 'invalid_type') message = `has the wrong type: ${message}`;
    else if (iss.code === 'too_small' || iss.code === 'too_big') message = `is out of range: ${message}`;
    return { path, message, given: given === undefined ? undefined : redactValue(path, given), expected };
  });
}

/** Checks that span several fields. */
export function crossChecks(c: Config): ConfigIssue[] {
  const total = c.nodes.servers.count + c.nodes.agents.count;
  return [
    ...credentialIssues(c),
    ...layoutIssues(c, total),
    ...staticNetworkIssues(c, total),
    ...placementAndMacIssues(c, total),
    ...kuredRebootIssues(c),
    ...operatorModeIssues(c.apps),
  ];
}

/** The Proxmox credentials: a token with its secret, or a user with a password. */
function credentialIssues(c: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const p = c.proxmox;
  if (p.tokenId && !p.tokenSecret)
    issues.push({
      path: 'proxmox.tokenSecret',
      message: 'is missing for the API token ' + p.tokenId,
      expected: 'the token secret (a UUID)',
      example: 'set proxmox.tokenSecret or PROXMOX_VE_API_TOKEN="user@realm!id=secret"',
    });
  if (p.tokenSecret && !p.tokenId)
    issues.push({
      path: 'proxmox.tokenId',
      message: 'is missing: a token secret was given without its token id',
      example: 'tokenId: root@pam!flatcar',
    });
  if (p.username && !p.password)
    issues.push({
      path: 'proxmox.password',
      message: `is missing for ${p.username}`,
      example: 'set PROXMOX_VE_PASSWORD in the environment',
    });
  if (!p.tokenId && !p.username)
    issues.push({
      path: 'proxmox.tokenId',
      message: 'no credentials: give an API token (tokenId + tokenSecret) or username + password',
      example: 'PROXMOX_VE_API_TOKEN="root@pam!flatcar=<secret>"',
    });
  if (p.tokenSecret && p.tokenId && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(p.tokenSecret))
    issues.push({
      path: 'proxmox.tokenSecret',
      message: 'is not a Proxmox token secret',
      given: '<redacted>',
      expected: 'a lower-case UUID as Proxmox shows it once when the token is created',
      example: '0d5c7a4e-…',
    });
  return issues;
}

/** Server count, the VIP it needs, the VMID range. */
function layoutIssues(c: Config, total: number): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const servers = c.nodes.servers.count;
  if (servers < 1)
    issues.push({
      path: 'nodes.servers.count',
      message: 'must be at least 1',
      given: servers,
      expected: '1 for a single server, or 3, 5 or 7 for HA',
    });
  if (servers > 1 && servers % 2 === 0)
    issues.push({
      path: 'nodes.servers.count',
      message: 'an even number of servers cannot keep etcd quorum better than one fewer',
      given: servers,
      expected: 'an odd number (1, 3, 5, 7)',
      example: `servers: { count: ${servers + 1} }`,
    });
  if (servers > 1 && !c.nodes.vip)
    issues.push({
      path: 'nodes.vip',
      message: `is required with ${servers} servers: agents and the kubeconfig need one stable address for the control plane`,
      expected: 'a free IPv4 address on the node network',
      example: 'vip: 192.168.1.40',
    });

  const ids = nodeVmids(c);
  if (c.nodes.vmids.end < c.nodes.vmids.start)
    issues.push({ path: 'nodes.vmids', message: 'end is below start', given: c.nodes.vmids, example: 'vmids: { start: 9000, end: 9099 }' });
  else if (ids.length < total)
    issues.push({
      path: 'nodes.vmids',
      message: `has room for ${ids.length} node VMs but the layout has ${total}`,
      given: c.nodes.vmids,
      expected: `a range of at least ${total + 1} ids (template + nodes)`,
    });
  const t = templateVmid(c);
  if (c.flatcar.templateVmid !== undefined && t >= c.nodes.vmids.start && t <= c.nodes.vmids.end && t !== c.nodes.vmids.start)
    issues.push({
      path: 'flatcar.templateVmid',
      message: 'overlaps the node VMID range',
      given: t,
      expected: `an id outside ${c.nodes.vmids.start}-${c.nodes.vmids.end}, or equal to its start`,
    });
  return issues;
}

/** Static addressing: subnet, gateway, node range and VIP agree. */
function staticNetworkIssues(c: Config, total: number): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const net = c.nodes.network;
  if (net.mode === 'static') {
    for (const k of ['cidr', 'gateway', 'firstAddress'] as const)
      if (!net[k])
        issues.push({
          path: `nodes.network.${k}`,
          message: 'is required when nodes.network.mode is static',
          example: k === 'cidr' ? 'cidr: 192.168.1.0/24' : k === 'gateway' ? 'gateway: 192.168.1.1' : 'firstAddress: 192.168.1.50',
        });
    if (net.cidr && net.gateway && net.firstAddress) {
      const sub = parseCidr(net.cidr);
      if (!inSubnet(net.gateway, sub))
        issues.push({ path: 'nodes.network.gateway', message: `is outside ${net.cidr}`, given: net.gateway });
      if (!inSubnet(net.firstAddress, sub))
        issues.push({ path: 'nodes.network.firstAddress', message: `is outside ${net.cidr}`, given: net.firstAddress });
      else {
        const first = ipToInt(net.firstAddress);
        const last = first + total - 1;
        if (last > sub.last)
          issues.push({
            path: 'nodes.network.firstAddress',
            message: `${total} nodes from ${net.firstAddress} run past the end of ${net.cidr}`,
            given: net.firstAddress,
            expected: 'a first address with room for every node',
          });
        const gw = ipToInt(net.gateway);
        if (gw >= first && gw <= last)
          issues.push({
            path: 'nodes.network.gateway',
            message: 'falls inside the range of node addresses',
            given: net.gateway,
            expected: `an address outside the ${total} addresses from ${net.firstAddress}`,
          });
        if (c.nodes.vip) {
          const vip = ipToInt(c.nodes.vip);
          if (vip >= first && vip <= last)
            issues.push({
              path: 'nodes.vip',
              message: `falls inside the node addresses (${net.firstAddress} + ${total})`,
              given: c.nodes.vip,
              expected: 'a free address outside the node range',
              example: 'the address just below firstAddress',
            });
          if (!inSubnet(c.nodes.vip, sub))
            issues.push({ path: 'nodes.vip', message: `is outside the node network ${net.cidr}`, given: c.nodes.vip });
          if (vip === gw) issues.push({ path: 'nodes.vip', message: 'is the gateway address', given: c.nodes.vip });
        }
      }
    }
  }
  return issues;
}

/** Explicit placement names real nodes; MACs fit their nodes; Piraeus has nodes for its replicas. */
function placementAndMacIssues(c: Config, total: number): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (typeof c.nodes.placement === 'object') {
    const names = new Set(planNodes(c).map((n) => n.name));
    for (const name of Object.keys(c.nodes.placement)) {
      if (!names.has(name))
        issues.push({
          path: `nodes.placement.${name}`,
          message: 'is not a node of this layout',
          given: name,
          expected: [...names].join(', '),
        });
    }
  }
  for (const role of ['servers', 'agents'] as const) {
    const macs = c.nodes[role].macs;
    if (macs.length > c.nodes[role].count)
      issues.push({
        path: `nodes.${role}.macs`,
        message: `lists ${macs.length} MACs for ${c.nodes[role].count} nodes`,
        expected: 'at most one MAC per node',
      });
    const dup = macs.find((m, i) => macs.findIndex((x) => x.toLowerCase() === m.toLowerCase()) !== i);
    if (dup) issues.push({ path: `nodes.${role}.macs`, message: 'has a duplicate MAC', given: dup });
  }
  if (c.apps.piraeus.enabled && total < c.apps.piraeus.replicas)
    issues.push({
      path: 'apps.piraeus.replicas',
      message: `needs at least ${c.apps.piraeus.replicas} nodes for ${c.apps.piraeus.replicas} replicas; the layout has ${total}`,
      given: c.apps.piraeus.replicas,
      expected: `at most ${total}`,
    });
  return issues;
}
