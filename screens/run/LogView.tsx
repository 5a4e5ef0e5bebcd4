/** One step's log, full height: the bounded in-memory buffer, with a pointer to the complete log file. */
import { Box, Text } from 'ink';
import { useTheme } from '../../src/ui/theme.js';
import { clip } from '../../src/ui/format.js';

export interface LogViewProps {
  title: string;
  lines: string[];
  total: number;
  height: number;
  width: number;
  logFile?: string;
}

export function LogView({ title, lines, total, height, width, logFile }: LogViewProps) {
  const t = useTheme();
  const shown = lines.slice(-Math.max(1, height - 2));
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        Log of {title}{' '}
        <Text color={t.muted}>
          (last {shown.length} of {total} lines{logFile ? `; all in ${logFile}` : ''})
        </Text>
      </Text>
      {shown.map((l, i) => (
        <Text key={i} wrap="truncate-end">
          {clip(l, width)}
        </Text>
      ))}
    </Box>
  );
}
