/**
 * Flatcar template: channel, then a version from the releases feed (newest first, release date,
 * kernel), with templates that already exist on Proxmox marked and the option to recreate one.
 */
import { useEffect, useReducer } from 'react';
import { Box, Text, useInput } from 'ink';
import Spinner from 'ink-spinner';
import type { FlatcarRelease, FlatcarReleases } from '../src/ui/types.js';
import type { PveVmResource } from '../src/proxmox/types.js';
import { templateName } from '../src/flatcar/naming.js';
import { useTheme } from '../src/ui/theme.js';
import { SelectList } from '../src/ui/components/SelectList.js';
import { Footer, type KeyHelp } from '../src/ui/components/Footer.js';

const CHANNELS = [
  { value: 'stable', hint: '— production releases (recommended)' },
  { value: 'beta', hint: '— the next stable, for testing' },
  { value: 'alpha', hint: '— development snapshots' },
  { value: 'lts', hint: '— long-term support' },
];

export interface FlatcarChoice {
  channel: string;
  version: string;
}

export type FlatcarResult = { back: boolean; flatcar: FlatcarChoice; recreateTemplate: boolean };

export interface FlatcarScreenProps {
  initial: Partial<FlatcarChoice>;
  releases: FlatcarReleases;
  /** Template VMs found on Proxmox. */
  templates: PveVmResource[];
  recreate: boolean;
  onSubmit: (r: FlatcarResult) => void;
}

type Phase = 'channel' | 'version' | 'template';

interface S {
  phase: Phase;
  channel: string;
  version: string;
  list?: FlatcarRelease[];
  loading: boolean;
  error?: string;
  attempt: number;
}

const date = (iso: string) => iso.slice(0, 10);

export function existingTemplate(templates: PveVmResource[], channel: string, version: string): PveVmResource | undefined {
  const name = templateName(channel, version);
  return templates.find((t) => t.name === name);
}

export function FlatcarScreen({ initial, releases, templates, recreate, onSubmit }: FlatcarScreenProps) {
  const t = useTheme();
  const [s, set] = useReducer((a: S, p: Partial<S>) => ({ ...a, ...p }), {
    phase: 'channel',
    channel: initial.channel ?? 'stable',
    version: initial.version ?? 'current',
    loading: false,
    attempt: 0,
  });
  const result = (over: Partial<FlatcarResult> = {}): FlatcarResult => ({
    back: false,
    flatcar: { channel: s.channel, version: s.version },
    recreateTemplate: recreate,
    ...over,
  });

  // biome-ignore lint/correctness/useExhaustiveDependencies: `releases` is a stable service; `s.attempt` is the retry key that re-runs the load
  useEffect(() => {
    if (s.phase !== 'version') return;
    let live = true;
    set({ loading: true, error: undefined });
    releases.list(s.channel).then(
      (list) => live && set({ list, loading: false }),
      (err: { message?: string; fix?: string }) =>
        live && set({ loading: false, list: [], error: `${err?.message ?? String(err)}${err?.fix ? `\nFix: ${err.fix}` : ''}` }),
    );
    return () => {
      live = false;
    };
  }, [s.phase, s.channel, s.attempt]);

  useInput((input, key) => {
    if (key.escape) {
      if (s.phase === 'channel') onSubmit(result({ back: true }));
      else set({ phase: s.phase === 'template' ? 'version' : 'channel' });
    } else if (input === 'r' && s.phase === 'version' && s.error) set({ attempt: s.attempt + 1 });
  });

  const resolved = (v: string) => (v === 'current' ? s.list?.[0]?.version : v);
  const chooseVersion = (v: string) => {
    const real = resolved(v);
    set({ version: v });
    if (real && existingTemplate(templates, s.channel, real)) set({ phase: 'template' });
    else onSubmit({ back: false, flatcar: { channel: s.channel, version: v }, recreateTemplate: false });
  };

  let body: React.ReactNode;
  let keys: KeyHelp = [
    ['↑↓', 'move'],
    ['Enter', 'choose'],
    ['Esc', 'back'],
  ];
  if (s.phase === 'channel') {
    body = (
      <>
        <Text>Flatcar release channel:</Text>
        <SelectList
          key="channel"
          items={CHANNELS.map((c) => ({ label: c.value, value: c.value, hint: c.hint }))}
          initialIndex={Math.max(
            0,
            CHANNELS.findIndex((c) => c.value === s.channel),
          )}
          onSelect={(channel) => set({ channel, phase: 'version', list: undefined })}
        />
      </>
    );
  } else if (s.phase === 'version') {
    if (s.loading || !s.list) {
      body = (
        <Text color={t.accent}>
          <Spinner /> Reading the {s.channel} releases feed…
        </Text>
      );
    } else {
      const newest = s.list[0];
      const items = [
        {
          label: 'current',
          value: 'current',
          hint: newest ? `— always the newest ${s.channel} (now ${newest.version})` : '— the newest release, resolved when the run starts',
        },
        ...s.list.map((r) => {
          const tpl = existingTemplate(templates, s.channel, r.version);
          return {
            label: r.version,
            value: r.version,
            hint: `— ${date(r.releaseDate)}${r.kernel ? `, kernel ${r.kernel}` : ''}${tpl ? `  ● template exists (VMID ${tpl.vmid} on ${tpl.node})` : ''}`,
          };
        }),
      ];
      if (s.error) keys = [['r', 'retry'], ...keys];
      body = (
        <>
          <Text>Flatcar {s.channel} version (newest first):</Text>
          {s.error ? (
            <Text color={t.error} wrap="wrap">
              ✗ {s.error}
              {'\n'}You can still choose "current" (resolved when the run starts) or press r to retry.
            </Text>
          ) : null}
          <SelectList
            key={`version-${s.channel}`}
            items={items}
            limit={8}
            initialIndex={Math.max(
              0,
              items.findIndex((i) => i.value === s.version),
            )}
            onSelect={chooseVersion}
          />
        </>
      );
    }
  } else {
    const real = resolved(s.version)!;
    const tpl = existingTemplate(templates, s.channel, real)!;
    body = (
      <>
        <Text wrap="wrap">
          A template for Flatcar {s.channel} {real} already exists: {tpl.name} (VMID {tpl.vmid} on {tpl.node}).
        </Text>
        <SelectList
          key="template"
          items={[
            { label: 'Keep it', value: false, hint: '— reuse it when its Ignition config matches (fast)' },
            { label: 'Recreate it', value: true, hint: '— delete and rebuild the template (existing node VMs are kept)' },
          ]}
          initialIndex={recreate ? 1 : 0}
          onSelect={(v) => onSubmit(result({ recreateTemplate: v }))}
        />
      </>
    );
  }
  return (
    <Box flexDirection="column">
      <Text bold>Flatcar Container Linux template</Text>
      <Box marginY={1} flexDirection="column">
        {body}
      </Box>
      <Footer keys={keys} />
    </Box>
  );
}
