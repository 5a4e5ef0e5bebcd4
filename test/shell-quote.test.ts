/**
 * src/shell/quote.ts: quoted values must reach the program byte-identical through a real POSIX shell
 * (/bin/sh: dash on Debian) and through bash, and must never be interpreted.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sh, shJoin, shq } from '../src/shell/quote.js';
import { splitShellWords } from '../src/shell/split.js';

const NASTY: string[] = [
  '',
  ' ',
  'plain',
  'two words',
  "it's",
  "''",
  '"double"',
  '$HOME',
  '${HOME}',
  '$(touch PWNED)',
  '`touch PWNED`',
  'a;touch PWNED',
  'a && touch PWNED',
  'a | cat',
  'line1\nline2',
  '\n',
  'trailing newline\n',
  'tab\there',
  'back\\slash',
  '\\',
  '*',
  '?',
  '[a-z]*',
  '~',
  '~root',
  '-n',
  '-e',
  '--',
  '#comment',
  'a=b',
  '!',
  '!!',
  '{a,b}',
  '<in >out',
  'ünïcødé ✓ 🐧',
  'mixed \'single\' and "double" and $(sub) and `tick`',
  '\x01\x7f\x1b[31m',
  "'$(touch PWNED)'",
];

const shells = ['/bin/sh', '/bin/bash'].filter((s) => existsSync(s));
const cwd = mkdtempSync(join(tmpdir(), 'fk3s-quote-'));
after(() => rmSync(cwd, { recursive: true, force: true }));

/** Run a command line in a real shell; printf prints each argument followed by a NUL. */
function throughShell(shell: string, commandLine: string): Buffer {
  return execFileSync(shell, ['-c', commandLine], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' } });
}

describe('shell quoting round-trips through a real shell', () => {
  for (const shell of shells) {
    it(`${shell}: every nasty value comes out byte-identical, nothing is executed`, () => {
      for (const v of NASTY) {
        const out = throughShell(shell, `printf '%s\\0' ${shq(v)}`);
        assert.ok(out.equals(Buffer.from(v + '\0', 'utf8')), `${JSON.stringify(v)} came out as ${JSON.stringify(out.toString('utf8'))}`);
      }
      assert.deepEqual(readdirSync(cwd), [], 'no command substitution ran');
    });

    it(`${shell}: shJoin keeps arguments separate (empty ones too)`, () => {
      const out = throughShell(shell, `printf '%s\\0' ${shJoin(NASTY)}`);
      assert.deepEqual(out.toString('utf8').split('\0').slice(0, -1), NASTY);
    });

    it(`${shell}: the sh tag quotes values (and arrays element by element) but keeps literal text as command text`, () => {
      const file = "it's a $(file).txt";
      const cmd = sh`printf '%s\\0' ${file} ${['a b', '', '$x']} literal; echo ${'end'} | tr a-z A-Z`;
      const out = throughShell(shell, cmd).toString('utf8');
      assert.equal(out, `${file}\0a b\0\0$x\0literal\0END\n`);
    });

    it(`${shell}: values stay intact inside sh -c given as a quoted argument (double quoting)`, () => {
      for (const v of NASTY) {
        const inner = sh`printf '%s' ${v}`;
        const out = throughShell(shell, sh`sh -c ${inner}`);
        assert.equal(out.toString('utf8'), v);
      }
      assert.deepEqual(readdirSync(cwd), []);
    });
  }

  it('leaves safe words bare and quotes everything else', () => {
    assert.equal(shq('abc-1.2_3/x:y@z,w=v+u%'), 'abc-1.2_3/x:y@z,w=v+u%');
    assert.equal(shq(''), "''");
    assert.equal(shq('a b'), "'a b'");
    assert.equal(shq("it's"), "'it'\\''s'");
    assert.equal(shq(42), '42');
    assert.equal(shq(true), 'true');
  });

  it('refuses NUL bytes (a shell argument cannot hold them)', () => {
    assert.throws(() => shq('a\0b'), TypeError);
  });
});

describe("splitShellWords (the simulated hosts' shell) is the inverse of shJoin", () => {
  it('gives back every value shJoin quoted, as a real shell would', () => {
    for (const v of NASTY) assert.deepEqual(splitShellWords(shJoin(['cmd', v, 'x'])), ['cmd', v, 'x'], JSON.stringify(v));
    for (const shell of shells) {
      const line = `printf '%s\\0' ${shJoin(NASTY)}`;
      const real = throughShell(shell, line).toString('utf8').split('\0').slice(0, -1);
      assert.deepEqual(splitShellWords(line)!.slice(2), real);
    }
  });

  it('splits double quotes and backslashes as POSIX does', () => {
    assert.deepEqual(splitShellWords('a "b \\" c\\$" d\\ e'), ['a', 'b " c$', 'd e']);
    assert.deepEqual(splitShellWords("  sudo  -n   'x y'  "), ['sudo', '-n', 'x y']);
  });

  it('refuses shell syntax the simulated hosts do not run (null)', () => {
    for (const line of ['a | b', 'a; b', 'a && b', 'echo $HOME', 'echo "$HOME"', 'a > f', 'echo `x`', "echo 'open", 'ls *']) {
      assert.equal(splitShellWords(line), null, line);
    }
  });
});
