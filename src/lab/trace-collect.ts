// Copies the traces of one lab job into its run directory: the guest driver's trace
// (read over SSH from debugfs) and the host VSP's trace (fetched by the host shell to a
// local file, or handed over as text).
//
// A trace is checked before it is stored: every line must be a JSON object with the
// envelope of DESIGN.md "Traces" (v = 1, an integer seq that strictly increases, a
// known side, an ev name). A bad line is an InputError naming where the trace came from
// and the line, since the checker downstream would otherwise work on garbage. Files are
// written to a temp name and renamed, so a run directory never holds half a trace.

import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputError } from '../errors.ts';
import { readGuestTrace, readTraceCounters, type GuestDriverLayout } from './deploy-guest.ts';
import type { GuestSsh } from './guest-ssh.ts';
import { redactor as sharedRedactor, type Redactor } from './secrets.ts';

export interface CollectedTrace {
  /** Path in the run directory. */
  path: string;
  /** Where it came from, as named in messages (`guest vm-1:/sys/.../trace`). */
  origin: string;
  events: number;
  bytes: number;
  /** Lines the driver could not store (its buffer was full): the trace has holes. */
  dropped: number | undefined;
}

const SIDES = new Set(['host', 'guest', 'bench']);
const MAX_QUOTED = 80;

/**
 * Checks JSON Lines trace text and returns the number of events. `origin` names the
 * source in errors. A final line without its newline is accepted if it parses (the
 * driver may be mid-write); any unparsable line, including a cut last one, is not.
 */
export function validateTraceText(text: string, origin: string): number {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let lastSeq = -Infinity;
  lines.forEach((line, i) => {
    const at = { file: origin, line: i + 1 };
    const shown = line.length > MAX_QUOTED ? `${line.slice(0, MAX_QUOTED)}…` : line;
    if (line.trim() === '') throw new InputError('empty line in a JSON Lines trace', at, { hint: 'each line must hold one JSON event' });
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch (e) {
      throw new InputError(`not JSON (${(e as Error).message}): ${shown}`, at, { hint: i === lines.length - 1 ? 'the trace may have been cut while being written' : 'each line must hold one JSON event' });
    }
    if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new InputError(`not a JSON object: ${shown}`, at);
    const e = event as Record<string, unknown>;
    if (e.v !== 1) throw new InputError(`unsupported trace version ${JSON.stringify(e.v)}`, { ...at, field: 'v' }, { hint: 'this bench reads trace schema v1' });
    if (typeof e.seq !== 'number' || !Number.isSafeInteger(e.seq)) throw new InputError('seq must be an integer', { ...at, field: 'seq' });
    if (e.seq <= lastSeq) throw new InputError(`seq ${e.seq} does not increase (previous ${lastSeq})`, { ...at, field: 'seq' }, { hint: 'seq must strictly increase within one trace file' });
    lastSeq = e.seq;
    if (typeof e.side !== 'string' || !SIDES.has(e.side)) throw new InputError(`side must be host, guest or bench`, { ...at, field: 'side' });
    if (typeof e.ev !== 'string' || e.ev === '') throw new InputError('ev must name the event', { ...at, field: 'ev' });
  });
  return lines.length;
}

/**
 * Validates `text` and stores it atomically as `runDir/name`. Known secret values are
 * scrubbed first: a driver has no business tracing one, but results must never hold one.
 */
export async function storeTrace(runDir: string, name: string, raw: string, origin: string, dropped?: number, redactor: Redactor = sharedRedactor): Promise<CollectedTrace> {
  if (basename(name) !== name || name.startsWith('.')) throw new InputError(`trace file name ${JSON.stringify(name)} must be a plain file name`, { field: 'name' });
  const text = redactor.redact(raw);
  const events = validateTraceText(text, origin);
  await mkdir(runDir, { recursive: true });
  const path = join(runDir, name);
  const temp = join(runDir, `.${name}.${process.pid}.tmp`);
  await writeFile(temp, text);
  await rename(temp, path);
  return { path, origin, events, bytes: Buffer.byteLength(text), dropped };
}

/** The guest driver's trace, read over SSH, with the driver's dropped-line count. */
export async function collectGuestTrace(guest: GuestSsh, layout: GuestDriverLayout, runDir: string, name = 'guest.trace.jsonl'): Promise<CollectedTrace> {
  const text = await readGuestTrace(guest, layout);
  const { traceDropped } = await readTraceCounters(guest, layout);
  return storeTrace(runDir, name, text, `guest ${guest.endpoint.name}:${layout.debugfsDir}/trace`, traceDropped);
}

/** A trace already on this machine (e.g. the host VSP's, fetched by the host shell). */
export async function collectLocalTrace(source: string, runDir: string, name = 'host.trace.jsonl'): Promise<CollectedTrace> {
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read trace (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file: source });
  }
  return storeTrace(runDir, name, text, source);
}
