/**
 * Fake steps for tests of the real CLI (spawnCli's `steps` option, or CliIo.buildSteps in-process). They leave
 * marker files instead of touching Proxmox, so a test can see what ran:
 *   <FAKE_STEPS_DIR>/<id>.done     the step's work (check looks for it)
 *   <FAKE_STEPS_DIR>/runs.log      one line per run() call
 *   <FAKE_STEPS_DIR>/<id>.started  run() began (for kill / Ctrl-C tests)
 * Controls (environment): FAKE_STEPS_FAIL=<id> fails that step's run; FAKE_STEPS_HANG=<id> makes
 * its run wait until aborted (or FAKE_STEPS_HANG_MS ms, default 60000).
 * DAG: a → b → c → e, a → d → e (d is independent of b and c).
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../../src/config/schema.js';
import { AbortedError, RemoteError } from '../../src/errors.js';
import type { RunOptions, Step, StepContext } from '../../steps/types.js';

export const FAKE_SECRET = 'k3s-token-0123456789abcdef-SECRET';

export function buildSteps(config: Config, _options: RunOptions): Step[] {
  const dir = process.env.FAKE_STEPS_DIR;
  if (!dir) throw new Error('FAKE_STEPS_DIR is not set');
  mkdirSync(dir, { recursive: true });
  const make = (id: string, needs: string[], inputs: unknown, extra: Partial<Step> = {}): Step => ({
    id,
    title: `Fake step ${id}`,
    group: 'fake',
    needs,
    inputs,
    describe: () => `do fake thing ${id} for ${config.cluster.name}`,
    async check() {
      const marker = join(dir, `${id}.done`);
      return existsSync(marker) ? { done: true, outputs: { id, marker } } : { done: false };
    },
    async run(ctx: StepContext) {
      appendFileSync(join(dir, 'runs.log'), `${id}\n`);
      writeFileSync(join(dir, `${id}.started`), String(process.pid));
      ctx.log(`working on ${id}`);
      if (process.env.FAKE_STEPS_HANG === id) {
        try {
          await delay(Number(process.env.FAKE_STEPS_HANG_MS ?? 60000), undefined, { signal: ctx.signal });
        } catch {
          throw new AbortedError();
        }
      }
      if (process.env.FAKE_STEPS_FAIL === id)
        throw new RemoteError(`fake failure in ${id}`, { fix: `unset FAKE_STEPS_FAIL`, detail: 'remote said no' });
      writeFileSync(join(dir, `${id}.done`), '');
      return { id, ranAt: Date.now() };
    },
    ...extra,
  });
  return [
    make('a', [], config.cluster.name, {
      async run(ctx) {
        appendFileSync(join(dir, 'runs.log'), 'a\n');
        const token = ctx.services.secrets.getOrCreate('k3s-token', () => FAKE_SECRET);
        ctx.log(`joining with token ${token} and proxmox secret ${ctx.config.proxmox.tokenSecret ?? ''}`);
        writeFileSync(join(dir, 'a.done'), '');
        return { id: 'a' };
      },
    }),
    make('b', ['a'], config.cluster.name, {
      async check(ctx) {
        if (!ctx.outputs('a')) throw new Error('b: outputs of a are missing');
        return existsSync(join(dir, 'b.done')) ? { done: true } : { done: false };
      },
    }),
    make('c', ['b'], config.nodes.servers),
    make('d', ['a'], config.nodes.agents.count),
    make('e', ['c', 'd'], config.apps),
  ];
}
