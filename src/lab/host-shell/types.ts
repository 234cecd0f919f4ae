// One HostShell interface, two transports (DESIGN.md, "The lab"): a persistent local
// PowerShell session and PowerShell over SSH. Both return the same ShellResult whether the
// command succeeded or not (STYLE.md, "How this applies here" 8); `expectOk` turns a
// failed result into the typed error that says what went wrong.

import type { PsCommand } from './command.ts';

/** One PowerShell error record, as the host reported it. */
export interface PsErrorRecord {
  /** The command that failed (`Save-VM`), empty when unknown. */
  cmdlet: string;
  message: string;
  /** ErrorCategory name (`InvalidOperation`, `ObjectNotFound`, ...). */
  category: string;
  /** e.g. `InvalidState,Microsoft.HyperV.PowerShell.Commands.SaveVM`. */
  fullyQualifiedErrorId: string;
  /** The part before the first comma: what to match on (`InvalidState`). */
  errorId: string;
  exceptionType: string;
  /** Where the record came from: our envelope, CLIXML on stderr, or plain stderr text. */
  source: 'envelope' | 'clixml' | 'stderr';
}

/** Why a command did not produce a result. The first reason to happen wins. */
export type ShellFailure =
  | { kind: 'error-record' }
  | { kind: 'timed-out'; afterMs: number }
  | { kind: 'canceled'; reason: string }
  | { kind: 'session-lost'; detail: string }
  | { kind: 'unreachable'; detail: string }
  | { kind: 'malformed-output'; detail: string };

export interface ShellResult {
  host: string;
  transport: 'local' | 'ssh';
  /** The statements that ran, secrets redacted. */
  command: string;
  durationMs: number;
  /** The process's exit code over SSH; 0 or 1 for a command in a persistent session. */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** The parsed JSON exactly as sent: an object, an array, a scalar, or undefined for no output. */
  value: unknown;
  /** `value` as a list: ConvertTo-Json sends one object bare and none as nothing. */
  items: unknown[];
  errorRecords: PsErrorRecord[];
  timedOut: boolean;
  canceled: boolean;
  failure: ShellFailure | undefined;
}

export interface RunOptions {
  /** Every command has a deadline; there is no default on purpose. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface HostShell {
  readonly host: string;
  readonly transport: 'local' | 'ssh';
  run(cmd: PsCommand, options: RunOptions): Promise<ShellResult>;
  /** Ends the session or connection; later `run` calls start a new one. */
  close(): Promise<void>;
}

export function checkRunOptions(options: RunOptions): void {
  const t = options?.timeoutMs;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    throw new TypeError(`run(): option timeoutMs must be a positive number of milliseconds, got ${JSON.stringify(t)} (${typeof t})`);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(`run(): option signal must be an AbortSignal, got ${typeof options.signal}`);
  }
}
