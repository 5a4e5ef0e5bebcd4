/**
 * Reading the in-cluster Stack (pulumi.com/v1) the operator reconciles: is it in sync, updating, or did
 * its last update fail? Pure, so the wait step, `status` and the tests share one reading.
 */
import { shq } from '../shell/quote.js';
import { OPERATOR_STACK } from './programs/operator.js';
import { PULUMI_OPERATOR } from './programs/infra-bootstrap.js';

/** The operator's annotation that asks for a new update even when nothing changed. */
export const RECONCILE_REQUEST_ANNOTATION = 'pulumi.com/reconciliation-request';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** The fields of a Stack object read here (kubectl get stacks.pulumi.com … -o json). */
export interface StackObject {
  metadata?: { generation?: number; annotations?: Record<string, string> };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    currentUpdate?: { name?: string; generation?: number };
    lastUpdate?: {
      name?: string;
      state?: string;
      message?: string;
      generation?: number;
      failures?: number;
      reconcileRequest?: string;
      lastResyncTime?: string;
    };
  };
}

export type StackSyncState = 'synced' | 'updating' | 'failed' | 'pending' | 'missing';

export interface StackSync {
  state: StackSyncState;
  /** One line for the progress display and `status`. */
  message: string;
  lastUpdate?: string;
}

/**
 * In sync = the operator observed the current generation, its Ready condition is True and the last
 * update (for the current generation, and for `request` when a re-apply was asked for) succeeded.
 */
export function stackSync(obj: StackObject | undefined, request?: string): StackSync {
  if (!obj) return { state: 'missing', message: `the Stack ${OPERATOR_STACK.name} does not exist (yet)` };
  const gen = obj.metadata?.generation;
  const st = obj.status ?? {};
  const ready = st.conditions?.find((c) => c.type === 'Ready');
  const last = st.lastUpdate;
  const forThis = (g?: number) => gen === undefined || g === undefined || g === gen;
  const requested = !request || last?.reconcileRequest === request;
  if (st.currentUpdate?.name) return { state: 'updating', message: `update ${st.currentUpdate.name} is running`, lastUpdate: last?.name };
  if (st.observedGeneration === gen && ready?.status === 'True' && last?.state === 'succeeded' && forThis(last.generation) && requested) {
    return { state: 'synced', message: `in sync (last update ${last.name ?? '?'} succeeded)`, lastUpdate: last.name };
  }
  if (last?.state === 'failed' && forThis(last.generation) && requested) {
    const n = last.failures
      ? ` (${last.failures} failure${last.failures === 1 ? '' : 's'}; the operator retries)`
      : ' (the operator retries)';
    return {
      state: 'failed',
      message: `last update ${last.name ?? '?'} failed: ${oneLine(last.message ?? ready?.message ?? 'no message')}${n}`,
      lastUpdate: last.name,
    };
  }
  const why =
    ready?.message ||
    ready?.reason ||
    (st.observedGeneration === undefined ? 'not picked up by the operator yet' : 'waiting for the operator');
  return { state: 'pending', message: oneLine(why), lastUpdate: last?.name };
}

function oneLine(s: string): string {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > 300 ? `${l.slice(0, 297)}…` : l;
}

const KUBECTL = 'sudo /opt/bin/k3s kubectl';

/** The command that reads the Stack on a server (k3s' kubectl, as the node steps read nodes). */
export function getStackCommand(): string {
  return `${KUBECTL} -n ${shq(PULUMI_OPERATOR.namespace)} get stacks.pulumi.com ${shq(OPERATOR_STACK.name)} -o json --ignore-not-found`;
}

/** The command that asks the operator for a new update now (`apps` re-applies). */
export function reconcileRequestCommand(value: string): string {
  return `${KUBECTL} -n ${shq(PULUMI_OPERATOR.namespace)} annotate stacks.pulumi.com ${shq(OPERATOR_STACK.name)} ${shq(`${RECONCILE_REQUEST_ANNOTATION}=${value}`)} --overwrite`;
}

/** kubectl's answer: empty (with --ignore-not-found) = no Stack; unparsable = unknown. */
export function parseStackJson(stdout: string): StackObject | undefined | 'unreadable' {
  if (!stdout.trim()) return undefined;
  try {
    return JSON.parse(stdout) as StackObject;
  } catch {
    return 'unreadable';
  }
}
