/**
 * The Node.js version check, run by the bin entry before anything else is loaded (and by `npm test`).
 * This module must import nothing and use only syntax Node 20 can run: on an older Node the
 * dependencies fail with errors that look like our bugs (undici 8 needs Node 22 APIs).
 */
export const MIN_NODE_MAJOR = 22;

/** The message for a Node.js that is too old, or undefined when `version` (e.g. "20.11.1") is new enough. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (Number.isFinite(major) && major >= MIN_NODE_MAJOR) return undefined;
  return (
    `flatcar-k3s needs Node.js >= ${MIN_NODE_MAJOR} (this is v${version.replace(/^v/, '')}).\n` +
    `Install Node.js ${MIN_NODE_MAJOR} or newer: https://nodejs.org/en/download (or with a version manager: ` +
    `"nvm install ${MIN_NODE_MAJOR}", "fnm install ${MIN_NODE_MAJOR}"), then run the command again.`
  );
}
