import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeXml, stripIllegalXmlChars } from '../../src/report/xml.ts';
import { skipNote, xmllintMissing } from './support/xmllint.ts';

describe('escapeXml', () => {
  it('escapes markup in text and quotes in attributes', () => {
    expect(escapeXml(`<a href="x">&'</a>`)).toBe(`&lt;a href="x"&gt;&amp;'&lt;/a&gt;`);
    expect(escapeXml(`"it's" <b>`, 'attr')).toBe('&quot;it&#39;s&quot; &lt;b&gt;');
  });

  it('keeps line breaks and tabs in attributes as character references', () => {
    expect(escapeXml('a\nb\tc\rd', 'attr')).toBe('a&#10;b&#9;c&#13;d');
    expect(escapeXml('a\nb\tc', 'text')).toBe('a\nb\tc');
  });

  it('drops characters XML 1.0 cannot hold: NUL, C0 controls, lone surrogates, U+FFFE/FFFF', () => {
    expect(escapeXml('a\u0000b\u0007c\u001bd\uFFFEe\uFFFFf')).toBe('abcdef');
    expect(escapeXml('x\uD800y\uDC00z')).toBe('xyz');
  });

  it('keeps astral characters (valid surrogate pairs) intact', () => {
    expect(escapeXml('😀 ok')).toBe('😀 ok');
  });

  it('never leaves markup, a bare ampersand or an illegal character (any string)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.constantFrom('text' as const, 'attr' as const), (s, ctx) => {
        const out = escapeXml(s, ctx);
        expect(out).not.toMatch(/[<>]/);
        expect(out).not.toMatch(/&(?!(amp|lt|gt|quot|#39|#10|#13|#9);)/);
        expect(stripIllegalXmlChars(out)).toBe(out);
        if (ctx === 'attr') expect(out).not.toMatch(/["'\n\r\t]/);
      }),
    );
  });

  it.skipIf(xmllintMissing)(`round-trips through a real XML parser (xmllint) for any string${skipNote(xmllintMissing)}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-xml-'));
    const samples = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), { numRuns: 60, seed: 42 });
    samples.push('tab\there "q" \'a\' <x> & \u0001 \uD83D end');
    samples.forEach((s, i) => {
      const file = join(dir, `${i}.xml`);
      writeFileSync(file, `<r a="${escapeXml(s, 'attr')}">${escapeXml(s)}</r>`);
      // xmllint ends what it prints with one newline of its own.
      const read = (expr: string) => execFileSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8' }).replace(/\n$/, '');
      const expected = stripIllegalXmlChars(s);
      expect(read('string(/r)')).toBe(expected);
      expect(read('string(/r/@a)')).toBe(expected);
    });
  });
});
