/** The Review screen's stand-in when the draft does not validate yet: the problems, and Esc to go back. */
import { Box, Text, useInput } from 'ink';
import { useTheme } from '../theme.js';
import { Footer } from './Footer.js';

export function ReviewError({ message, onBack }: { message: string; onBack: () => void }) {
  const t = useTheme();
  useInput((_i, key) => {
    if (key.escape || key.return) onBack();
  });
  return (
    <Box flexDirection="column">
      <Text bold>Review</Text>
      <Text wrap="wrap">The config is not complete yet:</Text>
      <Text color={t.error} wrap="wrap">
        {message}
      </Text>
      <Footer keys={[['Esc', 'back to change it']]} />
    </Box>
  );
}
