// Reading what a host sent back: the envelope lines render.ts asked for, CLIXML error
// streams, and plain stderr text.
//
// Outcomes are values here. Only text that starts with this command's nonce counts; any
// other stdout (Write-Host, banners, a profile that printed something) is ignored but kept
// in the result for the reader.
//
// Real shells put more than our lines on the wire, and none of it may hide a reply:
// - pwsh on Unix writes terminal control sequences (keypad on/off, `ESC[?1h ESC[?1l`)
//   around every command when TERM is not `dumb`, on the same line as the output that
//   follows; Windows consoles may add colour or title sequences;
// - Windows PowerShell may start its output with a byte order mark;
// - an SSH login may print a banner or message of the day before the shell starts;
// - lines end in `\r\n` on Windows.
// So the envelope is searched for wherever it stands (not only at a line start), after
// control sequences and BOMs are removed. The envelope itself is printable ASCII
// (render.ts escapes the rest as \uXXXX), so removing control characters never changes it.

import type { PsErrorRecord } from './types.ts';

export type ParsedOutput =
  | { kind: 'ok'; value: unknown; items: unknown[] }
  | { kind: 'error'; records: PsErrorRecord[] }
  | { kind: 'malformed'; detail: string };

// CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \\), other two-byte escapes (ESC =, ESC >,
// ESC ( B, ...), and the 8-bit CSI. Invariant: every match starts with ESC or U+009B,
// which an envelope never holds, so removing them leaves an envelope line byte for byte
// (tested as a property in render.test.ts).
const CONTROL_SEQUENCE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[()*+][0-~]|\u001b[@-Z\\-_=>78c]|\u009b[0-?]*[ -/]*[@-~]/g;

/**
 * Host output made plain: terminal control sequences, byte order marks and the other C0
 * controls a console may add are removed; tabs and line ends are kept.
 */
export function plainText(text: string): string {
  return text
    .replace(CONTROL_SEQUENCE, '')
    .replace(/\uFEFF/g, '')
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '');
}

/**
 * Every occurrence of `prefix` in `text` and what follows it up to the line end, wherever
 * on a line it stands.
 */
export function envelopeLines(text: string, prefix: string): string[] {
  const found: string[] = [];
  for (let at = text.indexOf(prefix); at >= 0; at = text.indexOf(prefix, at + prefix.length)) {
    const end = text.slice(at + prefix.length).search(/\r?\n|\r/);
    found.push(text.slice(at + prefix.length, end < 0 ? undefined : at + prefix.length + end));
  }
  return found;
}

export function parseOutput(rawStdout: string, rawStderr: string, nonce: string): ParsedOutput {
  const stdout = plainText(rawStdout);
  const stderr = plainText(rawStderr);
  const ok = envelopeLines(stdout, `${nonce}:ok:`);
  const err = envelopeLines(stdout, `${nonce}:error:`);
  if (ok.length + err.length > 1) return { kind: 'malformed', detail: `${ok.length + err.length} result lines for one command` };

  const errLine = err[0];
  if (errLine !== undefined) {
    const rec = parseRecord(errLine);
    return rec ? { kind: 'error', records: [rec, ...stderrRecords(stderr)] } : { kind: 'malformed', detail: 'error record is not valid JSON' };
  }
  const okLine = ok[0];
  if (okLine !== undefined) return parseJsonResult(okLine);

  // No envelope line: the script did not get to run to either end (a parse error, a
  // host that is not PowerShell, a crash). Whatever stderr says is the error.
  const fromStderr = stderrRecords(stderr);
  if (fromStderr.length > 0) return { kind: 'error', records: fromStderr };
  return { kind: 'malformed', detail: 'no result line in the output' };
}

/**
 * ConvertTo-Json output: one object comes bare, several as an array, none as an empty
 * string. `items` is always the list.
 */
export function parseJsonResult(text: string): ParsedOutput {
  if (text.trim() === '') return { kind: 'ok', value: undefined, items: [] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { kind: 'malformed', detail: `result is not valid JSON: ${(e as Error).message}` };
  }
  return { kind: 'ok', value, items: Array.isArray(value) ? value : [value] };
}

function parseRecord(text: string): PsErrorRecord | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const r = o as Record<string, unknown>;
  const s = (k: string): string => (typeof r[k] === 'string' ? (r[k] as string) : '');
  const fqid = s('fullyQualifiedErrorId');
  return {
    cmdlet: s('cmdlet'), message: s('message'), category: s('category'),
    fullyQualifiedErrorId: fqid, errorId: fqid.split(',')[0] ?? '', exceptionType: s('exceptionType'), source: 'envelope',
  };
}

/** Error records from stderr: CLIXML error strings if it is CLIXML, else the text itself. */
export function stderrRecords(stderr: string): PsErrorRecord[] {
  const text = plainText(stderr).trim();
  if (text === '') return [];
  if (text.includes('#< CLIXML')) {
    const messages = clixmlErrors(text);
    return messages.map((message) => blankRecord(message, 'clixml'));
  }
  // Warnings are not errors.
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('WARNING:'));
  return lines.length > 0 ? [blankRecord(lines.join('\n'), 'stderr')] : [];
}

function blankRecord(message: string, source: 'clixml' | 'stderr'): PsErrorRecord {
  // PowerShell's text form ends with "+ FullyQualifiedErrorId : X" (Windows PowerShell).
  const fq = /FullyQualifiedErrorId\s*:\s*(\S+)/.exec(message)?.[1] ?? '';
  const cat = /CategoryInfo\s*:\s*(\w+)/.exec(message)?.[1] ?? '';
  return { cmdlet: '', message: message.trim(), category: cat, fullyQualifiedErrorId: fq, errorId: fq.split(',')[0] ?? '', exceptionType: '', source };
}

/**
 * The error stream of a CLIXML document: the text of every `<S S="Error">` element, with
 * XML entities and PowerShell's `_xHHHH_` escapes decoded. PowerShell writes a record a
 * line at a time and ends it with a line holding only a space, so the pieces are joined
 * and split on blank lines.
 */
export function clixmlErrors(text: string): string[] {
  const pieces: string[] = [];
  const re = /<S S="Error">([\s\S]*?)<\/S>/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) pieces.push(decodeClixmlString(m[1] ?? ''));
  const records: string[] = [];
  for (const block of pieces.join('').split(/\r?\n\s*\r?\n/)) if (block.trim() !== '') records.push(block.trim());
  return records;
}

export function decodeClixmlString(s: string): string {
  return s
    .replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
