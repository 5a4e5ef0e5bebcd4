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
  // A fragment, not a box: the screen's column lays the lines out, and every node less is work saved
  // in each frame Ink draws.
  return (
    <>
      <Text wrap="truncate-end" bold={selected}>
        <Text color={t.accent}>{selected ? '▸' : SPINNER_FRAMES[frame % SPINNER_FRAMES.length]}</Text>{' '}
        {clip(head + prog, Math.max(10, width - right.length - 3))}
        <Text color={t.muted}>{right}</Text>
      </Text>
      {lines.length ? <Tail lines={lines} width={width - 5} color={t.muted} /> : null}
    </>
  );
}

/**
 * The log tail, drawn as `clip` would (lines cut to `width` with "…"), in a shape Ink draws cheaply
 * under a log flood: the gutter is the box's left border, the lines are one text node of their first
 * width-1 columns, and the last column (the "…" of a cut line) is a second one-column text node.
 * Plain ASCII log text then stays on string-width's fast path, which "│" or "…" in a line would leave.
 */
function Tail({ lines, width, color }: { lines: string[]; width: number; color?: string }) {
  const body: string[] = [];
  const last: string[] = [];
  for (const l of lines) {
    const c = clip(l, width);
    body.push(c.slice(0, width - 1));
    last.push(c.slice(width - 1));
  }
  return (
    <Box marginLeft={2} paddingLeft={1} borderStyle="single" borderTop={false} borderRight={false} borderBottom={false} borderColor={color}>
      <Text color={color} wrap="truncate-end">
        {body.join('\n')}
      </Text>
      {last.some(Boolean) ? <Text color={color}>{last.join('\n')}</Text> : null}
    </Box>
  );
}
