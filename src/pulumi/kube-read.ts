/**
 * One read of the in-cluster Stack through the Kubernetes API, with the kubeconfig `up` wrote (its CA
 * pinned, its client certificate or token): what `status` uses to say whether the operator's Stack is in
 * sync, without SSH. Only GET, one object, short timeout.
 */
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { OPERATOR_STACK } from './programs/operator.js';
import { PULUMI_OPERATOR } from './programs/infra-bootstrap.js';
import type { StackObject } from './operator-status.js';

interface KubeconfigCreds {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
}

const b64 = (s: unknown) => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);

/** The current context's server and credentials (inline *-data fields, as k3s writes them). */
export function kubeconfigCreds(text: string): KubeconfigCreds {
  const kc = parse(text) as {
    'current-context'?: string;
    contexts?: Array<{ name: string; context: { cluster: string; user: string } }>;
    clusters?: Array<{ name: string; cluster: { server: string; 'certificate-authority-data'?: string } }>;
    users?: Array<{ name: string; user: { 'client-certificate-data'?: string; 'client-key-data'?: string; token?: string } }>;
  };
  const ctx = kc.contexts?.find((c) => c.name === kc['current-context']) ?? kc.contexts?.[0];
  const cluster = kc.clusters?.find((c) => c.name === ctx?.context.cluster) ?? kc.clusters?.[0];
  const user = kc.users?.find((u) => u.name === ctx?.context.user) ?? kc.users?.[0];
  if (!cluster?.cluster.server) throw new Error('the kubeconfig names no cluster server');
  return {
    server: cluster.cluster.server,
    ca: b64(cluster.cluster['certificate-authority-data']),
    cert: b64(user?.user['client-certificate-data']),
    key: b64(user?.user['client-key-data']),
    token: user?.user.token,
  };
}

export const STACK_PATH = `/apis/pulumi.com/v1/namespaces/${PULUMI_OPERATOR.namespace}/stacks/${OPERATOR_STACK.name}`;

/** GET the Stack: the object, undefined when it does not exist; throws when the cluster cannot be asked. */
export function readStackViaApi(kubeconfigPath: string, opts: { timeoutMs?: number } = {}): Promise<StackObject | undefined> {
  const creds = kubeconfigCreds(readFileSync(kubeconfigPath, 'utf8'));
  const url = new URL(STACK_PATH, creds.server);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        // The cluster's own CA from the kubeconfig: the API server's certificate is verified against it.
        ca: creds.ca,
        cert: creds.cert,
        key: creds.key,
        headers: { accept: 'application/json', ...(creds.token ? { authorization: `Bearer ${creds.token}` } : {}) },
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 404) return resolve(undefined);
          if (res.statusCode !== 200) return reject(new Error(`the Kubernetes API answered ${res.statusCode}: ${body.slice(0, 200)}`));
          try {
            resolve(JSON.parse(body) as StackObject);
          } catch {
            reject(new Error('the Kubernetes API answered with something that is not JSON'));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${opts.timeoutMs ?? 5000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface OperatorStackStatus {
  /** synced / updating / failed / pending / missing, or unknown when the cluster could not be asked. */
  state: string;
  message: string;
  /** Read from the cluster now (false: from the last run's record). */
  live: boolean;
}

/** For `status`: the Stack's sync state now, falling back to what the last run recorded. */
export async function operatorStackStatus(
  kubeconfigPath: string | undefined,
  recorded: { state?: unknown; lastUpdate?: unknown } | undefined,
  read = readStackViaApi,
): Promise<OperatorStackStatus> {
  const { stackSync } = await import('./operator-status.js');
  const last = recorded?.state
    ? `at the last run: ${String(recorded.state)}${recorded.lastUpdate ? ` (update ${String(recorded.lastUpdate)})` : ''}`
    : 'never checked';
  if (!kubeconfigPath) return { state: 'unknown', message: `no kubeconfig recorded; ${last}`, live: false };
  try {
    const sync = stackSync(await read(kubeconfigPath));
    return { state: sync.state, message: sync.message, live: true };
  } catch (err) {
    return { state: 'unknown', message: `could not ask the cluster (${(err as Error).message}); ${last}`, live: false };
  }
}
