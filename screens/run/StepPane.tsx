/** One running step: spinner, group › title, elapsed time, progress, and the last few log lines. */
import { Box, Text } from 'ink';
import type { PaneView } from '../../src/ui/run-store.js';
import { useTheme } from '../../src/ui/theme.js';
import { clip, formatDuration, SPINNER_FRAMES } from '../../src/ui/format.js';

export interface StepPaneProps {
  pane: PaneView;
  now: number;
  frame: number;
  width: number;
  tailLines: number;
  selected: boolean;
}

export function StepPane({ pane, now, frame, width, tailLines, selected }: StepPaneProps) {
  const t = useTheme();
  const elapsed = formatDuration(now - pane.startedAt);
  const head = `${pane.group} › ${pane.title}`;
  const pct = pane.progress?.fraction !== undefined ? ` ${Math.round(pane.progress.fraction * 100)}%` : '';
  const prog = pane.progress ? ` ${pane.progress.message}${pct}` : '';
  const right = ` ${elapsed}`;
  const lines = tailLines > 0 ? pane.tail.slice(-tailLines) : [];
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end" bold={selected}>
        <Text color={t.accent}>{selected ? '▸' : SPINNER_FRAMES[frame % SPINNER_FRAMES.length]}</Text>{' '}
        {clip(head + prog, Math.max(10, width - right.length - 3))}
        <Text color={t.muted}>{right}</Text>
      </Text>
      {lines.map((l, i) => (
        <Text key={i} color={t.muted} wrap="truncate-end">
          {'  │ '}
          {clip(l, width - 5)}
        </Text>
      ))}
    </Box>
  );
}
