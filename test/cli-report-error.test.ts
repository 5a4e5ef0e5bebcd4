import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { reportError } from '../src/cli/main.js';
import { BugError, RemoteError, UserError } from '../src/errors.js';
import type { CliIo } from '../src/cli/io.js';

function io(): { io: CliIo; err: () => string } {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (c) => (text += String(c)));
  const stdout = new PassThrough();
  return { io: { stdin: new PassThrough(), stdout, stderr, env: {}, cwd: '/' } as unknown as CliIo, err: () => text };
}

test('a remote refusal is reported with its detail and fix, not as a bug, exit 1', () => {
  const t = io();
  const code = reportError(
    new RemoteError('Proxmox task clone failed: got timeout', { detail: 'task log tail', fix: 'Run up again.' }),
    t.io,
    '/tmp/run.log',
  );
  assert.equal(code, 1);
  assert.match(t.err(), /^flatcar-k3s: Proxmox task clone failed: got timeout\ntask log tail\nFix: Run up again\.\nLog: \/tmp\/run\.log/);
  assert.doesNotMatch(t.err(), /bug/);
});

test('user errors exit 2 with the fix; unknown errors and BugErrors ask for a bug report with the log path', () => {
  const u = io();
  assert.equal(reportError(new UserError('bad value', { fix: 'set x' }), u.io), 2);
  assert.match(u.err(), /Fix: set x/);
  for (const e of [new BugError('oops'), new TypeError('undefined is not a function')]) {
    const b = io();
    assert.equal(reportError(e, b.io, '/tmp/run.log'), 1);
    assert.match(b.err(), /hit a bug/);
    assert.match(b.err(), /\/tmp\/run\.log/);
  }
});
