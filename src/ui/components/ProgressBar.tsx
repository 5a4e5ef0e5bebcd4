/** A text progress bar: done/total with a bar that fits the given width. */
import { Text } from 'ink';
import { useTheme } from '../theme.js';

export function ProgressBar({ done, total, width }: { done: number; total: number; width: number }) {
  const t = useTheme();
  const w = Math.max(4, width);
  const filled = total > 0 ? Math.round((done / total) * w) : 0;
  return (
    <Text>
      <Text color={t.ok}>{'█'.repeat(filled)}</Text>
      <Text color={t.muted}>{'░'.repeat(w - filled)}</Text> {done}/{total}
    </Text>
  );
}
