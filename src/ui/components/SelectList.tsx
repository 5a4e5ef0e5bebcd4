/** A vertical choice list: ↑/↓ (or j/k) move, Enter chooses. The index lives in a reducer so merged keys count. */
import { useEffect, useReducer } from 'react';
import { Box, Text, useInput } from 'ink';
import { useTheme } from '../theme.js';

export interface Choice<V> {
  label: string;
  value: V;
  /** One line after the label (dim). */
  hint?: string;
  disabled?: boolean;
}

export interface SelectListProps<V> {
  items: Array<Choice<V>>;
  onSelect: (value: V) => void;
  onHighlight?: (value: V) => void;
  focus?: boolean;
  initialIndex?: number;
  /** Rows shown at once (scrolls). */
  limit?: number;
}

export function SelectList<V>({ items, onSelect, onHighlight, focus = true, initialIndex = 0, limit = 10 }: SelectListProps<V>) {
  const t = useTheme();
  const [index, move] = useReducer(
    (i: number, d: number) => {
      const n = items.length;
      if (n === 0) return 0;
      const next = Math.max(0, Math.min(n - 1, i + d));
      return next;
    },
    Math.min(initialIndex, Math.max(0, items.length - 1)),
  );
  // biome-ignore lint/correctness/useExhaustiveDependencies: reports a move of the highlight, not a new items array or callback from the parent's re-render
  useEffect(() => {
    const it = items[index];
    if (it) onHighlight?.(it.value);
  }, [index]);
  useInput(
    (input, key) => {
      if (key.upArrow || input === 'k') move(-1);
      else if (key.downArrow || input === 'j') move(1);
      else if (key.return) {
        const it = items[index];
        if (it && !it.disabled) onSelect(it.value);
      }
    },
    { isActive: focus },
  );
  const first = Math.max(0, Math.min(index - Math.floor(limit / 2), items.length - limit));
  const visible = items.slice(first, first + limit);
  return (
    <Box flexDirection="column">
      {first > 0 ? <Text color={t.muted}> ↑ {first} more</Text> : null}
      {visible.map((it, k) => {
        const active = first + k === index;
        return (
          <Text key={`${first + k}`} wrap="truncate-end" color={it.disabled ? t.muted : active && focus ? t.accent : undefined}>
            {active ? '❯ ' : '  '}
            {it.label}
            {it.hint ? <Text color={t.muted}> {it.hint}</Text> : null}
          </Text>
        );
      })}
      {first + limit < items.length ? <Text color={t.muted}> ↓ {items.length - first - limit} more</Text> : null}
    </Box>
  );
}
