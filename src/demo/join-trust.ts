/**
 * How a demo k3s node checks the token it joins with, as k3s does: the secret must be the cluster's, and
 * a secure token (`K10<hash>::server:<secret>`) must name the sha256 of the CA the server presents.
 */
import { createHash } from 'node:crypto';
import { parseToken } from '../k3s/token.js';

/** The cluster CA certificate as the demo servers keep it (server-ca.crt, kubeconfig). */
export function demoCaPem(caData: string): string {
  return `-----BEGIN CERTIFICATE-----\n${caData}\n-----END CERTIFICATE-----\n`;
}

/** k3s's journal line when the join is refused, or undefined when the token fits the cluster. */
export function joinRefusal(cluster: { token: string; caData: string }, token: string): string | undefined {
  const given = parseToken(token);
  if (given.caHash !== undefined && given.caHash !== createHash('sha256').update(demoCaPem(cluster.caData)).digest('hex')) {
    return 'starting kubernetes: preparing server: failed to validate token: token CA hash does not match the Cluster CA certificate hash';
  }
  if (given.secret !== parseToken(cluster.token).secret)
    return 'starting kubernetes: preparing server: failed to validate token: invalid token';
  return undefined;
}
