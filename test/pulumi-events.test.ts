import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { EngineEvent } from '@pulumi/pulumi/automation/index.js';
import { describeEngineEvent, engineEventSink, stripColor, urnName, type LogLine } from '../src/pulumi/events.js';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/pulumi/engine-events.json', import.meta.url), 'utf8')) as {
  firstUp: EngineEvent[];
  failedUp: EngineEvent[];
};

function collect(events: EngineEvent[], expectedSteps?: number) {
  const lines: LogLine[] = [];
  const progress: Array<{ message: string; fraction?: number }> = [];
  const sink = engineEventSink({
    log: (line, level) => lines.push({ line, level }),
    progress: (message, fraction) => progress.push({ message, fraction }),
    expectedSteps,
  });
  for (const e of events) sink(e);
  return { lines, progress };
}

test('a first up streams resource starts, completions, provider status and the summary', () => {
  const { lines } = collect(fixture.firstUp);
  const visible = lines.filter((l) => l.level !== 'debug');
  assert.deepEqual(visible, [
    { line: 'Pulumi: computing changes', level: 'info' },
    { line: '+ creating provider kubernetes k3s', level: 'info' },
    { line: '✓ created provider kubernetes k3s', level: 'info' },
    { line: '+ creating Namespace kured', level: 'info' },
    { line: '✓ created Namespace kured', level: 'info' },
    { line: '+ creating Release kured', level: 'info' },
    { line: 'kured: [1/2] Waiting for DaemonSet kured/kured to be ready', level: 'info' },
    {
      line: 'kured: Helm release "kured" was created but has a failed status. Use the `helm` command to investigate the error, correct it, then retry.',
      level: 'warn',
    },
    { line: '✓ created Release kured', level: 'info' },
    { line: 'Pulumi: done in 42 s — 4 created, 1 unchanged', level: 'info' },
  ]);
  assert.deepEqual(
    lines.filter((l) => l.level === 'debug').map((l) => l.line),
    ['= Plan server-plan unchanged'],
    'unchanged resources are kept out of the live pane',
  );
  for (const l of lines) assert.doesNotMatch(l.line, /<\{%|\u001b\[/, 'no colour markup reaches the UI');
});

test('a failed up reports the failing resource and the provider error as errors', () => {
  const { lines } = collect(fixture.failedUp);
  const errors = lines.filter((l) => l.level === 'error').map((l) => l.line);
  assert.deepEqual(errors, [
    'kured: 1 error occurred:',
    'kured: * Helm release "kured/kured" failed to upgrade: context deadline exceeded',
    '✗ update failed: Release kured',
    'update failed',
  ]);
  assert.equal(lines.at(-1)?.line, 'Pulumi: done in 301 s — 2 unchanged');
});

test('progress counts changed resources, not unchanged ones or the stack', () => {
  const { progress } = collect(fixture.firstUp, 3);
  assert.deepEqual(progress, [
    { message: '1/3 resources changed', fraction: 1 / 3 },
    { message: '2/3 resources changed', fraction: 2 / 3 },
    { message: '3/3 resources changed', fraction: 1 },
  ]);
  const unknownTotal = collect(fixture.firstUp).progress;
  assert.equal(unknownTotal.length, 3);
  assert.equal(unknownTotal[0].fraction, undefined);
});

test('a summary that may be corrupt warns, and helpers strip markup and names', () => {
  const lines = describeEngineEvent({
    sequence: 1,
    timestamp: 1,
    summaryEvent: { maybeCorrupt: true, durationSeconds: 3, resourceChanges: {}, policyPacks: {} },
  });
  assert.equal(lines[0].line, 'Pulumi: done in 3 s');
  assert.equal(lines[1].level, 'warn');
  assert.equal(stripColor('<{%fg 1%}>x\u001b[0m<{%reset%}>'), 'x');
  assert.equal(urnName('urn:pulumi:s::p::pulumi:pulumi:Stack$kubernetes:helm.sh/v3:Release::cert-manager'), 'cert-manager');
  assert.deepEqual(describeEngineEvent({ sequence: 2, timestamp: 2, cancelEvent: {} }), []);
});
