/** Proxmox VE version comparison (no heavy imports: steps use it without loading the client). */

/** "8.4.1" >= "8.4"? Compares numerically; missing parts count as 0 ("9.0" >= "8.4", "8.10" > "8.4"). */
export function pveVersionAtLeast(version: string, min: string): boolean {
  const a = version.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const b = min.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}
