/**
 * A one-line text input. Edits go through a functional update so keys that arrive in one chunk are
 * never lost; with `mask` the value is never rendered (only one mask character per typed character).
 */
import { Box, Text, useInput } from 'ink';
import { useTheme } from '../theme.js';

export interface TextFieldProps {
  label: string;
  value: string;
  onChange: (update: (prev: string) => string) => void;
  focus: boolean;
  mask?: string;
  placeholder?: string;
  /** Shown under the field (a validation message with its fix). */
  error?: string;
  hint?: string;
  labelWidth?: number;
  onSubmit?: () => void;
}

/** Printable input only: strips control sequences that a terminal may send (paste brackets, escapes). */
function printable(input: string): string {
  // eslint-disable-next-line no-control-regex
  return input.replace(/\x1b\[[0-9;]*[~A-Za-z]/g, '').replace(/[\x00-\x1f\x7f]/g, '');
}

export function TextField({ label, value, onChange, focus, mask, placeholder, error, hint, labelWidth = 16, onSubmit }: TextFieldProps) {
  const t = useTheme();
  useInput(
    (input, key) => {
      if (key.return) return onSubmit?.();
      if (key.backspace || key.delete) return onChange((v) => v.slice(0, -1));
      if (key.escape || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.ctrl || key.meta) return;
      const add = printable(input);
      if (add) onChange((v) => v + add);
    },
    { isActive: focus },
  );
  const shown = mask ? mask.repeat(value.length) : value;
  return (
    <Box flexDirection="column">
      <Box>
        <Box width={labelWidth} flexShrink={0}>
          <Text color={focus ? t.accent : undefined} bold={focus}>
            {focus ? '› ' : '  '}
            {label}
          </Text>
        </Box>
        <Text wrap="truncate-start">
          {shown.length ? shown : <Text color={t.muted}>{placeholder ?? ''}</Text>}
          {focus ? <Text inverse> </Text> : null}
        </Text>
      </Box>
      {error ? (
        <Box marginLeft={labelWidth}>
          <Text color={t.error} wrap="wrap">
            ✗ {error}
          </Text>
        </Box>
      ) : hint && focus ? (
        <Box marginLeft={labelWidth}>
          <Text color={t.muted} wrap="wrap">
            {hint}
          </Text>
        </Box>
      ) : null}
    </Box>
  );
}
