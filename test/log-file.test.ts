/** The log file under a flood: every line, in order, each with its own event's timestamp, secrets redacted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunEvents } from '../src/events.js';
import { Redactor } from '../src/log/redact.js';
import { LogFile } from '../src/log/file.js';
import { tempDir } from './helpers/cli.js';

test('log file: lines sharing a millisecond and lines of others keep their own timestamps, in order, redacted', () => {
  const t = tempDir('fk3s-logfile-');
  try {
    const r = new Redactor();
    r.add('hunter2-password');
    const path = join(t.dir, 'run.log');
    const log = new LogFile(path, r);
    const events = new RunEvents();
    log.attach(events);
    const t0 = Date.UTC(2026, 0, 2, 3, 4, 5);
    events.emitEvent({ type: 'step', id: 's', title: 'Step', group: 'g', status: 'running', at: t0 });
    for (let i = 0; i < 3; i++)
      events.emitEvent({ type: 'log', id: 's', group: 'g', line: `a${i} hunter2-password`, level: 'info', at: t0 });
    events.emitEvent({ type: 'log', id: 's', group: 'g', line: 'b', level: 'warn', at: t0 + 1 });
    events.emitEvent({ type: 'log', id: 's', group: 'g', line: 'c', level: 'info', at: t0 });
    events.emitEvent({ type: 'step', id: 's', title: 'Step', group: 'g', status: 'done', via: 'run', at: t0 + 2 });
    log.close();
    assert.equal(
      readFileSync(path, 'utf8'),
      [
        '2026-01-02T03:04:05.000Z running  s  Step',
        '2026-01-02T03:04:05.000Z   s: a0 ***',
        '2026-01-02T03:04:05.000Z   s: a1 ***',
        '2026-01-02T03:04:05.000Z   s: a2 ***',
        '2026-01-02T03:04:05.001Z   s: warn: b',
        '2026-01-02T03:04:05.000Z   s: c',
        '2026-01-02T03:04:05.002Z done     s  Step',
        '',
      ].join('\n'),
    );
  } finally {
    t.cleanup();
  }
});
