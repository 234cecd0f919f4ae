// Errors that carry their exit code (DESIGN.md, "The command").
//
// Only src/cli maps errors to exit codes. Anything thrown that is not a BenchError is a
// bug in the bench: the CLI prints its stack and exits 3.
//
// A divergence or a failed property is a *result* (exit 1), never an exception.
//
// Errors may cross worker threads as plain objects (`toPlainError`), where `instanceof`
// no longer works, so they are recognised by a symbol-keyed brand as well.

const BRAND = Symbol.for('vmbus-bench.BenchError');

export type ExitCode = 0 | 1 | 2 | 3;

export abstract class BenchError extends Error {
  abstract readonly exitCode: 2 | 3;
  readonly [BRAND] = true;
}

/** Where in an input file a problem is. `line` is 1-based. */
export interface InputLocation {
  file?: string | undefined;
  line?: number | undefined;
  column?: number | undefined;
  /** Field path inside the document, e.g. `steps[3].count`. */
  field?: string | undefined;
}

/** Bad input or usage: exit 2. The message names file, line and field. */
export class InputError extends BenchError {
  readonly exitCode = 2;
  readonly location: InputLocation;
  readonly hint: string | undefined;
  constructor(message: string, location: InputLocation = {}, options?: { hint?: string; cause?: unknown }) {
    super(formatInputMessage(message, location, options?.hint), { cause: options?.cause });
    this.name = 'InputError';
    this.location = location;
    this.hint = options?.hint;
  }
}

/** Infrastructure failure (host unreachable, timeout, a tool that died): exit 3. */
export class InfraError extends BenchError {
  readonly exitCode = 3;
  readonly host: string | undefined;
  readonly command: string | undefined;
  readonly timedOut: boolean;
  constructor(message: string, details: { host?: string; command?: string; timedOut?: boolean; cause?: unknown } = {}) {
    super(message, { cause: details.cause });
    this.name = 'InfraError';
    this.host = details.host;
    this.command = details.command;
    this.timedOut = details.timedOut ?? false;
  }
}

export function isBenchError(e: unknown): e is BenchError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

function formatInputMessage(message: string, loc: InputLocation, hint?: string): string {
  let where = loc.file ?? '';
  if (loc.file !== undefined && loc.line !== undefined) where += `:${loc.line}`;
  if (loc.file !== undefined && loc.line !== undefined && loc.column !== undefined) where += `:${loc.column}`;
  const field = loc.field ? `${where ? ' ' : ''}${loc.field}` : '';
  const head = where || field ? `${where}${field}: ` : '';
  return `${head}${message}${hint ? ` (${hint})` : ''}`;
}

/** The shape in which an error crosses a thread or process boundary. */
export interface PlainError {
  name: string;
  message: string;
  exitCode?: 2 | 3 | undefined;
  stack?: string | undefined;
}

export function toPlainError(e: unknown): PlainError {
  if (isBenchError(e)) return { name: e.name, message: e.message, exitCode: e.exitCode, stack: e.stack };
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** Rebuilds an error that crossed a boundary; keeps its exit code. */
export function fromPlainError(p: PlainError): Error {
  if (p.exitCode === 2) return Object.assign(new InputError(p.message), { name: p.name, stack: p.stack });
  if (p.exitCode === 3) return Object.assign(new InfraError(p.message), { name: p.name, stack: p.stack });
  return Object.assign(new Error(p.message), { name: p.name, stack: p.stack });
}
