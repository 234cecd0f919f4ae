// The one quote function, proven against the real PowerShell engine: every value comes
// back unchanged, the parser sees exactly one single-quoted string constant, and payloads
// that would run code if the quoting were wrong leave no trace.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64, ps, script } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { base64Text, quote, UnquotableValueError } from '../../../src/lab/host-shell/quote.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';

const QUOTES = ["'", '\u2018', '\u2019', '\u201A', '\u201B'];
const dir = mkdtempSync(join(tmpdir(), 'bench-quote-'));
const canary = join(dir, 'canary');
const probe = join(import.meta.dirname, 'fixtures', 'ParseProbe.psm1');

/** Values that run code, end the literal or break a transport if quoting is wrong. */
const hostile: string[] = [
  '', "'", "''", "'''", '"', '`', '``', '$', '$$', '$null', '$(1+1)', '@(1)', '${x}', '$env:PATH',
  ...QUOTES, ...QUOTES.map((q) => `${q}${q}`), QUOTES.join(''), `a${QUOTES.join('b')}c`,
  `'; $global:pwned = 1; '`,
  `\u2019; $global:pwned = 1; \u2018`,
  `\u201A + $($global:pwned = 1) + \u201B`,
  `'+$([System.IO.File]::WriteAllText('${canary}', 'x'))+'`,
  `\u2018+$([System.IO.File]::WriteAllText('${canary}', 'x'))+\u2019`,
  "'\n$global:pwned = 1\n'", "x\r\n$global:pwned = 1", 'a\rb', 'a\r\nb', '\n', 'tab\there',
  'nul\u0000byte', '\u0000', '\u0007\u001b[31mred', 'semi;colon', '#comment', '<#block#>', 'a|b', 'a&b', '--%', '-Name',
  'é ü ß 日本語 🙂 עברית', '\uFEFFbom', '\u2028line\u2029para', '\u00A0nbsp', '"quoted" “smart”',
  'x'.repeat(100_000),
  `${"'".repeat(500)}${'\u2019'.repeat(500)}`,
];

describe.skipIf(!pwsh)(`quote() against the real PowerShell engine ${pwshLabel}`, { timeout: 120_000 }, () => {
  let shell: LocalPwshShell;
  beforeAll(() => {
    shell = new LocalPwshShell({ executable: pwsh!.path });
  });
  afterAll(async () => {
    await shell?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Each value, sent as a literal, comes back as itself. */
  async function roundTrip(values: string[]): Promise<unknown[]> {
    const r = expectOk(await shell.run(ps('Write-Output', { InputObject: values }), { timeoutMs: 20_000 }));
    return r.items;
  }

  /** How PowerShell's own parser reads `quote(v)`; the text goes as base64, not quoted. */
  async function parse(values: string[]): Promise<unknown[]> {
    const b64 = values.map((v) => Buffer.from(quote(v), 'utf8').toString('base64'));
    const r = expectOk(await shell.run(script([ps('Get-LiteralAst', { Base64: b64 })], { imports: [probe] }), { timeoutMs: 20_000 }));
    return r.items;
  }

  it('returns every hostile value unchanged and runs nothing', async () => {
    const back = await roundTrip(hostile);
    expect(back).toEqual(hostile);
    const pwned = expectOk(await shell.run(script([ps('Get-GlobalProbe', { Name: 'pwned' })], { imports: [probe] }), { timeoutMs: 10_000 }));
    expect(pwned.items).toEqual([]);
    expect(existsSync(canary)).toBe(false);
  });

  it('makes each hostile value parse as exactly one single-quoted string constant', async () => {
    const seen = await parse(hostile);
    expect(seen).toHaveLength(hostile.length);
    for (const [i, p] of seen.entries()) {
      expect(p, `value #${i}`).toEqual({ kind: 'SingleQuoted', value: hostile[i], statements: 1, errors: 0 });
    }
  });

  it('round-trips arbitrary well-formed strings (property)', async () => {
    const hostileChar = fc.constantFrom(...QUOTES, '"', '`', '$', '(', ')', '{', '}', ';', '\n', '\r', '\0', '#', '|', '@', ' ', 'a', 'é', '🙂');
    const str = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => s.isWellFormed()),
      fc.array(hostileChar, { maxLength: 40 }).map((a) => a.join('')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(str, { minLength: 2, maxLength: 12 }), async (values) => {
        expect(await roundTrip(values)).toEqual(values);
      }),
      { numRuns: 60 },
    );
    expect(existsSync(canary)).toBe(false);
  });

  it('shows that a quote function ignoring U+2018..U+201B would let code run', async () => {
    const naive = (v: string): string => `'${v.replaceAll("'", "''")}'`;
    const payload = `\u2019; $global:naivePwned = 7; \u2018`;
    const run = (text: string) => script([ps('Invoke-ProbeText', { Base64: Buffer.from(text).toString('base64') })], { imports: [probe] });
    const check = script([ps('Get-GlobalProbe', { Name: 'naivePwned' })], { imports: [probe] });
    expectOk(await shell.run(run(`Write-Output ${naive(payload)}`), { timeoutMs: 10_000 }));
    expect(expectOk(await shell.run(check, { timeoutMs: 10_000 })).items).toEqual([7]);
    const safe = expectOk(await shell.run(run(`Write-Output ${quote(payload)}`), { timeoutMs: 10_000 }));
    expect(safe.items).toEqual([payload]);
  });

  it('passes bulk text as base64 byte for byte, CR and NUL included', async () => {
    const text = 'line1\r\nline2\rline3\u0000end é🙂'.repeat(2000);
    const r = expectOk(await shell.run(ps('Write-Output', { InputObject: base64(text) }), { timeoutMs: 10_000 }));
    expect(r.value).toBe(text);
    expect(base64Text('x')).not.toMatch(/["$`\n\r]/);
  });
});

describe('quote() without PowerShell', () => {
  it('doubles each of the five quote characters and nothing else', () => {
    expect(quote("a'b")).toBe("'a''b'");
    expect(quote('\u2018\u2019\u201A\u201B')).toBe("'\u2018\u2018\u2019\u2019\u201A\u201A\u201B\u201B'");
    expect(quote('$(x) `n "y"')).toBe("'$(x) `n \"y\"'");
  });
  it('refuses a lone surrogate instead of sending a replacement character', () => {
    expect(() => quote('a\uD800b')).toThrow(UnquotableValueError);
  });
});

