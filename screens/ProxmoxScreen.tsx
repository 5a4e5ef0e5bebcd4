/**
 * Proxmox connection: URL and credentials (token or user/password; secrets masked), a live test
 * through the injected gateway, the certificate fingerprint to trust, then the PVE nodes, storages
 * (free space, content types, a missing import/snippets pointed out) and bridge to use.
 * Errors are shown inline with their fix; nothing typed is lost.
 */
import { useEffect, useReducer, useRef } from 'react';
import { Box, Text, useInput } from 'ink';
import Spinner from 'ink-spinner';
import type { ProxmoxGateway } from '../src/ui/types.js';
import type { ConnectionFacts, Plain } from '../src/ui/state.js';
import type { PveBridge, PveNodeInfo, PveStorageInfo, PveVmResource } from '../src/proxmox/types.js';
import { ProxmoxSchema } from '../src/config/schema.js';
import { useTheme } from '../src/ui/theme.js';
import { TextField } from '../src/ui/components/TextField.js';
import { SelectList } from '../src/ui/components/SelectList.js';
import { CheckList } from '../src/ui/components/CheckList.js';
import { Footer, type KeyHelp } from '../src/ui/components/Footer.js';
import { formatBytes } from '../src/ui/format.js';

export interface ProxmoxValues {
  url: string;
  tokenId: string;
  tokenSecret: string;
  username: string;
  password: string;
}

export interface ProxmoxInitial extends Partial<ProxmoxValues> {
  fingerprint?: string;
  nodes?: string[];
  storage?: { disks?: string; images?: string; snippets?: string };
  bridge?: string;
}

export type ProxmoxResult = { back: true; proxmox: Plain } | { back: false; proxmox: Plain; facts: ConnectionFacts };

export interface ProxmoxScreenProps {
  initial: ProxmoxInitial;
  /** Field → environment variable it was read from. */
  sources?: Partial<Record<keyof ProxmoxValues, string>>;
  gateway: ProxmoxGateway;
  notice?: string;
  onSubmit: (r: ProxmoxResult) => void;
}

const FIELDS: Array<{ key: keyof ProxmoxValues; label: string; mask?: boolean; placeholder: string; hint: string }> = [
  { key: 'url', label: 'URL', placeholder: 'https://pve.lan:8006', hint: 'The address of the Proxmox web UI (port 8006).' },
  {
    key: 'tokenId',
    label: 'Token ID',
    placeholder: 'root@pam!flatcar',
    hint: 'Datacenter → Permissions → API Tokens; leave empty to use a password.',
  },
  {
    key: 'tokenSecret',
    label: 'Token secret',
    mask: true,
    placeholder: '(UUID shown once at creation)',
    hint: 'Kept in memory; saved only to a 0600 file.',
  },
  { key: 'username', label: 'User', placeholder: 'root@pam', hint: 'Instead of a token: user@realm and password.' },
  { key: 'password', label: 'Password', mask: true, placeholder: '', hint: 'Kept in memory; saved only to a 0600 file.' },
];

type Phase = 'form' | 'probing' | 'trust' | 'connecting' | 'nodes' | 'disks' | 'images' | 'snippets' | 'bridge';
const PICKS: Phase[] = ['nodes', 'disks', 'images', 'snippets', 'bridge'];

interface Loaded {
  version?: string;
  nodes: PveNodeInfo[];
  storages: PveStorageInfo[];
  bridges: PveBridge[];
  templates: PveVmResource[];
}

interface S {
  phase: Phase;
  focus: number;
  values: ProxmoxValues;
  errors: Partial<Record<keyof ProxmoxValues, string>>;
  failure?: { message: string; fix?: string };
  fingerprint?: string;
  loaded?: Loaded;
  nodes: string[];
  storage: { disks?: string; images?: string; snippets?: string };
  bridge?: string;
  highlighted?: string;
}

type A =
  | { type: 'focus'; by: number }
  | { type: 'edit'; key: keyof ProxmoxValues; f: (v: string) => string }
  | { type: 'set'; patch: Partial<S> };

function reduce(s: S, a: A): S {
  switch (a.type) {
    case 'focus':
      return { ...s, focus: (s.focus + a.by + FIELDS.length) % FIELDS.length };
    case 'edit': {
      const errors = { ...s.errors };
      delete errors[a.key];
      return { ...s, values: { ...s.values, [a.key]: a.f(s.values[a.key]) }, errors, failure: undefined };
    }
    case 'set':
      return { ...s, ...a.patch };
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Field errors for the connection form (the schema's own messages, plus the credential pairs). */
export function validateConnection(v: ProxmoxValues): Partial<Record<keyof ProxmoxValues, string>> {
  const errors: Partial<Record<keyof ProxmoxValues, string>> = {};
  const url = v.url.trim().replace(/\/+$/, '');
  const shape = ProxmoxSchema.shape;
  const r = shape.url.safeParse(url);
  if (!url) errors.url = 'is required: the Proxmox URL, e.g. https://pve.lan:8006';
  else if (!r.success) errors.url = r.error.issues[0]!.message;
  if (v.tokenId || v.tokenSecret) {
    const t = shape.tokenId.safeParse(v.tokenId.trim());
    if (!v.tokenId.trim()) errors.tokenId = 'is missing: a token secret was given without its token id (user@realm!name)';
    else if (!t.success) errors.tokenId = t.error.issues[0]!.message;
    if (!v.tokenSecret) errors.tokenSecret = 'is missing: paste the secret Proxmox showed when the token was created';
    else if (!UUID.test(v.tokenSecret.trim()))
      errors.tokenSecret = 'is not a Proxmox token secret: expected a lower-case UUID (xxxxxxxx-xxxx-…)';
  } else if (v.username || v.password) {
    const u = shape.username.safeParse(v.username.trim());
    if (!u.success) errors.username = u.error.issues[0]!.message;
    if (!v.password) errors.password = `is missing for ${v.username || 'the user'}`;
  } else {
    errors.tokenId = 'no credentials: give an API token (id and secret) or a user and password';
  }
  return errors;
}

function describeError(err: unknown): { message: string; fix?: string } {
  const e = err as { message?: string; fix?: string };
  return { message: e?.message ?? String(err), fix: e?.fix };
}

const FILE_STORAGE = new Set(['dir', 'nfs', 'cifs', 'cephfs', 'glusterfs', 'btrfs']);

function storageHint(s: PveStorageInfo, need: string): string {
  const free = s.avail !== undefined ? `${formatBytes(s.avail)} free` : 'free space unknown';
  const miss = s.content.includes(need) ? '' : `  ⚠ no "${need}"`;
  return `— ${s.type}, ${free}, [${s.content.join(',')}]${s.shared ? ', shared' : ''}${s.active ? '' : ', inactive'}${miss}`;
}

/** The fix for a storage that lacks a content type (shown under the list for the highlighted one). */
export function missingContentFix(s: PveStorageInfo, need: string): string | undefined {
  if (s.content.includes(need)) return undefined;
  if (need !== 'images' && !FILE_STORAGE.has(s.type))
    return `${s.storage} (${s.type}) cannot hold "${need}" content: choose a directory-type storage (dir, NFS, CIFS, CephFS).`;
  return `${s.storage} has no "${need}" content. Enable it: pvesm set ${s.storage} --content ${[...s.content, need].join(',')} (or Datacenter → Storage → ${s.storage} → Content).`;
}

interface ViewArgs {
  s: S;
  t: ReturnType<typeof useTheme>;
  sources: Record<string, string>;
  initial: ProxmoxInitial;
  dispatch: (a: A) => void;
  set: (patch: Partial<S>) => void;
  test: () => void;
  finish: (bridge: string) => void;
  url: () => string;
}

function formView({ s, t, sources, dispatch, test, url }: ViewArgs): { body: React.ReactNode; keys: KeyHelp } {
  const keys: KeyHelp = [
    ['Tab/↓↑', 'field'],
    ['Enter', 'test connection'],
    ['Esc', 'back'],
  ];
  const body = (
    <Box flexDirection="column">
      {FIELDS.map((f, i) => (
        <TextField
          key={f.key}
          label={f.label}
          value={s.values[f.key]}
          mask={f.mask ? '•' : undefined}
          placeholder={f.placeholder}
          focus={s.phase === 'form' && s.focus === i}
          error={s.errors[f.key]}
          hint={sources[f.key] ? `${f.hint} (from ${sources[f.key]})` : f.hint}
          onChange={(fn) => dispatch({ type: 'edit', key: f.key, f: fn })}
          onSubmit={test}
        />
      ))}
      {s.phase !== 'form' ? (
        <Text color={t.accent}>
          <Spinner />{' '}
          {s.phase === 'probing' ? `Reading the certificate of ${url()}…` : 'Connecting and reading nodes, storages and bridges…'}
        </Text>
      ) : null}
      {s.failure ? (
        <Box flexDirection="column" marginTop={1}>
          <Text color={t.error} wrap="wrap">
            ✗ {s.failure.message}
          </Text>
          {s.failure.fix ? <Text wrap="wrap">Fix: {s.failure.fix}</Text> : null}
        </Box>
      ) : null}
    </Box>
  );
  return { body, keys };
}

function trustView({ s, t, initial }: ViewArgs): { body: React.ReactNode; keys: KeyHelp } {
  const keys: KeyHelp = [
    ['y', 'trust and connect'],
    ['n', 'do not trust'],
    ['Esc', 'back'],
  ];
  const mismatch = initial.fingerprint && initial.fingerprint.toUpperCase() !== s.fingerprint?.toUpperCase();
  const body = (
    <Box flexDirection="column">
      {mismatch ? (
        <Text color={t.error} wrap="wrap">
          ⚠ This is NOT the fingerprint recorded before ({initial.fingerprint}). The certificate changed, or someone is in between.
        </Text>
      ) : null}
      <Text>The server presented a certificate with the SHA-256 fingerprint:</Text>
      <Text bold color={t.warn} wrap="wrap">
        {s.fingerprint}
      </Text>
      <Text wrap="wrap">
        Compare it with Datacenter → Certificates in the Proxmox web UI (or `pvenode cert info` on the host). Trust it? It is pinned: a
        different certificate later is refused.
      </Text>
    </Box>
  );
  return { body, keys };
}

function nodesView({ s, t, set }: ViewArgs): { body: React.ReactNode; keys: KeyHelp } {
  const l = s.loaded;
  const keys: KeyHelp = [
    ['Space', 'toggle'],
    ['Enter', 'next'],
    ['Esc', 'back'],
  ];
  const body = (
    <Box flexDirection="column">
      <Text>PVE nodes to place VMs on (the first builds the template):</Text>
      <CheckList
        items={l!.nodes.map((n) => ({
          key: n.node,
          label: n.node,
          disabled: n.status !== 'online',
          hint: `— ${n.status}${n.maxcpu ? `, ${n.maxcpu} CPUs` : ''}${n.maxmem ? `, ${formatBytes(n.maxmem)} RAM` : ''}`,
        }))}
        initial={s.nodes}
        onToggle={(nodes) => set({ nodes })}
        onSubmit={(nodes) => (nodes.length ? set({ nodes, phase: 'disks' }) : undefined)}
      />
      {s.nodes.length === 0 ? <Text color={t.error}>✗ choose at least one node</Text> : null}
    </Box>
  );
  return { body, keys };
}

function bridgeView({ s, t, finish }: ViewArgs): { body: React.ReactNode; keys: KeyHelp } {
  const l = s.loaded;
  const keys: KeyHelp = [
    ['↑↓', 'move'],
    ['Enter', 'choose'],
    ['Esc', 'back'],
  ];
  const body = (
    <Box flexDirection="column">
      <Text>Network bridge for the VMs:</Text>
      {l!.bridges.length ? (
        <SelectList
          key="bridge"
          items={l!.bridges.map((b) => ({
            label: b.iface,
            value: b.iface,
            hint: `— ${b.type}${b.cidr ? `, ${b.cidr}` : ''}${b.comments ? `, ${b.comments}` : ''}${b.active === false ? ', inactive' : ''}`,
          }))}
          initialIndex={Math.max(
            0,
            l!.bridges.findIndex((b) => b.iface === s.bridge),
          )}
          onSelect={finish}
        />
      ) : (
        <Text color={t.error} wrap="wrap">
          ✗ No Linux bridge on this node. Fix: create one (System → Network → Create → Linux Bridge, e.g. vmbr0) and test again.
        </Text>
      )}
    </Box>
  );
  return { body, keys };
}

function storageView({ s, t, set }: ViewArgs, phase: Phase): { body: React.ReactNode; keys: KeyHelp } {
  const l = s.loaded;
  const which = phase as 'disks' | 'images' | 'snippets';
  const need = which === 'disks' ? 'images' : which === 'images' ? 'import' : 'snippets';
  const title =
    which === 'disks'
      ? 'Storage for VM disks (needs "images" content):'
      : which === 'images'
        ? 'Storage for the Flatcar image download (needs "import" content, PVE ≥ 8.4):'
        : 'Storage for Ignition snippets (needs "snippets" content, a directory storage):';
  const usable = l!.storages.filter((x) => x.enabled !== false && (need === 'images' || FILE_STORAGE.has(x.type)));
  const items = usable.map((x) => ({ label: x.storage, value: x.storage, hint: storageHint(x, need) }));
  const hl = usable.find((x) => x.storage === s.highlighted);
  const fix = hl ? missingContentFix(hl, need) : undefined;
  const keys: KeyHelp = [
    ['↑↓', 'move'],
    ['Enter', 'choose'],
    ['Esc', 'back'],
  ];
  const body = (
    <Box flexDirection="column">
      <Text>{title}</Text>
      <SelectList
        key={which}
        items={items}
        initialIndex={Math.max(
          0,
          items.findIndex((x) => x.value === s.storage[which]),
        )}
        onHighlight={(v) => set({ highlighted: v })}
        onSelect={(v) => set({ storage: { ...s.storage, [which]: v }, phase: PICKS[PICKS.indexOf(which) + 1]! })}
      />
      {fix ? (
        <Text color={t.warn} wrap="wrap">
          ⚠ {fix}
        </Text>
      ) : null}
    </Box>
  );
  return { body, keys };
}

/** Connect with the trusted fingerprint and read what the next pickers offer. */
async function loadFacts(gateway: ProxmoxGateway, o: Parameters<ProxmoxGateway['connect']>[0]): Promise<Loaded> {
  const client = await gateway.connect(o);
  const [version, nodes, templates] = await Promise.all([client.version(), client.nodes(), client.vms()]);
  const online = nodes.filter((n) => n.status === 'online');
  const host = online[0]?.node;
  if (!host)
    throw Object.assign(new Error('No Proxmox node is online'), {
      fix: 'Start a PVE node (or check the cluster status under Datacenter → Summary) and test again.',
    });
  const [storages, bridges] = await Promise.all([client.storages(host), client.bridges(host)]);
  return { version: version.version, nodes, storages, bridges, templates: templates.filter((v) => v.template) };
}

/** The pickers' starting choices: earlier ones that still exist, else sensible defaults. */
function choicesFor(loaded: Loaded, s: S): Partial<S> {
  const online = loaded.nodes.filter((n) => n.status === 'online').map((n) => n.node);
  const keep = s.nodes.filter((n) => online.includes(n));
  const pick = (cur: string | undefined, content: string, fallback: string) =>
    cur && loaded.storages.some((x) => x.storage === cur)
      ? cur
      : ((
          loaded.storages.find((x) => x.storage === fallback && x.content.includes(content)) ??
          loaded.storages.find((x) => x.content.includes(content))
        )?.storage ?? fallback);
  return {
    loaded,
    phase: online.length > 1 ? 'nodes' : 'disks',
    nodes: keep.length ? keep : online,
    storage: {
      disks: pick(s.storage.disks, 'images', 'local-lvm'),
      images: pick(s.storage.images, 'import', 'local'),
      snippets: pick(s.storage.snippets, 'snippets', 'local'),
    },
    bridge: s.bridge && loaded.bridges.some((b) => b.iface === s.bridge) ? s.bridge : (loaded.bridges[0]?.iface ?? s.bridge),
  };
}

export function ProxmoxScreen({ initial, sources = {}, gateway, notice, onSubmit }: ProxmoxScreenProps) {
  const t = useTheme();
  const [s, dispatch] = useReducer(reduce, undefined, () => ({
    phase: 'form' as Phase,
    focus: 0,
    values: {
      url: initial.url ?? '',
      tokenId: initial.tokenId ?? '',
      tokenSecret: initial.tokenSecret ?? '',
      username: initial.username ?? '',
      password: initial.password ?? '',
    },
    errors: {},
    nodes: initial.nodes ?? [],
    storage: { ...initial.storage },
    bridge: initial.bridge,
  }));
  const busy = useRef(0);
  const set = (patch: Partial<S>) => dispatch({ type: 'set', patch });

  const credentials = (v: ProxmoxValues) => {
    const token = Boolean(v.tokenId || v.tokenSecret);
    return {
      url: v.url.trim().replace(/\/+$/, ''),
      tokenId: token ? v.tokenId.trim() : undefined,
      tokenSecret: token ? v.tokenSecret.trim() : undefined,
      username: token ? undefined : v.username.trim() || undefined,
      password: token ? undefined : v.password || undefined,
    };
  };
  const draftPatch = (extra: Plain = {}): Plain => ({
    ...credentials(s.values),
    ...(s.fingerprint ? { fingerprint: s.fingerprint } : {}),
    ...extra,
  });

  const test = () => {
    const errors = validateConnection(s.values);
    if (Object.keys(errors).length) {
      const first = FIELDS.findIndex((f) => errors[f.key]);
      return set({ errors, focus: first >= 0 ? first : s.focus });
    }
    const id = ++busy.current;
    set({ phase: 'probing', failure: undefined });
    gateway.probeFingerprint(credentials(s.values).url).then(
      (fp) => {
        if (busy.current !== id) return;
        if (initial.fingerprint && initial.fingerprint.toUpperCase() === fp.toUpperCase()) connect(fp);
        else set({ phase: 'trust', fingerprint: fp });
      },
      (err) => busy.current === id && set({ phase: 'form', failure: describeError(err) }),
    );
  };

  const connect = (fingerprint: string) => {
    const id = ++busy.current;
    set({ phase: 'connecting', fingerprint });
    loadFacts(gateway, { ...credentials(s.values), fingerprint }).then(
      (loaded) => {
        if (busy.current !== id) return;
        set(choicesFor(loaded, s));
      },
      (err) => busy.current === id && set({ phase: 'form', failure: describeError(err) }),
    );
  };

  const finish = (bridge: string) => {
    const l = s.loaded!;
    const online = l.nodes.filter((n) => n.status === 'online').map((n) => n.node);
    const nodes = online.filter((n) => s.nodes.includes(n));
    onSubmit({
      back: false,
      proxmox: draftPatch({ nodes, storage: { ...s.storage }, bridge }),
      facts: { pveVersion: l.version, pveNodes: nodes.length ? nodes : online, storages: l.storages, templates: l.templates },
    });
  };

  useInput((input, key) => {
    if (key.escape) {
      busy.current++;
      if (s.phase === 'form') return onSubmit({ back: true, proxmox: draftPatch() });
      const i = PICKS.indexOf(s.phase);
      if (i > 0 && !(i === 1 && (s.loaded?.nodes.filter((n) => n.status === 'online').length ?? 0) <= 1))
        return set({ phase: PICKS[i - 1]! });
      return set({ phase: 'form' });
    }
    if (s.phase === 'form') {
      if (key.tab && key.shift) dispatch({ type: 'focus', by: -1 });
      else if (key.tab || key.downArrow) dispatch({ type: 'focus', by: 1 });
      else if (key.upArrow) dispatch({ type: 'focus', by: -1 });
    } else if (s.phase === 'trust') {
      if (input === 'y' || input === 'Y') connect(s.fingerprint!);
      else if (input === 'n' || input === 'N')
        set({
          phase: 'form',
          failure: {
            message: 'The certificate was not trusted; nothing was sent to the server.',
            fix: 'Check the fingerprint under Datacenter → Certificates (or `pvenode cert info`) and test again.',
          },
        });
    }
  });

  const l = s.loaded;
  const v: ViewArgs = { s, t, sources, initial, dispatch, set, test, finish, url: () => credentials(s.values).url };
  const { body, keys } =
    s.phase === 'form' || s.phase === 'probing' || s.phase === 'connecting'
      ? formView(v)
      : s.phase === 'trust'
        ? trustView(v)
        : s.phase === 'nodes'
          ? nodesView(v)
          : s.phase === 'bridge'
            ? bridgeView(v)
            : storageView(v, s.phase);
  return (
    <Box flexDirection="column">
      <Text bold>Proxmox connection{l?.version ? <Text color={t.muted}> — Proxmox VE {l.version}</Text> : null}</Text>
      {notice ? (
        <Text color={t.warn} wrap="wrap">
          {notice}
        </Text>
      ) : null}
      <Box marginY={1} flexDirection="column">
        {body}
      </Box>
      <Footer keys={keys} />
    </Box>
  );
}
