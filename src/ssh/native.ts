/**
 * Whether ssh2's native crypto binding is active in this Node. Without it ssh2 creates a JavaScript
 * cipher per packet (about a third of the CPU of a big install). The binding is built for the Node
 * that installs the package by scripts/ssh2-native.cjs (postinstall); the run log says which is in use.
 */
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

export interface NativeCrypto {
  active: boolean;
  /** One line for the log. */
  line: string;
}

let cached: NativeCrypto | undefined;

export function nativeCryptoStatus(): NativeCrypto {
  if (cached) return cached;
  let active = false;
  try {
    active = (requireHere('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean }).bindingAvailable === true;
  } catch {
    active = false;
  }
  if (active) return (cached = { active, line: `ssh2 native crypto: active (Node ${process.version})` });
  let why = 'not built';
  try {
    requireHere('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
  } catch (err) {
    why = String((err as Error).message)
      .split('\n')[0]!
      .replace(/'[^']*sshcrypto\.node'/, 'sshcrypto.node');
  }
  return (cached = {
    active,
    line: `ssh2 native crypto: inactive in Node ${process.version} (${why}); SSH works but costs more CPU. Fix: \`node scripts/ssh2-native.cjs\` in the flatcar-k3s package directory (npm rebuild with this Node).`,
  });
}
