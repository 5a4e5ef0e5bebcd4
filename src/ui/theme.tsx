/** The theme as React context (see theme-colors.ts for the colours and NO_COLOR). */
import { createContext, useContext } from 'react';
import { colorTheme, type Theme } from './theme-colors.js';

export { colorTheme, plainTheme, themeFor, type Theme } from './theme-colors.js';

export const ThemeContext = createContext<Theme>(colorTheme);
export const useTheme = (): Theme => useContext(ThemeContext);
