// The steps every transport shares, in order: check options, render, start the exchange,
// race it against the deadline and the abort signal (the first termination reason wins),
// then read the reply into a ShellResult. Transports only move text.

import { randomBytes } from 'node:crypto';
import type { PsCommand } from './command.ts';
import { parseOutput, plainText } from './output.ts';
import { redact } from '../secrets.ts';
import { REDACTED_LITERAL, asOneLine, render, secretsOf, type Rendered } from './render.ts';
import { checkRunOptions, type RunOptions, type ShellFailure, type ShellResult } from './types.ts';

/** What a transport got back for one command. */
export type RawReply =
  | { kind: 'reply'; stdout: string; stderr: string; exitCode: number | undefined }
  | { kind: 'lost'; detail: string; stdout: string; stderr: string }
  | { kind: 'unreachable'; detail: string };

export interface Exchange {
  done: Promise<RawReply>;
  /**
   * Stop the command now. The transport must not reuse whatever ran it: after a timeout
   * the session may still be inside the command, and its next output would be mistaken
   * for the next command's.
   */
  abort(why: 'timeout' | 'cancel'): void;
}

export interface ExecuteMeta {
  host: string;
  transport: 'local' | 'ssh';
}

export async function execute(
  meta: ExecuteMeta,
  cmd: PsCommand,
  options: RunOptions,
  start: (oneLine: string, rendered: Rendered) => Exchange,
): Promise<ShellResult> {
  checkRunOptions(options);
  const rendered = render(cmd, randomBytes(12).toString('hex'));
  const t0 = performance.now();
  const base = { ...meta, command: rendered.display };
  const { signal, timeoutMs } = options;

  if (signal?.aborted) {
    return finish(base, t0, { stdout: '', stderr: '', exitCode: undefined }, { kind: 'canceled', reason: reasonText(signal.reason) });
  }

  type Outcome = { raw: RawReply } | { timeout: true } | { cancel: string };
  const exchange = start(asOneLine(rendered.script), rendered);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const outcome = await new Promise<Outcome>((resolve) => {
    exchange.done.then(
      (raw) => resolve({ raw }),
      (e: unknown) => resolve({ raw: { kind: 'lost', detail: e instanceof Error ? e.message : String(e), stdout: '', stderr: '' } }),
    );
    timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
    if (signal) {
      onAbort = () => resolve({ cancel: reasonText(signal.reason) });
      signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  clearTimeout(timer);
  if (signal && onAbort) signal.removeEventListener('abort', onAbort);

  if ('timeout' in outcome) {
    exchange.abort('timeout');
    return finish(base, t0, { stdout: '', stderr: '', exitCode: undefined }, { kind: 'timed-out', afterMs: timeoutMs });
  }
  if ('cancel' in outcome) {
    exchange.abort('cancel');
    return finish(base, t0, { stdout: '', stderr: '', exitCode: undefined }, { kind: 'canceled', reason: outcome.cancel });
  }
  const raw = outcome.raw;
  if (raw.kind === 'unreachable') return finish(base, t0, { stdout: '', stderr: '', exitCode: undefined }, { kind: 'unreachable', detail: raw.detail });
  if (raw.kind === 'lost') return finish(base, t0, { stdout: raw.stdout, stderr: raw.stderr, exitCode: undefined }, { kind: 'session-lost', detail: raw.detail });

  const parsed = parseOutput(raw.stdout, raw.stderr, rendered.nonce);
  // The parsed value is data for the caller; the raw text is what gets logged.
  const secrets = secretsOf(cmd);
  const scrub = (t: string): string => redact(secrets.reduce((acc, s) => acc.split(s).join(REDACTED_LITERAL.slice(1, -1)), t));
  // Control sequences and BOMs are the console's, not the command's: they are not kept.
  const io = { stdout: scrub(plainText(raw.stdout)), stderr: scrub(plainText(raw.stderr)), exitCode: raw.exitCode };
  switch (parsed.kind) {
    // A persistent session has no per-command exit code; report what a process would.
    case 'ok':
      return finish(base, t0, { ...io, exitCode: io.exitCode ?? 0 }, undefined, parsed.value, parsed.items);
    case 'error':
      return finish(base, t0, { ...io, exitCode: io.exitCode ?? 1 }, { kind: 'error-record' }, undefined, [], parsed.records);
    case 'malformed':
      return finish(base, t0, io, { kind: 'malformed-output', detail: parsed.detail });
  }
}

function finish(
  base: { host: string; transport: 'local' | 'ssh'; command: string },
  t0: number,
  io: { stdout: string; stderr: string; exitCode: number | undefined },
  failure: ShellFailure | undefined,
  value: unknown = undefined,
  items: unknown[] = [],
  errorRecords: ShellResult['errorRecords'] = [],
): ShellResult {
  return {
    ...base,
    durationMs: performance.now() - t0,
    exitCode: io.exitCode,
    stdout: io.stdout,
    stderr: io.stderr,
    value,
    items,
    errorRecords,
    timedOut: failure?.kind === 'timed-out',
    canceled: failure?.kind === 'canceled',
    failure,
  };
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'aborted' : String(reason);
}
