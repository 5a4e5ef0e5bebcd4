/** The always-visible keyboard help line. */
import { memo } from 'react';
import { Box, Text } from 'ink';
import { useTheme } from '../theme.js';

export type KeyHelp = Array<[key: string, what: string]>;

function FooterLine({ keys }: { keys: KeyHelp }) {
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

const sameKeys = (a: KeyHelp, b: KeyHelp): boolean =>
  a.length === b.length && a.every(([k, what], i) => k === b[i]![0] && what === b[i]![1]);

/**
 * Compared by the keys' text, not the array: a screen that re-renders ten times a second (the Run
 * screen under a log flood) does not re-render an unchanged footer, so Ink does not re-measure it.
 */
export const Footer = memo(FooterLine, (a, b) => sameKeys(a.keys, b.keys));
