/** The always-visible keyboard help line. */
import { Box, Text } from 'ink';
import { useTheme } from '../theme.js';

export type KeyHelp = Array<[key: string, what: string]>;

export function Footer({ keys }: { keys: KeyHelp }) {
  const t = useTheme();
  return (
    <Box borderStyle="single" borderTop borderBottom={false} borderLeft={false} borderRight={false} flexWrap="wrap" columnGap={2}>
      {keys.map(([k, what]) => (
        <Text key={k}>
          <Text bold color={t.accent}>
            {k}
          </Text>{' '}
          <Text color={t.muted}>{what}</Text>
        </Text>
      ))}
    </Box>
  );
}
