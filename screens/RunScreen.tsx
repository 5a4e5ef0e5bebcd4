/**
 * The live run: finished steps in <Static> (printed once), a pane per running step with a bounded
 * tail, overall progress, the failure view with its fix, and keys to expand a log, retry or quit.
 * Data comes from a RunStore (throttled snapshots); actions go out through onSubmit.
 */
import { memo, useReducer, useSyncExternalStore } from 'react';
import { Box, Static, Text, useInput, useWindowSize } from 'ink';
import type { RunStore, FinishedStep } from '../src/ui/run-store.js';
import { useTheme } from '../src/ui/theme.js';
import { formatDuration } from '../src/ui/format.js';
import { Footer, type KeyHelp } from '../src/ui/components/Footer.js';
import { ProgressBar } from '../src/ui/components/ProgressBar.js';
import { StepPane } from './run/StepPane.js';
import { FailureView } from './run/FailureView.js';
import { LogView } from './run/LogView.js';

export type RunAction = 'quit' | 'retry' | 'continue';

export interface RunScreenProps {
  store: Pick<RunStore, 'subscribe' | 'getSnapshot' | 'buffered'>;
  cluster: string;
  logFile?: string;
  /** Set by the app once quit was asked: the runner is being stopped. */
  stopping?: boolean;
  /** The clock (tests); by default the store's publish time, so the store's frame tick is the only timer. */
  now?: () => number;
  onSubmit: (action: RunAction) => void;
}

interface ViewState {
  selected: number;
  expanded: boolean;
}

type ViewAction = { type: 'move'; by: number; max: number } | { type: 'expand' } | { type: 'close' };

function view(s: ViewState, a: ViewAction): ViewState {
  switch (a.type) {
    case 'move':
      return { ...s, selected: Math.max(0, Math.min(a.max - 1, s.selected + a.by)) };
    case 'expand':
      return { ...s, expanded: true };
    case 'close':
      return { ...s, expanded: false };
  }
}

function FinishedLine({ step }: { step: FinishedStep }) {
  const t = useTheme();
  const mark = step.status === 'done' ? '✔' : step.status === 'skipped' ? '↷' : '✗';
  const color = step.status === 'done' ? t.ok : step.status === 'skipped' ? t.muted : t.error;
  const note =
    step.status === 'skipped'
      ? ` skipped: ${step.reason ?? ''}`
      : step.via === 'check'
        ? ' already done'
        : step.status === 'failed'
          ? ` failed: ${step.error?.message ?? ''}`
          : ` ${formatDuration(step.ms)}`;
  return (
    <Text wrap="truncate-end">
      <Text color={color}>{mark}</Text> {step.group} › {step.title}
      <Text color={t.muted}>{note}</Text>
    </Text>
  );
}

interface RunTitleProps {
  mark: string;
  cluster: string;
  done: number;
  total: number;
  width: number;
  elapsed: string;
}

/**
 * "Building <cluster>", the progress bar and the elapsed time: one text node (nested texts are not laid
 * out), memoized so the frames of a log flood re-render it once a second, not in every frame.
 */
const RunTitle = memo(function RunTitle({ mark, cluster, done, total, width, elapsed }: RunTitleProps) {
  const t = useTheme();
  return (
    <Text wrap="truncate-end">
      <Text bold>
        {mark}Building {cluster}{' '}
      </Text>
      <ProgressBar done={done} total={total} width={Math.min(30, width - cluster.length - 30)} />
      <Text color={t.muted}> {elapsed}</Text>
    </Text>
  );
});

export function RunScreen({ store, cluster, logFile, stopping, now, onSubmit }: RunScreenProps) {
  const t = useTheme();
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const { columns, rows } = useWindowSize();
  const frame = Math.floor(snap.at / 100);
  const [v, dispatch] = useReducer(view, { selected: 0, expanded: false });
  const failed = snap.status === 'failed' || (snap.failed.length > 0 && snap.running.length === 0 && snap.status !== 'succeeded');
  const selectable = snap.running.length > 0 ? snap.running : snap.failed;
  const sel = selectable[Math.min(v.selected, Math.max(0, selectable.length - 1))];

  useInput((input, key) => {
    if (v.expanded) {
      if (key.escape || input === 'l' || key.return || input === 'q') dispatch({ type: 'close' });
      return;
    }
    if (key.upArrow || input === 'k' || (key.shift && key.tab)) dispatch({ type: 'move', by: -1, max: selectable.length });
    else if (key.downArrow || input === 'j' || key.tab) dispatch({ type: 'move', by: 1, max: selectable.length });
    else if ((input === 'l' || key.return) && sel) dispatch({ type: 'expand' });
    else if (input === 'q' || (key.ctrl && input === 'c')) onSubmit('quit');
    else if (input === 'r' && failed && !stopping) onSubmit('retry');
  });

  const width = Math.max(20, columns);
  const nowMs = now ? now() : snap.at;
  const elapsed = snap.startedAt ? formatDuration((snap.endedAt ?? nowMs) - snap.startedAt) : '0s';
  const keys: KeyHelp = v.expanded
    ? [['Esc', 'close log']]
    : [
        ['↑↓', 'select'],
        ['l/Enter', 'full log'],
        ...(failed ? ([['r', 'retry']] as KeyHelp) : []),
        ['q', stopping ? 'stopping…' : 'quit (state is saved)'],
      ];

  // Height budget: header 2, footer 2, one spare row; the rest is shared by the panes.
  const avail = Math.max(3, rows - 5);
  let body: React.ReactNode;
  if (v.expanded && sel) {
    const buf = store.buffered(sel.id);
    body = (
      <LogView
        title={`${sel.group} › ${sel.title}`}
        lines={buf.lines}
        total={buf.total}
        height={avail + 1}
        width={width}
        logFile={logFile}
      />
    );
  } else if (failed) {
    body = <FailureView step={snap.failed[Math.min(v.selected, snap.failed.length - 1)]} logFile={logFile} message={snap.message} />;
  } else {
    const panes = snap.running;
    const fit = Math.min(panes.length, panes.length > avail ? avail - 1 : avail);
    const shown = panes.slice(0, fit);
    const hidden = panes.slice(fit);
    const room = avail - (hidden.length ? 1 : 0);
    const tailLines = shown.length ? Math.max(0, Math.floor(room / shown.length) - 1) : 0;
    // Rows left over (many panes, short tails) go to the selected pane.
    const spare = Math.max(0, room - shown.length * (1 + tailLines));
    const selId = selectable[v.selected]?.id;
    body = (
      <>
        {shown.map((p) => (
          <StepPane
            key={p.id}
            pane={p}
            now={nowMs}
            frame={frame}
            width={width}
            tailLines={p.id === selId ? tailLines + spare : tailLines}
            selected={selId === p.id && panes.length > 1}
          />
        ))}
        {hidden.length ? (
          <Text color={t.muted} wrap="truncate-end">
            + {hidden.length} more running: {hidden.map((p) => p.group).join(', ')}
          </Text>
        ) : null}
        {panes.length === 0 && snap.status === 'running' ? <Text color={t.muted}>waiting for the next step…</Text> : null}
      </>
    );
  }

  return (
    <Box flexDirection="column">
      <Static items={snap.finished}>{(s) => <FinishedLine key={s.id} step={s} />}</Static>
      <RunTitle
        mark={snap.status === 'succeeded' ? '✔ ' : failed ? '✗ ' : ''}
        cluster={cluster}
        done={snap.completed}
        total={snap.total}
        width={width}
        elapsed={elapsed}
      />
      {stopping ? <Text color={t.warn}>Stopping: waiting for the running steps to stop cleanly; the state is saved…</Text> : null}
      {body}
      <Footer keys={keys} />
    </Box>
  );
}
