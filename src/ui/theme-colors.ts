/**
 * Colours for the UI, switched off entirely when NO_COLOR is set (https://no-color.org).
 * No React here: main.tsx picks the theme before React is loaded (see its header).
 */
export interface Theme {
  accent?: string;
  ok?: string;
  warn?: string;
  error?: string;
  muted?: string;
  /** Whether colours are used at all. */
  color: boolean;
}

export const colorTheme: Theme = { accent: 'cyan', ok: 'green', warn: 'yellow', error: 'red', muted: 'gray', color: true };
export const plainTheme: Theme = { color: false };

export function themeFor(env: NodeJS.ProcessEnv): Theme {
  return env.NO_COLOR !== undefined && env.NO_COLOR !== '' ? plainTheme : colorTheme;
}
