/** What failed, why, how to fix it, where the log is, and the keys to retry or quit. */
import { Box, Text } from 'ink';
import type { FinishedStep } from '../../src/ui/run-store.js';
import { useTheme } from '../../src/ui/theme.js';

export function FailureView({ step, logFile, message }: { step?: FinishedStep; logFile?: string; message?: string }) {
  const t = useTheme();
  const detail = step?.error?.detail?.split('\n').filter(Boolean).slice(-6) ?? [];
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={t.error} paddingX={1}>
      <Text color={t.error} bold>
        ✗ {step ? `${step.group} › ${step.title} failed` : 'The run failed'}
      </Text>
      <Text wrap="wrap">{step?.error?.message ?? message ?? 'no error message'}</Text>
      {detail.map((d, i) => (
        <Text key={i} color={t.muted} wrap="truncate-end">
          {'  '}
          {d}
        </Text>
      ))}
      {step?.error?.fix ? (
        <Text wrap="wrap">
          <Text color={t.ok} bold>
            Fix:{' '}
          </Text>
          {step.error.fix}
        </Text>
      ) : null}
      {logFile ? <Text wrap="wrap">Log: {logFile}</Text> : null}
      <Text>
        Press <Text bold>r</Text> to retry (finished steps are kept, the run resumes here) or <Text bold>q</Text> to quit; the state is
        saved.
      </Text>
    </Box>
  );
}
