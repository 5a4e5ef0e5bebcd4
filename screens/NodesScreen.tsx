/**
 * Node layout: server and agent counts and sizes, addressing (DHCP or a static range, the VIP for
 * HA), VMIDs, validated as you type by the config schema and crossChecks, with a placement preview
 * across the PVE nodes (planNodes/placeNodes).
 */
import { useMemo, useReducer } from 'react';
import { Box, Text, useInput, useWindowSize } from 'ink';
import type { Plain } from '../src/ui/state.js';
import { draftGet, mergeDraft } from '../src/ui/state.js';
import { checkDraft, withPreset } from '../src/ui/validate.js';
import { planNodes } from '../src/config/layout.js';
import { decidePlacement } from '../src/config/placement.js';
import { NodesSchema } from '../src/config/schema.js';
import { useTheme } from '../src/ui/theme.js';
import { TextField } from '../src/ui/components/TextField.js';
import { Footer } from '../src/ui/components/Footer.js';

/** `patch` holds `nodes` and `cluster.name`, to merge into the draft. */
export type NodesResult = { back: boolean; patch: Plain };

export interface NodesScreenProps {
  /** The whole draft so far (preset, proxmox…): the layout is validated in its context. */
  draft: Plain;
  /** PVE nodes VMs are placed on (from the connection). */
  pveNodes: string[];
  onSubmit: (r: NodesResult) => void;
}

interface FieldDef {
  key: string;
  /** Config path (dotted). */
  path: string;
  label: string;
  numeric?: boolean;
  width: number;
  row: number;
  staticOnly?: boolean;
}

const FIELDS: FieldDef[] = [
  { key: 'name', path: 'cluster.name', label: 'name', width: 24, row: 0 },
  { key: 'sc', path: 'nodes.servers.count', label: 'count', numeric: true, width: 3, row: 1 },
  { key: 'sp', path: 'nodes.servers.cores', label: 'cores', numeric: true, width: 3, row: 1 },
  { key: 'sm', path: 'nodes.servers.memory', label: 'MiB', numeric: true, width: 6, row: 1 },
  { key: 'sd', path: 'nodes.servers.disk', label: 'GiB', numeric: true, width: 4, row: 1 },
  { key: 'ac', path: 'nodes.agents.count', label: 'count', numeric: true, width: 3, row: 2 },
  { key: 'ap', path: 'nodes.agents.cores', label: 'cores', numeric: true, width: 3, row: 2 },
  { key: 'am', path: 'nodes.agents.memory', label: 'MiB', numeric: true, width: 6, row: 2 },
  { key: 'ad', path: 'nodes.agents.disk', label: 'GiB', numeric: true, width: 4, row: 2 },
  { key: 'mode', path: 'nodes.network.mode', label: 'mode', width: 12, row: 3 },
  { key: 'vip', path: 'nodes.vip', label: 'VIP', width: 15, row: 3 },
  { key: 'cidr', path: 'nodes.network.cidr', label: 'CIDR', width: 18, row: 4, staticOnly: true },
  { key: 'gw', path: 'nodes.network.gateway', label: 'gateway', width: 15, row: 4, staticOnly: true },
  { key: 'first', path: 'nodes.network.firstAddress', label: 'first', width: 15, row: 4, staticOnly: true },
  { key: 'vs', path: 'nodes.vmids.start', label: 'start', numeric: true, width: 9, row: 5 },
  { key: 've', path: 'nodes.vmids.end', label: 'end', numeric: true, width: 9, row: 5 },
];
const ROWS = ['Cluster', 'Servers', 'Agents', 'Network', 'Static IPs', 'VMIDs'];

type Values = Record<string, string>;

interface S {
  focus: number;
  values: Values;
  /** Show errors only after the first edit or submit attempt. */
  touched: boolean;
}

function toPatch(values: Values): Plain {
  const out: Plain = {};
  for (const f of FIELDS) {
    const raw = values[f.key] ?? '';
    if (f.staticOnly && values.mode !== 'static') continue;
    const v: unknown = raw === '' ? (f.numeric ? '' : undefined) : f.numeric && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw.trim();
    const parts = f.path.split('.');
    let cur = out;
    for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Plain;
    cur[parts.at(-1)!] = v;
  }
  return out;
}

export function NodesScreen({ draft, pveNodes, onSubmit }: NodesScreenProps) {
  const t = useTheme();
  const { rows } = useWindowSize();
  const merged = useMemo(() => withPreset(draft), [draft]);
  const [s, dispatch] = useReducer(
    (st: S, a: { type: 'focus'; to: number } | { type: 'edit'; key: string; f: (v: string) => string } | { type: 'touch' }): S => {
      if (a.type === 'focus') return { ...st, focus: a.to };
      if (a.type === 'touch') return { ...st, touched: true };
      return { ...st, touched: true, values: { ...st.values, [a.key]: a.f(st.values[a.key] ?? '') } };
    },
    undefined,
    () => {
      const values: Values = {};
      // Start from the schema's defaults so an empty (custom) draft shows real numbers.
      const parsed = NodesSchema.safeParse(draftGet(merged, 'nodes') ?? {});
      const base = parsed.success ? { ...merged, nodes: parsed.data } : merged;
      for (const f of FIELDS) {
        const v = draftGet(base, f.path);
        values[f.key] = v === undefined ? '' : String(v);
      }
      values.mode ||= 'dhcp';
      values.sc ||= '1';
      values.ac ||= '0';
      return { focus: values.name ? 1 : 0, values, touched: false };
    },
  );
  const visible = FIELDS.filter((f) => !f.staticOnly || s.values.mode === 'static');
  const focused = visible[Math.min(s.focus, visible.length - 1)]!;
  const patch = toPatch(s.values);
  const candidate = mergeDraft(draft, patch);
  // biome-ignore lint/correctness/useExhaustiveDependencies: keyed by the patch's value (a new object each render) and the draft; `candidate` derives from both
  const check = useMemo(
    () => checkDraft(candidate, ['cluster.name', 'nodes', 'apps.piraeus.replicas', 'flatcar.templateVmid']),
    [JSON.stringify(patch), draft],
  );
  const errorOf = (f: FieldDef) => check.errors[f.path] ?? (f.path.startsWith('nodes.vmids') ? check.errors['nodes.vmids'] : undefined);
  const errors = Object.entries(check.errors);

  useInput((input, key) => {
    const n = visible.length;
    if (key.escape) return onSubmit({ back: true, patch });
    if ((key.tab && key.shift) || key.upArrow) dispatch({ type: 'focus', to: (s.focus - 1 + n) % n });
    else if (key.tab || key.downArrow) dispatch({ type: 'focus', to: (s.focus + 1) % n });
    else if (focused.key === 'mode' && (input === ' ' || key.leftArrow || key.rightArrow))
      dispatch({ type: 'edit', key: 'mode', f: (m) => (m === 'static' ? 'dhcp' : 'static') });
    else if (key.return) {
      if (errors.length) dispatch({ type: 'touch' });
      else onSubmit({ back: false, patch });
    }
  });

  let preview: string[] = [];
  let placementNote: string | undefined;
  if (check.config) {
    const planned = planNodes(check.config);
    const hosts = pveNodes.length ? pveNodes : ['(PVE node)'];
    let placed: Map<string, string> = new Map();
    try {
      const d = decidePlacement(planned, hosts, check.config.nodes.placement);
      placed = d.placement;
      placementNote = d.warnings[0];
    } catch (e) {
      placementNote = (e as Error).message;
    }
    preview = planned.map(
      (p) =>
        `${p.name.padEnd(22)} VMID ${String(p.vmid).padEnd(6)} ${p.cores}c/${p.memory}M/${p.disk}G → ${placed.get(p.name) ?? '?'}${p.address ? `  ${p.address}` : '  dhcp'}`,
    );
  }
  // The preview gets what the form leaves of the screen (80x24: a few lines, with "+ N more").
  const maxPreview = Math.max(2, rows - 18 - (s.values.mode === 'static' ? 1 : 0));
  return (
    <Box flexDirection="column">
      <Text bold>Node layout</Text>
      <Box flexDirection="column" marginY={1}>
        {ROWS.map((title, row) => {
          const fields = visible.filter((f) => f.row === row);
          if (!fields.length) return null;
          return (
            <Box key={title} columnGap={1} flexWrap="wrap">
              <Box width={11} flexShrink={0}>
                <Text bold>{title}</Text>
              </Box>
              {fields.map((f) =>
                f.key === 'mode' ? (
                  <Text key={f.key} color={focused.key === 'mode' ? t.accent : undefined}>
                    {focused.key === 'mode' ? '› ' : '  '}mode <Text inverse={s.values.mode === 'dhcp'}> dhcp </Text>
                    <Text inverse={s.values.mode === 'static'}> static </Text>
                  </Text>
                ) : (
                  <Box key={f.key} width={f.label.length + f.width + 4}>
                    <TextField
                      label={f.label}
                      labelWidth={f.label.length + 3}
                      value={s.values[f.key] ?? ''}
                      focus={focused.key === f.key}
                      onChange={(fn) => dispatch({ type: 'edit', key: f.key, f: fn })}
                      placeholder={f.key === 'vip' ? 'none' : ''}
                      error={undefined}
                    />
                  </Box>
                ),
              )}
            </Box>
          );
        })}
      </Box>
      {errorOf(focused) ? (
        <Text color={t.error} wrap="wrap">
          ✗ {ROWS[focused.row]} {focused.label}: {errorOf(focused)}
        </Text>
      ) : null}
      {s.touched
        ? errors
            .filter(([p]) => !(focused.path === p || (focused.path.startsWith('nodes.vmids') && p === 'nodes.vmids')))
            .slice(0, 3)
            .map(([p, m]) => (
              <Text key={p} color={t.error} wrap="wrap">
                ✗ {p}: {m}
              </Text>
            ))
        : null}
      {preview.length ? (
        <Box flexDirection="column" marginTop={1}>
          <Text color={t.muted}>
            Placement preview ({typeof check.config?.nodes.placement === 'string' ? check.config.nodes.placement : 'explicit hosts'}):
          </Text>
          {preview.slice(0, maxPreview).map((l) => (
            <Text key={l} wrap="truncate-end">
              {'  '}
              {l}
            </Text>
          ))}
          {preview.length > maxPreview ? <Text color={t.muted}> + {preview.length - maxPreview} more</Text> : null}
          {placementNote ? (
            <Text color={t.warn} wrap="wrap">
              ⚠ {placementNote}
            </Text>
          ) : null}
        </Box>
      ) : null}
      <Footer
        keys={[
          ['Tab/↓↑', 'field'],
          ...(focused.key === 'mode' ? ([['Space', 'dhcp/static']] as Array<[string, string]>) : []),
          ['Enter', 'next'],
          ['Esc', 'back'],
        ]}
      />
    </Box>
  );
}
