/**
 * Start: resume an unfinished run (showing where it stopped and why), start over with a preset, or
 * open another cluster from a config file.
 */
import { useEffect, useReducer } from 'react';
import { Box, Text, useInput } from 'ink';
import type { KnownCluster, UnfinishedRun } from '../src/ui/types.js';
import { useTheme } from '../src/ui/theme.js';
import { SelectList, type Choice } from '../src/ui/components/SelectList.js';
import { TextField } from '../src/ui/components/TextField.js';
import { Footer } from '../src/ui/components/Footer.js';
import { formatDuration } from '../src/ui/format.js';

export type StartChoice =
  | { kind: 'resume'; run: UnfinishedRun }
  | { kind: 'open'; cluster: KnownCluster }
  | { kind: 'preset'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'quit' };

export interface StartScreenProps {
  unfinished: UnfinishedRun[];
  /** Clusters with a saved config, to open again (change or converge). */
  clusters?: KnownCluster[];
  presets: Array<{ name: string; summary: string }>;
  /** An error from loading the file given last (shown under the path field). */
  fileError?: string;
  initialPath?: string;
  now?: () => number;
  onSubmit: (choice: StartChoice) => void;
}

type Phase = 'menu' | 'presets' | 'file' | 'open';
type MenuValue =
  | { kind: 'resume'; run: UnfinishedRun }
  | { kind: 'new' }
  | { kind: 'file' }
  | { kind: 'open' }
  | { kind: 'cluster'; cluster: KnownCluster }
  | { kind: 'preset'; name: string };

interface S {
  phase: Phase;
  path: string;
}

export function StartScreen({
  unfinished,
  clusters = [],
  presets,
  fileError,
  initialPath = '',
  now = Date.now,
  onSubmit,
}: StartScreenProps) {
  const t = useTheme();
  const [s, set] = useReducer((a: S, p: Partial<S> | ((a: S) => Partial<S>)) => ({ ...a, ...(typeof p === 'function' ? p(a) : p) }), {
    phase: fileError ? 'file' : unfinished.length ? 'menu' : 'presets',
    path: initialPath,
  });
  // A file that failed to load (also one given on the command line): show the path with the error.
  useEffect(() => {
    if (fileError) set({ phase: 'file', path: initialPath });
  }, [fileError, initialPath]);
  useInput((input, key) => {
    if (key.escape) {
      if (s.phase === 'file' || s.phase === 'open' || (s.phase === 'presets' && unfinished.length))
        set({ phase: unfinished.length ? 'menu' : 'presets' });
    } else if (input === 'q' && s.phase !== 'file') onSubmit({ kind: 'quit' });
  });

  const presetItems: Array<Choice<MenuValue>> = [
    ...presets.map((p) => ({ label: p.name, value: { kind: 'preset' as const, name: p.name }, hint: `— ${p.summary}` })),
    ...(clusters.length
      ? [
          {
            label: 'Open a cluster…',
            value: { kind: 'open' as const },
            hint: `— ${clusters.map((c) => c.cluster).join(', ')}: change it or converge it again`,
          },
        ]
      : []),
    { label: 'Load a config file…', value: { kind: 'file' }, hint: '— a YAML file as `up --config` takes' },
  ];
  const openItems: Array<Choice<MenuValue>> = [
    ...clusters.map((c) => ({
      label: c.cluster,
      value: { kind: 'cluster' as const, cluster: c },
      hint: `— last run ${c.lastRun ?? 'none'}${c.updatedAt ? `, ${formatDuration(now() - c.updatedAt)} ago` : ''}`,
    })),
    { label: 'Load a config file…', value: { kind: 'file' } },
  ];
  const menuItems: Array<Choice<MenuValue>> = [
    ...unfinished.map((r) => ({
      label: `Resume ${r.cluster}`,
      value: { kind: 'resume' as const, run: r },
      hint: `— ${r.done}/${r.total} steps done`,
    })),
    { label: 'Start over: a new cluster', value: { kind: 'new' } },
    {
      label: 'Open another cluster…',
      value: clusters.length ? { kind: 'open' } : { kind: 'file' },
      hint: clusters.length ? '— from the state dir or a config file' : '— from a config file',
    },
  ];
  const choose = (v: MenuValue) => {
    if (v.kind === 'new') set({ phase: 'presets' });
    else if (v.kind === 'file') set({ phase: 'file' });
    else if (v.kind === 'open') set({ phase: 'open' });
    else if (v.kind === 'cluster') onSubmit({ kind: 'open', cluster: v.cluster });
    else if (v.kind === 'resume') onSubmit({ kind: 'resume', run: v.run });
    else onSubmit({ kind: 'preset', name: v.name });
  };

  return (
    <Box flexDirection="column">
      <Text bold>flatcar-k3s — k3s on Flatcar Container Linux VMs on Proxmox VE</Text>
      <Box marginY={1} flexDirection="column">
        {s.phase === 'menu' ? (
          <>
            <Text>An unfinished run was found. Resume it, or start something else:</Text>
            <SelectList key="menu" items={menuItems} onSelect={choose} />
            {unfinished.map((r) => (
              <Text key={r.cluster} color={t.muted} wrap="wrap">
                {r.cluster} {r.status === 'failed' ? 'stopped' : 'was interrupted'}
                {r.stoppedAt ? ` at "${r.stoppedAt}"` : ''} {formatDuration(now() - r.updatedAt)} ago{r.reason ? `: ${r.reason}` : ''}
              </Text>
            ))}
          </>
        ) : s.phase === 'open' ? (
          <>
            <Text>Open a cluster (its saved config; every screen can change it, or go straight to Review):</Text>
            <SelectList key="open" items={openItems} onSelect={choose} />
          </>
        ) : s.phase === 'presets' ? (
          <>
            <Text>Choose a starting point (every value can be changed on the next screens):</Text>
            <SelectList key="presets" items={presetItems} onSelect={choose} />
          </>
        ) : (
          <>
            <Text>Path of a config file (YAML, as `flatcar-k3s up --config FILE` takes):</Text>
            <TextField
              label="File"
              value={s.path}
              focus
              onChange={(f) => set((a) => ({ path: f(a.path) }))}
              error={fileError}
              placeholder="./cluster.yaml"
              onSubmit={() => s.path.trim() && onSubmit({ kind: 'file', path: s.path.trim() })}
            />
          </>
        )}
      </Box>
      <Text color={t.muted}>Nothing is changed on Proxmox before the Review screen.</Text>
      <Footer
        keys={
          s.phase === 'file'
            ? [
                ['Enter', 'load'],
                ['Esc', 'back'],
              ]
            : [
                ['↑↓', 'move'],
                ['Enter', 'choose'],
                ...((s.phase === 'presets' && unfinished.length) || s.phase === 'open'
                  ? ([['Esc', 'back']] as Array<[string, string]>)
                  : []),
                ['q', 'quit'],
              ]
        }
      />
    </Box>
  );
}
