/** One shared clock for a screen: re-renders every `ms` (spinners, elapsed times) instead of a timer per pane. */
import { useEffect, useState } from 'react';

export function useTick(ms: number, active = true): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setN((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return n;
}
