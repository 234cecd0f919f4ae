// Reading what a host sent back: the envelope lines render.ts asked for, CLIXML error
// streams, and plain stderr text.
//
// Outcomes are values here. Only lines that start with this command's nonce count; any
// other stdout (Write-Host, banners, a profile that printed something) is ignored but kept
// in the result for the reader.

import type { PsErrorRecord } from './types.ts';

export type ParsedOutput =
  | { kind: 'ok'; value: unknown; items: unknown[] }
  | { kind: 'error'; records: PsErrorRecord[] }
  | { kind: 'malformed'; detail: string };

export function parseOutput(stdout: string, stderr: string, nonce: string): ParsedOutput {
  const okPrefix = `${nonce}:ok:`;
  const errPrefix = `${nonce}:error:`;
  const lines = stdout.split(/\r?\n/);
  const ok = lines.filter((l) => l.startsWith(okPrefix));
  const err = lines.filter((l) => l.startsWith(errPrefix));
  if (ok.length + err.length > 1) return { kind: 'malformed', detail: `${ok.length + err.length} result lines for one command` };

  const errLine = err[0];
  if (errLine !== undefined) {
    const rec = parseRecord(errLine.slice(errPrefix.length));
    return rec ? { kind: 'error', records: [rec, ...stderrRecords(stderr)] } : { kind: 'malformed', detail: 'error record is not valid JSON' };
  }
  const okLine = ok[0];
  if (okLine !== undefined) return parseJsonResult(okLine.slice(okPrefix.length));

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
  const text = stderr.trim();
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
