/** A multi-select list: ↑/↓ move, Space toggles, Enter confirms. Cursor and choices live in a reducer. */
import { useEffect, useReducer } from 'react';
import { Box, Text, useInput } from 'ink';
import { useTheme } from '../theme.js';

export interface CheckItem<K extends string> {
  key: K;
  label: string;
  hint?: string;
  disabled?: boolean;
}

export interface CheckListProps<K extends string> {
  items: Array<CheckItem<K>>;
  initial: K[];
  focus?: boolean;
  onToggle?: (checked: K[]) => void;
  onSubmit: (checked: K[]) => void;
}

interface S<K> {
  cursor: number;
  checked: K[];
}

export function CheckList<K extends string>({ items, initial, focus = true, onToggle, onSubmit }: CheckListProps<K>) {
  const t = useTheme();
  const [s, dispatch] = useReducer(
    (st: S<K>, a: { type: 'move'; by: number } | { type: 'toggle' }): S<K> => {
      if (a.type === 'move') return { ...st, cursor: Math.max(0, Math.min(items.length - 1, st.cursor + a.by)) };
      const it = items[st.cursor];
      if (!it || it.disabled) return st;
      const checked = st.checked.includes(it.key)
        ? st.checked.filter((k) => k !== it.key)
        : items.filter((x) => x.key === it.key || st.checked.includes(x.key)).map((x) => x.key);
      return { ...st, checked };
    },
    { cursor: 0, checked: initial },
  );
  useInput(
    (input, key) => {
      if (key.upArrow || input === 'k') dispatch({ type: 'move', by: -1 });
      else if (key.downArrow || input === 'j') dispatch({ type: 'move', by: 1 });
      else if (input === ' ') dispatch({ type: 'toggle' });
      else if (key.return) onSubmit(s.checked);
    },
    { isActive: focus },
  );
  // Report toggles after render so the parent sees the reducer's value (merged keys included).
  // biome-ignore lint/correctness/useExhaustiveDependencies: reports a toggle, not a new callback from the parent's re-render
  useEffect(() => {
    onToggle?.(s.checked);
  }, [s.checked]);
  return (
    <Box flexDirection="column">
      {items.map((it, i) => (
        <Text key={it.key} wrap="truncate-end" color={it.disabled ? t.muted : i === s.cursor && focus ? t.accent : undefined}>
          {i === s.cursor ? '❯ ' : '  '}
          {s.checked.includes(it.key) ? '[x] ' : '[ ] '}
          {it.label}
          {it.hint ? <Text color={t.muted}> {it.hint}</Text> : null}
        </Text>
      ))}
    </Box>
  );
}
