// What render() writes, without PowerShell: the shapes other tests rely on, and that no
// value ever reaches the script except through quote() or base64.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assign, authorScript, base64, date, emit, expand, hashtable, hostPath, native, pipe, project, ps, script, secret, staticCall, variable } from '../../../src/lab/host-shell/command.ts';
import { clixmlErrors, parseJsonResult, parseOutput, plainText } from '../../../src/lab/host-shell/output.ts';
import { display, render, renderValue } from '../../../src/lab/host-shell/render.ts';

const NONCE = 'abcdef0123456789abcdef01';

describe('render', () => {
  it('binds every parameter with -Name:value, switches included', () => {
    expect(display(pipe(ps('Get-VM', { Id: 'x' }), ps('Stop-VM', { TurnOff: true, Force: false, Count: -3, Skip: undefined })))).toBe(
      "Get-VM -Id:'x' | Stop-VM -TurnOff:$true -Force:$false -Count:(-3)");
  });

  it('renders lists, hashtables, dates, variables, static calls, projections and native calls', () => {
    expect(renderValue(['a', 1, null])).toBe("@('a',1,$null)");
    expect(renderValue(hashtable({ LogName: ['L'], "it's": 2 }))).toBe("@{'LogName'=@('L');'it''s'=2}");
    expect(renderValue(date(new Date('2026-11-24T03:00:00.000Z')))).toContain("'2026-11-24T03:00:00.000Z'");
    expect(renderValue(variable('vm', 'Id'))).toBe('$vm.Id');
    expect(renderValue(staticCall('System.IO.File', 'Exists', "C:\\a'b"))).toBe("([System.IO.File]::Exists('C:\\a''b'))");
    expect(display(pipe(ps('Get-VM'), expand('IPAddresses'), project({ Name: 'string' })))).toBe(
      "Get-VM | ForEach-Object { $_.'IPAddresses' } | ForEach-Object { [pscustomobject][ordered]@{'Name'=$(if ($null -eq $_.'Name') { $null } else { [string]$_.'Name' })} }");
    expect(display(script([native('pnputil', ['/add-driver', "D:\\x y'.inf"])]))).toContain("& 'pnputil' '/add-driver' 'D:\\x y''.inf'");
    expect(display(script([assign('v', ps('Get-VM')), emit(variable('v'))]))).toBe('$v = @(Get-VM); Write-Output -NoEnumerate -InputObject $v');
  });

  it('refuses names that are not names, so no text reaches the script unquoted', () => {
    expect(() => ps('Get-VM; Remove-VM', {})).toThrow(/not a cmdlet name/);
    expect(() => ps('Get-VM', { 'Id; rm': 'x' })).toThrow(/not a parameter name/);
    expect(() => variable('a$(b)')).toThrow(/not a variable name/);
    expect(() => staticCall('System.IO.File]::Delete', 'x')).toThrow(/not a .NET type name/);
    expect(() => native("pnputil'; evil", [])).toThrow(/not a program/);
    expect(() => renderValue(Number.NaN)).toThrow(RangeError);
    expect(() => renderValue(2 ** 60)).toThrow(/beyond 2\^53/);
  });

  it('sends secrets and keeps them out of what is displayed', () => {
    const r = render(ps('Connect-Thing', { Password: secret('hunter2'), Blob: base64('hunter2') }), NONCE);
    expect(r.script).toContain("'hunter2'");
    expect(r.display).not.toContain('hunter2');
    expect(r.display).toContain("-Password:'[redacted]'");
  });

  it('puts any string value inside exactly one quoted literal (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed()), (s) => {
      const text = renderValue(s);
      expect(text.startsWith("'") && text.endsWith("'")).toBe(true);
      // Inside, every quote character comes in pairs of the same character.
      const inner = text.slice(1, -1).replace(/(['\u2018-\u201B])\1/g, '');
      expect(inner).not.toMatch(/['\u2018-\u201B]/);
    }), { numRuns: 500 });
  });

  // Invariant: a host path (issue 14) reaches the script only as the quoted argument of one
  // fixed resolving block: whatever the path, the text before it is the same and the rest
  // is exactly quote(path) and the closing parenthesis.
  it('sends a host path only as the quoted argument of the same resolving block (property)', () => {
    const head = (t: string) => t.slice(0, t.lastIndexOf(' } ') + 3);
    const fixed = head(renderValue(hostPath('D:\\x')));
    expect(fixed).toContain('GetUnresolvedProviderPathFromPSPath($p, [ref]$pr, [ref]$dr)');
    fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 1 }).filter((s) => s.isWellFormed()), (s) => {
      expect(renderValue(hostPath(s))).toBe(`${fixed}${renderValue(s)})`);
    }), { numRuns: 300 });
    expect(() => hostPath('')).toThrow(/must not be empty/);
  });

  // Invariant: an author's script (a driver package's install command) reaches the host
  // only as base64; its parameters only as quoted values after it.
  it('sends an author\'s script only as base64, with its parameters as quoted arguments (property)', () => {
    const shape = (text: string, dir: string) => {
      const out = display(script([authorScript(text, { PackageDir: dir })]));
      const b64 = Buffer.from(`param($PackageDir)\n${text}`, 'utf8').toString('base64');
      return { out, b64, rest: out.replace(b64, 'B64').replace(renderValue(dir), 'DIR') };
    };
    const reference = shape('x', 'd').rest;
    fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 1 }).filter((s) => s.isWellFormed()), fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed()), (text, dir) => {
      const { out, b64, rest } = shape(text, dir);
      expect(out).toContain(`[System.Convert]::FromBase64String('${b64}')`);
      expect(out).toContain(` -PackageDir ${renderValue(dir)})`);
      // Take out the two encoded parts and the rest is the same for every text and folder.
      expect(rest).toBe(reference);
    }), { numRuns: 300 });
    expect(() => authorScript('x', { 'a; rm': 'x' })).toThrow(/not a parameter name/);
  });
});

describe('reading host output', () => {
  it('normalises ConvertTo-Json: nothing, one object, an array', () => {
    expect(parseJsonResult('')).toEqual({ kind: 'ok', value: undefined, items: [] });
    expect(parseJsonResult('{"a":1}')).toEqual({ kind: 'ok', value: { a: 1 }, items: [{ a: 1 }] });
    expect(parseJsonResult('[1,2]')).toEqual({ kind: 'ok', value: [1, 2], items: [1, 2] });
    expect(parseJsonResult('{"a":')).toMatchObject({ kind: 'malformed' });
  });

  it('only believes lines carrying this command\'s nonce, and only one of them', () => {
    expect(parseOutput(`noise\nother:ok:[1]\n${NONCE}:ok:2\n`, '', NONCE)).toMatchObject({ kind: 'ok', value: 2 });
    expect(parseOutput(`${NONCE}:ok:1\n${NONCE}:ok:2\n`, '', NONCE)).toMatchObject({ kind: 'malformed', detail: '2 result lines for one command' });
    expect(parseOutput('', 'ParserError: Missing closing }', NONCE)).toMatchObject({ kind: 'error', records: [{ source: 'stderr', message: 'ParserError: Missing closing }' }] });
    expect(parseOutput('', 'WARNING: only a warning', NONCE)).toMatchObject({ kind: 'malformed' });
    expect(parseOutput('this is not PowerShell\n', '', NONCE)).toEqual({ kind: 'malformed', detail: 'no result line in the output' });
  });

  it('finds the envelope wherever it stands: after control sequences, a BOM, a banner, with CRLF', () => {
    const noise = ['\u001b[?1h\u001b[?1l', '\uFEFF', 'Welcome to host\r\n', '\u001b]0;title\u0007', '\u001b[0m', '\u001b=', '\u001b>'];
    for (const before of noise) {
      for (const eol of ['\n', '\r\n', '']) {
        expect(parseOutput(`${before}${NONCE}:ok:{"a":1}${eol}\u001b[?1h`, '', NONCE), JSON.stringify(before + eol)).toEqual({ kind: 'ok', value: { a: 1 }, items: [{ a: 1 }] });
      }
    }
    expect(plainText('\uFEFF\u001b[?1ha\u001b[31mb\u001b[0m\r\n')).toBe('ab\r\n');
  });

  it('leaves every printable ASCII envelope intact when control sequences surround it (property)', () => {
    const seq = fc.constantFrom('\u001b[?1h', '\u001b[?1l', '\u001b[0m', '\u001b[38;5;9m', '\u001b]0;t\u0007', '\u001b(B', '\u001b=', '\uFEFF', '\r\n', '\n', 'text ');
    const json = fc.jsonValue().map((v) => JSON.stringify(v).replace(/[^\x20-\x7E]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
    fc.assert(fc.property(fc.array(seq), json, fc.array(seq), (before, body, after) => {
      const out = parseOutput(`${before.join('')}${NONCE}:ok:${body}\n${after.join('')}`, '', NONCE);
      expect(out).toMatchObject({ kind: 'ok', value: JSON.parse(body) });
    }), { numRuns: 300 });
  });

  it('reads a Windows PowerShell CLIXML error stream on stderr as error records', () => {
    // The shape Windows PowerShell 5.1 writes (one <S S="Error"> per line of the record).
    const stderr = '#< CLIXML\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">Save-VM : The operation cannot be performed while the object is in its current state._x000D__x000A_</S><S S="Error">    + CategoryInfo          : InvalidOperation: (:) [Save-VM], VirtualizationException_x000D__x000A_</S><S S="Error">    + FullyQualifiedErrorId : InvalidState,Microsoft.HyperV.PowerShell.Commands.SaveVM_x000D__x000A_</S><S S="Error"> _x000D__x000A_</S></Objs>\n';
    const out = parseOutput('', stderr, NONCE);
    expect(out.kind).toBe('error');
    const records = out.kind === 'error' ? out.records : [];
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ source: 'clixml', errorId: 'InvalidState', category: 'InvalidOperation', fullyQualifiedErrorId: 'InvalidState,Microsoft.HyperV.PowerShell.Commands.SaveVM' });
    // pwsh -OutputFormat xml serialises the ErrorRecord object itself (shape as the real pwsh 7.6 writes it).
    const objs = '#< CLIXML\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj><Obj S="Error" RefId="1"><TN RefId="1"><T>System.Management.Automation.ErrorRecord</T></TN><ToString>boom &amp; bust</ToString><MS><Obj N="Exception" RefId="2"><ToString>Microsoft.PowerShell.Commands.WriteErrorException: boom</ToString></Obj><S N="FullyQualifiedErrorId">Microsoft.PowerShell.Commands.WriteErrorException</S><S N="ErrorCategory_Activity">Write-Error</S><S N="ErrorCategory_Message">NotSpecified: (:) [Write-Error], WriteErrorException</S></MS></Obj><S S="warning">w</S></Objs>';
    expect(parseOutput('', objs, NONCE)).toMatchObject({ kind: 'error', records: [{ source: 'clixml', message: 'boom & bust', cmdlet: 'Write-Error', category: 'NotSpecified', errorId: 'Microsoft.PowerShell.Commands.WriteErrorException' }] });
    // Progress records alone are not an error.
    expect(parseOutput(`${NONCE}:ok:1\n`, '#< CLIXML\n<Objs Version="1.1.0.1"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj></Objs>', NONCE)).toMatchObject({ kind: 'ok', value: 1 });
  });

  it('splits CLIXML error streams into records and decodes _xHHHH_ escapes', () => {
    const x = '#< CLIXML\n<Objs Version="1.1.0.1"><S S="Error">first &amp; one_x000D__x000A_</S><S S="Error">  + FullyQualifiedErrorId : A,B_x000D__x000A_</S><S S="Error"> _x000D__x000A_</S><S S="Error">second_x000D__x000A_</S><S S="Progress">ignored</S></Objs>';
    expect(clixmlErrors(x)).toEqual(['first & one\r\n  + FullyQualifiedErrorId : A,B', 'second']);
  });
});
