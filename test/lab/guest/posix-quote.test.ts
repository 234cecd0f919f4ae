import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isShellCommand, sh, shArgv, shQuote } from '../../../src/lab/guest/posix-quote.ts';

/** Runs `script` in the local POSIX sh (dash on Debian) and returns its stdout. */
function run(script: string): string {
  return execFileSync('/bin/sh', ['-c', script], { encoding: 'latin1' });
}

describe('shQuote', () => {
  it('makes any NUL-free string reach the shell unchanged (property, checked with /bin/sh)', () => {
    // One shell per batch keeps this fast: each value is printed NUL-terminated.
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }).filter((s) => !s.includes('\0')), { minLength: 1, maxLength: 40 }), (values) => {
        const bytes = values.map((v) => Buffer.from(v, 'utf8').toString('latin1'));
        const out = run(`printf '%s\\0' ${values.map(shQuote).join(' ')}`);
        expect(out.split('\0').slice(0, -1)).toEqual(bytes);
      }),
      { numRuns: 60 },
    );
  });

  it('quotes the classic injection attempts as plain words', () => {
    const nasty = ["'; touch /tmp/x; '", '$(id)', '`id`', '$HOME', 'a\nb', '-e', '*', '\\', '"', "''"];
    expect(run(`printf '%s\\n' ${nasty.map(shQuote).join(' ')}`)).toBe(nasty.map((n) => `${n}\n`).join(''));
  });

  it('refuses a NUL byte instead of cutting the value', () => {
    expect(() => shQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('sh and shArgv', () => {
  it('quote every interpolation, spread arrays as words, and embed built commands as-is', () => {
    const inner = sh`echo ${'a b'}`;
    const cmd = sh`${inner}; printf '%s|' ${['x y', "z'"]} ${42}`;
    expect(isShellCommand(cmd)).toBe(true);
    expect(cmd.script).toBe(`echo 'a b'; printf '%s|' 'x y' 'z'\\''' '42'`);
    expect(run(cmd.script)).toBe("a b\nx y|z'|42|");
  });

  it('build a command from an argument vector', () => {
    expect(run(shArgv(['printf', '%s-', '$(x)', 'two words']).script)).toBe('$(x)-two words-');
    expect(() => shArgv([])).toThrow(/empty/);
  });

  it('do not accept plain strings as commands', () => {
    expect(isShellCommand('echo hi')).toBe(false);
    expect(isShellCommand({ script: 'echo hi' })).toBe(false);
  });
});
