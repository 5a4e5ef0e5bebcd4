/**
 * k3s's secure token: `K10<sha256 of the cluster CA certificate>::server:<secret>`. A node given this form
 * fetches the server's CA (/cacerts) and refuses to join, before it sends the secret, when the hash
 * differs: it joins this cluster and no other machine that answers at the address. The first server is
 * given the bare secret (it creates the CA); the others get the secure form once its CA hash is known.
 */

/** Where a k3s server keeps the cluster's server CA certificate. */
export const K3S_SERVER_CA_PATH = '/var/lib/rancher/k3s/server/tls/server-ca.crt';

/** Pin key of the cluster CA hash in the state (cleared only by `forget-host-key k3s.ca`). */
export const PIN_K3S_CA = 'k3s.ca';

const HASH = /^[0-9a-f]{64}$/;

export function isCaHash(s: string): boolean {
  return HASH.test(s);
}

/** The secure token for joining a cluster whose CA certificate has this sha256 (hex). */
export function secureToken(caHash: string, secret: string): string {
  if (!isCaHash(caHash)) throw new Error(`not a sha256 hex digest: ${caHash.slice(0, 80)}`);
  return `K10${caHash}::server:${secret}`;
}

/** The parts of a k3s token: the CA hash (secure form only) and the secret. */
export function parseToken(token: string): { caHash?: string; secret: string } {
  const m = /^K10([0-9a-f]{64})::[^:]+:(.+)$/.exec(token);
  return m ? { caHash: m[1]!, secret: m[2]! } : { secret: token };
}
