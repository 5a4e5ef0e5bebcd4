/**
 * apps:operator (operator mode) — infra-bootstrap handed the operator a Program and a Stack; this step
 * waits until the Stack's last update succeeded, showing the operator's progress. Under `apps` it first
 * asks the operator for a new update (reconciliation request), so `apps` re-applies even when nothing
 * changed. The Stack is read on the first server with k3s' kubectl, as the node steps read nodes.
 */
import type { Config } from '../../src/config/schema.js';
import { RemoteError } from '../../src/errors.js';
import {
  getStackCommand,
  parseStackJson,
  reconcileRequestCommand,
  stackSync,
  type StackObject,
  type StackSync,
} from '../../src/pulumi/operator-status.js';
import { OPERATOR_STACK } from '../../src/pulumi/programs/operator.js';
import { PULUMI_OPERATOR } from '../../src/pulumi/programs/infra-bootstrap.js';
import { STEP } from '../ids.js';
import { firstServer, withNode } from '../nodes/common.js';
import { pollUntil } from '../shared.js';
import type { CheckResult, Step, StepContext, StepOutputs } from '../types.js';
import { DEMO_NO_API_REASON } from './stack.js';
import { enabledApps, INFRA_APPS } from './names.js';

/** How the step talks to the cluster; tests pass fakes. */
export interface StackAccess {
  /** The Stack object, undefined when it does not exist, 'unreadable' when kubectl failed. */
  read(ctx: StepContext): Promise<StackObject | undefined | 'unreadable'>;
  requestReconcile(ctx: StepContext, value: string): Promise<void>;
}

export function sshStackAccess(config: Config): StackAccess {
  const first = firstServer(config).name;
  return {
    read: (ctx) =>
      withNode(ctx, first, async (s) => {
        const r = await s.exec(getStackCommand(), { signal: ctx.signal, timeoutMs: 60_000 });
        return r.code === 0 ? parseStackJson(r.stdout) : 'unreadable';
      }),
    requestReconcile: (ctx, value) =>
      withNode(ctx, first, async (s) => {
        const r = await s.exec(reconcileRequestCommand(value), { signal: ctx.signal, timeoutMs: 60_000 });
        if (r.code !== 0)
          throw new RemoteError(`Could not ask the operator to re-apply the Stack ${OPERATOR_STACK.name}`, { detail: r.stderr.trim() });
      }),
  };
}

/** The operator's first update installs every app (charts, CRDs, storage), so it gets time. */
export const OPERATOR_WAIT_MS = 30 * 60_000;

export class AppsOperatorStep implements Step {
  readonly id = STEP.appsOperator;
  readonly title = 'Cluster apps, applied by the Pulumi operator';
  readonly group = 'apps';
  needs: string[] = [STEP.appsBootstrap];
  readonly inputs: unknown;
  /** Set for `flatcar-k3s apps`: ask for a new update even when the Stack is in sync. */
  reapply = false;
  constructor(
    private readonly config: Config,
    private readonly access: StackAccess = sshStackAccess(config),
  ) {
    const a = config.apps;
    this.inputs = {
      mode: a.mode,
      source: a.source,
      backend: a.backend,
      apps: Object.fromEntries(INFRA_APPS.map((k) => [k, a[k]])),
      k3sVersion: config.cluster.k3sVersion,
    };
  }

  describe(_ctx: StepContext): string {
    const a = this.config.apps;
    const what = a.source.git
      ? `the program in ${a.source.git.url} (${a.source.git.branch}, ${a.source.git.dir})`
      : enabledApps(a, INFRA_APPS).join(', ');
    const backend = a.backend.url ?? `a ${a.backend.size} volume in the cluster (PVC ${OPERATOR_STACK.statePvc})`;
    return `Wait until the Pulumi operator has applied ${what} (Stack ${PULUMI_OPERATOR.namespace}/${OPERATOR_STACK.name}, state in ${backend})`;
  }

  async check(ctx: StepContext): Promise<CheckResult> {
    if (ctx.options.demo) return { skip: true, reason: DEMO_NO_API_REASON };
    if (this.reapply) return { done: false, reason: 're-apply requested' };
    const obj = await this.access.read(ctx).catch(() => 'unreadable' as const);
    if (obj === 'unreadable') return { done: false, reason: 'the Stack could not be read' };
    const sync = stackSync(obj);
    if (sync.state === 'synced') return { done: true, outputs: this.outputs(sync), reason: sync.message };
    return { done: false, reason: sync.message };
  }

  async run(ctx: StepContext): Promise<StepOutputs> {
    let request: string | undefined;
    if (this.reapply) {
      request = new Date(ctx.services.now()).toISOString();
      await this.access.requestReconcile(ctx, request);
      ctx.log(`Asked the operator to re-apply the Stack ${OPERATOR_STACK.name} (${request})`);
    }
    let last = '';
    let latest: StackSync | undefined;
    const sync = await pollUntil(
      ctx,
      `the Pulumi operator to apply the Stack ${OPERATOR_STACK.name}`,
      async () => {
        const obj = await this.access.read(ctx).catch(() => 'unreadable' as const);
        latest =
          obj === 'unreadable' ? { state: 'pending', message: 'the Stack could not be read; trying again' } : stackSync(obj, request);
        if (latest.message !== last) {
          ctx.progress(`Stack ${OPERATOR_STACK.name}: ${latest.message}`);
          ctx.log(`Stack ${OPERATOR_STACK.name}: ${latest.message}`, latest.state === 'failed' ? 'warn' : 'info');
          last = latest.message;
        }
        return latest.state === 'synced' ? latest : undefined;
      },
      {
        timeoutMs: OPERATOR_WAIT_MS,
        fix:
          `Look at the Stack and its workspace: \`kubectl -n ${PULUMI_OPERATOR.namespace} describe stack ${OPERATOR_STACK.name}\` and ` +
          `\`kubectl -n ${PULUMI_OPERATOR.namespace} logs statefulset/${OPERATOR_STACK.name}-workspace\`. The operator keeps retrying; run again to wait for it.`,
        onTimeout: async () => latest?.message,
      },
    );
    ctx.log(`Stack ${OPERATOR_STACK.name}: ${sync.message}`);
    return this.outputs(sync);
  }

  private outputs(sync: StackSync): StepOutputs {
    return { stack: `${PULUMI_OPERATOR.namespace}/${OPERATOR_STACK.name}`, lastUpdate: sync.lastUpdate ?? null, state: sync.state };
  }
}
