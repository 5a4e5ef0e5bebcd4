/**
 * The one helper that puts values into shell commands. Every value interpolated into a command
 * sent to a remote shell goes through `shq` (or the `sh` template tag, which applies it).
 */

/** Quote one value for a POSIX shell: safe for any byte string, including quotes and newlines. */
export function shq(value: string | number | boolean): string {
  const s = String(value);
  if (s.includes('\0')) throw new TypeError('shell values cannot contain NUL bytes');
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote each value and join them with spaces (argv → command line). */
export function shJoin(argv: ReadonlyArray<string | number | boolean>): string {
  return argv.map(shq).join(' ');
}

/**
 * Template tag: literal parts are trusted command text, every interpolated value is quoted.
 * Arrays are quoted element by element and joined with spaces.
 *   sh`sudo install -m 0755 ${src} ${dest}`
 */
export function sh(
  strings: TemplateStringsArray,
  ...values: Array<string | number | boolean | ReadonlyArray<string | number | boolean>>
): string {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += Array.isArray(v) ? shJoin(v as ReadonlyArray<string>) : shq(v as string);
    out += strings[i + 1] ?? '';
  });
  return out;
}
