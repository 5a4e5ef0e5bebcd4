/**
 * Import a module another part of the project provides (the UI, the demo) on first use, so commands that
 * do not need it start fast. Pass a literal `() => import('../x.js')`: the bundler (scripts/build.ts) then
 * puts the module in its own chunk. A copy that lacks the chunk says so instead of a bare module error.
 */
import { BugError } from '../errors.js';

export async function importLazy<T>(load: () => Promise<unknown>, what: string): Promise<T> {
  try {
    return (await load()) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new BugError(`This build of flatcar-k3s lacks ${what}`, {
        fix: 'Update flatcar-k3s (or run "npm run build" in a checkout); this part is missing from this copy.',
        cause: err,
      });
    }
    throw err;
  }
}
