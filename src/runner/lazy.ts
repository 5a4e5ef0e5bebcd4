/**
 * Import a module another part of the project provides (UI, demo, Proxmox/SSH clients) through a
 * non-literal specifier: heavy modules load only when needed, and this code typechecks before
 * those modules exist. Pass `new URL('../x.js', import.meta.url)` so it resolves from the caller.
 */
import { BugError } from '../errors.js';

export async function importLazy<T>(url: URL, what: string): Promise<T> {
  try {
    return (await import(url.href)) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(url.pathname.replace(/\.js$/, ''))) {
      throw new BugError(`This build of flatcar-k3s lacks ${what} (${url.pathname})`, {
        fix: 'Update flatcar-k3s (or run "npm run build" in a checkout); this part is missing from this copy.',
        cause: err,
      });
    }
    throw err;
  }
}
