// The only place a PsCommand becomes PowerShell script text.
//
// Every string goes through `quote` (or base64); numbers, booleans and names are checked
// in command.ts before they get here. Two texts come out of one walk: `script`, which is
// sent, and `display`, the same with each secret replaced by '[redacted]', which is what
// results, errors and logs keep.
//
// The envelope around the statements (ENVELOPE_SCRIPT) makes the output machine-readable
// whatever the transport does to stdout: the result goes out as one line
// `<nonce>:ok:<json>`, an error as `<nonce>:error:<json>`. The nonce is random per command, so a command that prints
// text of its own cannot forge a result line. The envelope never calls `exit`: in a
// persistent session that would end the session.

import { redact } from '../secrets.ts';
import type { PsCommand, PsPipeline, PsScript, PsStage, PsStatement, PsValue } from './command.ts';
import { toScript } from './command.ts';
import { base64Bytes, base64Text, numberLiteral, quote } from './quote.ts';

export const REDACTED_LITERAL = "'[redacted]'";

export interface Rendered {
  /** The full script to run, envelope included. */
  script: string;
  /** The statements alone, secrets redacted: safe for logs, errors and reports. */
  display: string;
  nonce: string;
}

type Mode = 'send' | 'display';

export function renderValue(v: PsValue, mode: Mode = 'send'): string {
  if (v === null) return '$null';
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'boolean') return v ? '$true' : '$false';
  if (typeof v === 'number' || typeof v === 'bigint') {
    const lit = numberLiteral(v);
    return lit.startsWith('-') ? `(${lit})` : lit;
  }
  if (Array.isArray(v)) return `@(${v.map((x) => renderValue(x, mode)).join(',')})`;
  const o = v as Exclude<PsValue, string | number | bigint | boolean | null | readonly PsValue[]>;
  switch (o.kind) {
    case 'secret':
      return mode === 'send' ? quote(o.value) : REDACTED_LITERAL;
    case 'base64':
      return o.as === 'text' ? base64Text(Buffer.from(o.data).toString('utf8')) : base64Bytes(o.data);
    case 'variable':
      return `$${o.name}${(o.member ?? []).map((m) => `.${m}`).join('')}`;
    case 'hashtable':
      return `@{${Object.entries(o.entries).map(([k, x]) => `${quote(k)}=${renderValue(x, mode)}`).join(';')}}`;
    case 'date':
      return `([datetime]::Parse(${quote(o.iso)}, [cultureinfo]::InvariantCulture, [System.Globalization.DateTimeStyles]::RoundtripKind))`;
    case 'host-path':
      // The three-argument overload says which provider the path is on: only FileSystem
      // paths are files .NET can open. A missing drive fails here, with a message that
      // names the path (the method's own names only the drive). The path is the block's
      // argument, quoted data.
      return `(& { param($p) $pr = $null; $dr = $null; `
        + `try { $r = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($p, [ref]$pr, [ref]$dr) } `
        + `catch { throw [System.ArgumentException]::new("cannot resolve the host path $($p): $($_.Exception.GetBaseException().Message)") }; `
        + `if ($pr.Name -ne 'FileSystem') { throw [System.ArgumentException]::new("the host path $($p) is not a file system path (provider $($pr.Name))") }; $r } ${quote(o.path)})`;
    case 'static':
      return `([${o.type}]::${o.method}(${o.args.map((a) => renderValue(a, mode)).join(', ')}))${(o.member ?? []).map((m) => `.${m}`).join('')}`;
  }
}

function renderStage(s: PsStage, mode: Mode): string {
  switch (s.kind) {
    case 'invoke': {
      const args = Object.entries(s.params)
        .filter((e): e is [string, PsValue] => e[1] !== undefined)
        // `-Name:value` binds the value to that parameter even when it starts with `-`,
        // and is how switches take $true/$false.
        .map(([k, x]) => ` -${k}:${renderValue(x, mode)}`);
      return `${s.name}${args.join('')}`;
    }
    case 'project': {
      const fields = Object.entries(s.properties).map(([k, how]) => {
        const get = `$_.${quote(k)}`;
        const val = how === 'string' ? `$(if ($null -eq ${get}) { $null } else { [string]${get} })`
          : how === 'strings' ? `@(${get} | ForEach-Object { [string]$_ })`
          : get;
        return `${quote(k)}=${val}`;
      });
      return `ForEach-Object { [pscustomobject][ordered]@{${fields.join(';')}} }`;
    }
    case 'expand':
      return `ForEach-Object { $_.${quote(s.property)} }`;
    case 'where':
      return `Where-Object -Property ${quote(s.property)} -${s.op === 'eq' ? 'EQ' : s.op === 'ne' ? 'NE' : s.op === 'like' ? 'Like' : 'Match'} -Value ${renderValue(s.value, mode)}`;
  }
}

function renderPipeline(p: PsPipeline, mode: Mode): string {
  const parts = p.stages.map((s) => renderStage(s, mode));
  if (p.input !== undefined) parts.unshift(`Write-Output -NoEnumerate -InputObject ${renderValue(p.input, mode)}`);
  return parts.join(' | ');
}

function renderStatement(s: PsStatement, mode: Mode): string {
  switch (s.kind) {
    case 'assign':
      return `$${s.name} = @(${renderPipeline(s.pipeline, mode)})`;
    case 'native': {
      const call = `& ${quote(s.program)}${s.args.map((a) => ` ${renderValue(a, mode)}`).join('')}`;
      return `[pscustomobject][ordered]@{ 'output' = @(${call} | ForEach-Object { [string]$_ }); 'exitCode' = $LASTEXITCODE }`;
    }
    case 'author-script': {
      // Parameters are declared in front of the author's text, so the values are passed
      // as arguments (quoted data) and never become part of the compiled text.
      const names = Object.keys(s.params);
      const text = `param(${names.map((n) => `$${n}`).join(', ')})\n${s.text}`;
      const args = Object.entries(s.params).map(([k, v]) => ` -${k} ${renderValue(v, mode)}`).join('');
      const call = `& ([scriptblock]::Create(${base64Text(text)}))${args}`;
      // LASTEXITCODE is reset first: a script that runs no native program leaves it alone.
      return `[pscustomobject][ordered]@{ 'output' = @($($global:LASTEXITCODE = 0; ${call}) | ForEach-Object { [string]$_ }); 'exitCode' = $LASTEXITCODE }`;
    }
    case 'pipeline':
      return renderPipeline(s, mode);
  }
}

function renderBody(s: PsScript, mode: Mode): string[] {
  return [
    ...s.imports.map((m) => `Import-Module -Name ${quote(m)} -ErrorAction Stop`),
    ...s.statements.map((st) => renderStatement(st, mode)),
  ];
}

/** Every secret value in a command, so output that echoes one can be scrubbed too. */
export function secretsOf(cmd: PsCommand): string[] {
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach(walk);
    const o = v as { kind?: string; value?: unknown };
    if (o.kind === 'secret' && typeof o.value === 'string') { found.push(o.value); return; }
    Object.values(o).forEach(walk);
  };
  walk(cmd);
  return found.filter((s) => s.length > 0);
}

/** The statements as a person would type them, secrets redacted. */
export function display(cmd: PsCommand): string {
  return redact(renderBody(toScript(cmd), 'display').join('; '));
}

/**
 * The envelope: the same text for every command, run with the nonce, the JSON depth and
 * the command's statements (a script block) as its arguments.
 *
 * Why one text: PowerShell keeps the compiled form of a script block made from text it
 * has seen before in the session (ScriptBlock.Create caches by text), and compiling is
 * most of the cost of a trivial command. With the nonce written into the envelope, every
 * command was new text: pwsh 7.6 took ~5 ms to compile and run it against ~1.7 ms for
 * text it had seen, on the development machine. Now only the short outer line and the
 * statements are new.
 *
 * The result line is made pure ASCII (\uXXXX for the rest, which JSON allows), so a
 * console code page on the far side (Windows PowerShell over SSH) cannot mangle it. The
 * replacement runs only when there is something to replace: calling Regex.Replace with
 * a script block as its evaluator cost ~1.5 ms even on text with nothing to replace.
 * The test is `-cmatch`, case-sensitive as Regex.Replace is: `-match` folds case, and
 * would let the Kelvin sign (U+212A, folded to 'k') through unescaped.
 *
 * Invariant: Windows PowerShell 5.1 syntax (test/lab/host/ps51-syntax.test.ts parses it).
 */
export const ENVELOPE_SCRIPT = [
  `param([string]$__benchNonce, [int]$__benchDepth, [scriptblock]$__benchBody)`,
  `$ErrorActionPreference = 'Stop'`,
  `$ProgressPreference = 'SilentlyContinue'`,
  String.raw`$__benchAscii = { param($t) $t = [string]$t; if ($t -cmatch '[^\x20-\x7E]') { [regex]::Replace($t, '[^\x20-\x7E]', { param($m) '\u{0:x4}' -f [int][char]$m.Value }) } else { $t } }`,
  `try {`,
  `  $__benchOut = @(& $__benchBody)`,
  `  $__benchJson = if ($__benchOut.Count -gt 0) { $__benchOut | ConvertTo-Json -Depth $__benchDepth -Compress } else { '' }`,
  `  [Console]::Out.WriteLine($__benchNonce + ':ok:' + (& $__benchAscii $__benchJson))`,
  `} catch {`,
  `  $__benchErr = $_`,
  `  $__benchRec = [ordered]@{`,
  `    cmdlet = [string]$__benchErr.InvocationInfo.MyCommand.Name`,
  `    message = [string]$__benchErr.Exception.Message`,
  `    category = [string]$__benchErr.CategoryInfo.Category`,
  `    fullyQualifiedErrorId = [string]$__benchErr.FullyQualifiedErrorId`,
  `    exceptionType = [string]$__benchErr.Exception.GetType().FullName`,
  `    targetObject = [string]$__benchErr.TargetObject`,
  `  }`,
  `  [Console]::Out.WriteLine($__benchNonce + ':error:' + (& $__benchAscii (ConvertTo-Json -InputObject $__benchRec -Compress)))`,
  `}`,
].join('\n');

export function render(cmd: PsCommand, nonce: string): Rendered {
  if (!/^[A-Za-z0-9]{8,64}$/.test(nonce)) throw new TypeError('nonce must be 8-64 letters or digits');
  const s = toScript(cmd);
  const body = renderBody(s, 'send').map((line) => `    ${line}`).join('\n');
  // The statements run inside the envelope's try, as a script block: a terminating error
  // in them (every error, under ErrorActionPreference Stop) reaches its catch.
  const script = `& ([scriptblock]::Create(${quote(ENVELOPE_SCRIPT)})) ${quote(nonce)} ${s.depth} {\n${body}\n}`;
  return { script, display: display(s), nonce };
}

/**
 * The script as one line for a `-Command -` stdin session. Line-based stdin reading turns
 * a lone CR into a line break and runs each complete line as it arrives, so the script is
 * sent as base64 and compiled as a whole on the far side.
 */
export function asOneLine(script: string): string {
  return `& ([scriptblock]::Create(${base64Text(script)}))`;
}
