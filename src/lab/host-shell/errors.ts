// Typed errors for host commands. Each carries the ShellResult it came from, so a caller
// that catches one still has the command (redacted), output and timing.
//
// A host that cannot be reached, a session that died, a timeout, a cmdlet that failed:
// infrastructure (exit 3). Output the bench cannot parse is bad input from the host
// (exit 2), the project's rule for malformed PowerShell output.

import { BenchError, InfraError } from '../../errors.ts';
import type { PsErrorRecord, ShellResult } from './types.ts';

function where(r: ShellResult): string {
  return `on ${r.host} (${r.transport}) after ${Math.round(r.durationMs)} ms: ${r.command}`;
}

/** The command ran and PowerShell reported an error record. */
export class HostCommandError extends InfraError {
  readonly result: ShellResult;
  readonly records: PsErrorRecord[];
  constructor(result: ShellResult) {
    const first = result.errorRecords[0];
    const head = first ? `${first.cmdlet ? `${first.cmdlet}: ` : ''}${first.message}${first.errorId ? ` [${first.errorId}]` : ''}` : 'PowerShell reported an error';
    super(`${head} ${where(result)}`, { host: result.host, command: result.command });
    this.name = 'HostCommandError';
    this.result = result;
    this.records = result.errorRecords;
  }
  /** True when the first record's error id (before the comma) is `id`. */
  is(id: string): boolean {
    return this.records[0]?.errorId === id;
  }
}

export class HostTimeoutError extends InfraError {
  readonly result: ShellResult;
  constructor(result: ShellResult, afterMs: number) {
    super(`timed out after ${afterMs} ms ${where(result)}; the session was discarded`, { host: result.host, command: result.command, timedOut: true });
    this.name = 'HostTimeoutError';
    this.result = result;
  }
}

export class HostCanceledError extends InfraError {
  readonly result: ShellResult;
  constructor(result: ShellResult, reason: string) {
    super(`canceled (${reason}) ${where(result)}`, { host: result.host, command: result.command });
    this.name = 'HostCanceledError';
    this.result = result;
  }
}

/** The PowerShell process or SSH connection went away during the command. */
export class SessionLostError extends InfraError {
  readonly result: ShellResult;
  constructor(result: ShellResult, detail: string) {
    super(`PowerShell session lost (${detail}) ${where(result)}`, { host: result.host, command: result.command });
    this.name = 'SessionLostError';
    this.result = result;
  }
}

export class HostUnreachableError extends InfraError {
  readonly result: ShellResult;
  constructor(result: ShellResult, detail: string) {
    super(`cannot reach ${result.host}: ${detail}`, { host: result.host, command: result.command });
    this.name = 'HostUnreachableError';
    this.result = result;
  }
}

/** The host answered, but not in a form the bench can read. Exit 2. */
export class HostOutputError extends BenchError {
  readonly exitCode = 2;
  readonly result: ShellResult;
  constructor(result: ShellResult, detail: string) {
    super(`unreadable PowerShell output (${detail}) ${where(result)}; stdout began: ${JSON.stringify(result.stdout.slice(0, 200))}`);
    this.name = 'HostOutputError';
    this.result = result;
  }
}

export type HostShellError = HostCommandError | HostTimeoutError | HostCanceledError | SessionLostError | HostUnreachableError | HostOutputError;

/** The typed error for a failed result, or undefined when it succeeded. */
export function failureError(r: ShellResult): HostShellError | undefined {
  const f = r.failure;
  if (!f) return undefined;
  switch (f.kind) {
    case 'error-record': return new HostCommandError(r);
    case 'timed-out': return new HostTimeoutError(r, f.afterMs);
    case 'canceled': return new HostCanceledError(r, f.reason);
    case 'session-lost': return new SessionLostError(r, f.detail);
    case 'unreachable': return new HostUnreachableError(r, f.detail);
    case 'malformed-output': return new HostOutputError(r, f.detail);
  }
}

/** The result if it succeeded; otherwise throws its typed error. */
export function expectOk(r: ShellResult): ShellResult {
  const e = failureError(r);
  if (e) throw e;
  return r;
}
