// A guest VM over SSH (ssh2): key authentication, a pinned host key, commands with exit
// codes, timeouts and bounded output, file upload, and reconnection.
//
// Save/restore and live migration kill the guest's TCP connections (the guest's clock
// and network stack resume, but our socket is long gone). A command that was running
// when the link died fails with an InfraError; it is never re-run behind the caller's
// back, because the bench cannot know whether it took effect. The next call reconnects
// (with backoff) when `autoReconnect` is on, or the caller calls `reconnect()`.
//
// Remote commands are `ShellCommand` values (guest/posix-quote.ts) and run under POSIX
// sh. On timeout or cancellation we send a KILL signal request, which sshd delivers to
// the session's process group, but only for non-root logins (OpenSSH refuses it when
// the session runs without privilege separation, as root's do). So each command is
// also wrapped in coreutils `timeout`, which kills its process group on the guest
// shortly after our own deadline: a command never outlives timeoutMs + 2-4 s there.
// Every command text that ends up in a result or error is redacted.

import { performance } from 'node:perf_hooks';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { InfraError, InputError } from '../errors.ts';
import { BoundedOutput } from './guest/bounded-output.ts';
import { HostKeyMismatchError } from './guest/host-key.ts';
import { sh, type ShellCommand } from './guest/posix-quote.ts';
import { sftpRead, sftpWrite } from './guest/sftp-files.ts';
import { openClient, resolveCredential, type ResolvedCredential } from './guest/ssh-connect.ts';
import type { Credential, HostKeyPin } from './inventory.ts';
import type { VmTemplate } from './template.ts';
import { redactor as sharedRedactor, type Redactor } from './secrets.ts';

export interface GuestEndpoint {
  /** For messages: the VM or guest name. */
  name: string;
  host: string;
  port: number;
  user: string;
  credential: Credential;
  hostKey: HostKeyPin;
}

/**
 * Where to reach a VM made from `template`. The host key is pinned from the template or
 * from what the run layer learnt over a trusted path (the guest's provisioning output
 * on its serial console); without either the guest is refused, never trusted on first use.
 */
export function guestEndpoint(template: VmTemplate, vm: { name: string; address: string; hostKey?: HostKeyPin }): GuestEndpoint {
  const hostKey = vm.hostKey ?? template.guest.hostKey;
  if (!hostKey) {
    throw new InputError(`no host key pin for guest ${vm.name}`, { file: template.file, field: 'guest.hostKey' }, {
      hint: 'pin it in the template or pass the fingerprint the guest printed while provisioning',
    });
  }
  return { name: vm.name, host: vm.address, port: template.guest.sshPort, user: template.guest.user, credential: template.guest.credential, hostKey };
}

export interface GuestSshOptions {
  connectTimeoutMs?: number;
  /** Keepalive probes notice a link that died silently (no RST) within interval × count. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Reconnect on the next call after the link died. Default true. */
  autoReconnect?: boolean;
  backoff?: { initialMs?: number; maxMs?: number; totalMs?: number };
  redactor?: Redactor;
  /** Receives progress lines (already redacted). */
  log?: (line: string) => void;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Per stream. Output past it is drained and dropped; the result says so. */
  maxOutputBytes?: number;
  stdin?: Buffer | string;
  /** Wrap in coreutils `timeout` so the guest kills a timed-out command. Default true. */
  remoteReaper?: boolean;
  /** Cancels the command: the result comes back at once with `canceled: true`. */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** The command as sent, secrets redacted. */
  command: string;
  exitCode: number | null;
  /** Set when the command died of a signal (e.g. 'KILL'). */
  signal: string | undefined;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  timedOut: boolean;
  canceled: boolean;
  durationMs: number;
}

/** Internal: the link died before the channel opened, so the command never ran. */
class NotStarted {
  readonly error: InfraError;
  constructor(error: InfraError) {
    this.error = error;
  }
}

type Link =
  | { kind: 'down'; reason: string }
  | { kind: 'up'; client: Client }
  | { kind: 'closed' };

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
/** Seconds the guest-side reaper waits past our own deadline before killing. */
const REAPER_GRACE_S = 2;

export class GuestSsh {
  readonly endpoint: GuestEndpoint;
  readonly #options: GuestSshOptions;
  readonly #redactor: Redactor;
  #link: Link = { kind: 'down', reason: 'not connected yet' };
  #connecting: Promise<Client> | undefined;
  /** Operations to fail when the link dies under them. */
  readonly #inflight = new Set<(error: InfraError) => void>();
  #secret: ResolvedCredential | undefined;
  #sftpSession: { client: Client; session: Promise<SFTPWrapper> } | undefined;

  private constructor(endpoint: GuestEndpoint, options: GuestSshOptions) {
    this.endpoint = endpoint;
    this.#options = options;
    this.#redactor = options.redactor ?? sharedRedactor;
  }

  static async connect(endpoint: GuestEndpoint, options: GuestSshOptions = {}): Promise<GuestSsh> {
    const guest = new GuestSsh(endpoint, options);
    await guest.#ensureLink();
    return guest;
  }

  get connected(): boolean {
    return this.#link.kind === 'up';
  }

  /** Runs a command; a non-zero exit is a result, a lost link or refused channel an InfraError. */
  async exec(command: ShellCommand, options: ExecOptions = {}): Promise<ExecResult> {
    try {
      return await this.#execOnce(command, options);
    } catch (e) {
      // The link died before the guest confirmed the channel: the command never
      // started, so running it on a fresh link is safe. Once, and only then.
      if (!(e instanceof NotStarted) || this.#options.autoReconnect === false) throw e instanceof NotStarted ? e.error : e;
      this.#log(`${e.error.message}; the command had not started, running it again after reconnecting`);
      return this.#execOnce(command, options).catch((again: unknown) => {
        throw again instanceof NotStarted ? again.error : again;
      });
    }
  }

  async #execOnce(command: ShellCommand, options: ExecOptions): Promise<ExecResult> {
    const client = await this.#ensureLink();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const limit = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const wire = options.remoteReaper === false
      ? command.script
      : sh`timeout -k 2 ${Math.ceil(timeoutMs / 1000) + REAPER_GRACE_S} sh -c ${command.script}`.script;
    const shown = this.#redactor.redact(command.script);
    const stdout = new BoundedOutput(limit);
    const stderr = new BoundedOutput(limit);
    const started = performance.now();

    return new Promise<ExecResult>((resolve, reject) => {
      let channel: ClientChannel | undefined;
      let exit: { code: number | null; signal: string | undefined } | undefined;
      let settled = false;
      const settle = (outcome: { result: ExecResult } | { error: InfraError | NotStarted }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#inflight.delete(onLost);
        if ('error' in outcome) reject(outcome.error);
        else resolve(outcome.result);
      };
      // The first termination reason wins: exit, our deadline, or cancellation.
      const result = (ended: 'exit' | 'timeout' | 'cancel'): ExecResult => ({
        command: shown,
        exitCode: ended === 'exit' ? (exit?.code ?? null) : null,
        signal: ended === 'exit' ? exit?.signal : undefined,
        stdout: this.#redactor.redact(stdout.toBuffer().toString('utf8')),
        stderr: this.#redactor.redact(stderr.toBuffer().toString('utf8')),
        stdoutBytes: stdout.totalBytes,
        stderrBytes: stderr.totalBytes,
        truncated: stdout.truncated || stderr.truncated,
        timedOut: ended === 'timeout',
        canceled: ended === 'cancel',
        durationMs: Math.round(performance.now() - started),
      });
      const onLost = (error: InfraError): void => {
        const lost = this.#error(`${error.message} while running: ${shown}`, shown, error);
        settle({ error: channel === undefined ? new NotStarted(lost) : lost });
      };
      this.#inflight.add(onLost);
      const stop = (ended: 'timeout' | 'cancel'): void => {
        // Our deadline (or the caller) is what counts: report now; the guest-side
        // reaper cleans up what the KILL signal request does not reach.
        try {
          if (channel) sendSignal(channel, 'KILL');
          channel?.close();
        } catch {
          // the channel may already be gone; the result is the same
        }
        settle({ result: result(ended) });
      };
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      const onAbort = (): void => stop('cancel');
      if (options.signal?.aborted) return stop('cancel');
      options.signal?.addEventListener('abort', onAbort, { once: true });

      client.exec(wire, (err, ch) => {
        // A refused channel means the command was never sent.
        if (err) return settle({ error: new NotStarted(this.#error(`cannot start command on ${this.endpoint.name}: ${err.message}`, shown, err)) });
        channel = ch;
        if (settled) return void ch.close();
        ch.on('data', (b: Buffer) => stdout.push(b));
        ch.stderr.on('data', (b: Buffer) => stderr.push(b));
        ch.on('exit', (code: number | null, signal?: string) => {
          exit = { code: typeof code === 'number' ? code : null, signal: signal ?? undefined };
        });
        ch.on('close', () => {
          if (exit) settle({ result: result('exit') });
          else settle({ error: this.#error(`connection to ${this.endpoint.name} lost (no exit status) while running: ${shown}`, shown) });
        });
        ch.end(options.stdin ?? undefined);
      });
    });
  }

  /** Writes `data` to `remotePath` over SFTP (no shell involved, so any file name works). */
  async upload(data: Buffer | string, remotePath: string, options: { mode?: number } = {}): Promise<void> {
    const sftp = await this.#sftp();
    await this.#guarded(`upload to ${remotePath}`, sftpWrite(sftp, remotePath, data, options.mode ?? 0o644));
  }

  /**
   * The same through the shell, for guests without an SFTP subsystem: the file name is
   * quoted by the one quoting function and the content travels as base64 on stdin.
   */
  async uploadViaShell(data: Buffer | string, remotePath: string, options: { mode?: number; timeoutMs?: number } = {}): Promise<void> {
    const mode = (options.mode ?? 0o644).toString(8);
    const r = await this.exec(sh`base64 -d > ${remotePath} && chmod ${mode} ${remotePath}`, {
      stdin: Buffer.from(data).toString('base64'),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxOutputBytes: 64 * 1024,
    });
    if (r.exitCode !== 0) throw this.#error(`upload to ${remotePath} on ${this.endpoint.name} failed (exit ${r.exitCode ?? r.signal ?? 'timeout'}): ${r.stderr.trim()}`, r.command);
  }

  /** Reads a remote file over SFTP; more than `maxBytes` is an InfraError, never a huge buffer. */
  async download(remotePath: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
    const max = options.maxBytes ?? DEFAULT_MAX_OUTPUT;
    const sftp = await this.#sftp();
    const tooBig = (): InfraError => new InfraError(`${remotePath} on ${this.endpoint.name} is larger than the ${max}-byte limit`, { host: this.endpoint.host });
    return this.#guarded(`download of ${remotePath}`, sftpRead(sftp, remotePath, max, tooBig));
  }



  /**
   * Drops the current link (if any) and connects again, retrying with exponential
   * backoff while the guest is unreachable (restoring, migrating, booting). A host key
   * mismatch or a refused login is not retried.
   */
  async reconnect(): Promise<void> {
    if (this.#link.kind === 'closed') throw new InfraError(`guest connection to ${this.endpoint.name} was closed`, { host: this.endpoint.host });
    if (this.#link.kind === 'up') this.#lose(this.#link.client, 'reconnect requested');
    await this.#ensureLink(true);
  }

  close(): void {
    const link = this.#link;
    this.#link = { kind: 'closed' };
    this.#failInflight(`guest connection to ${this.endpoint.name} was closed`);
    if (link.kind === 'up') link.client.end();
  }

  // ---- links -----------------------------------------------------------------------

  #ensureLink(explicit = false): Promise<Client> {
    const link = this.#link;
    if (link.kind === 'up') return Promise.resolve(link.client);
    if (link.kind === 'closed') return Promise.reject(new InfraError(`guest connection to ${this.endpoint.name} was closed`, { host: this.endpoint.host }));
    if (this.#connecting) return this.#connecting;
    const first = this.#secret === undefined;
    if (!first && !explicit && this.#options.autoReconnect === false) {
      return Promise.reject(new InfraError(`connection to ${this.endpoint.name} is down (${link.reason}); call reconnect()`, { host: this.endpoint.host }));
    }
    this.#connecting = this.#connectWithBackoff().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #connectWithBackoff(): Promise<Client> {
    const { initialMs = 250, maxMs = 5_000, totalMs = 60_000 } = this.#options.backoff ?? {};
    const deadline = performance.now() + totalMs;
    let delay = initialMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const client = await this.#connectOnce();
        if (this.#link.kind === 'closed') {
          client.end();
          throw new InfraError(`guest connection to ${this.endpoint.name} was closed`, { host: this.endpoint.host });
        }
        this.#link = { kind: 'up', client };
        if (attempt > 1) this.#log(`reconnected to ${this.endpoint.name} after ${attempt} attempts`);
        return client;
      } catch (e) {
        // Bad input (a secret that cannot be read) and refusals are not transient.
        if (e instanceof InputError) throw e;
        const fatal = e instanceof HostKeyMismatchError || (e as { level?: string }).level === 'client-authentication' || this.#link.kind === 'closed';
        const error = e instanceof InfraError ? e : this.#error(`cannot connect to ${this.endpoint.name} (${this.endpoint.host}:${this.endpoint.port}): ${(e as Error).message}`, undefined, e);
        if (fatal || performance.now() + delay > deadline) throw error;
        this.#log(`connect attempt ${attempt} to ${this.endpoint.name} failed (${error.message}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, maxMs);
      }
    }
  }

  async #connectOnce(): Promise<Client> {
    this.#secret ??= await resolveCredential(this.endpoint.credential, this.#redactor);
    return openClient(this.endpoint, this.#secret, {
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 10_000,
      keepaliveIntervalMs: this.#options.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: this.#options.keepaliveCountMax ?? 3,
      redactor: this.#redactor,
      onLost: (client, reason) => this.#lose(client, reason),
    });
  }


  #lose(client: Client, reason: string): void {
    if (this.#link.kind !== 'up' || this.#link.client !== client) return;
    this.#link = { kind: 'down', reason };
    client.end();
    this.#failInflight(`connection to ${this.endpoint.name} lost (${reason})`);
  }

  #failInflight(message: string): void {
    const error = new InfraError(this.#redactor.redact(message), { host: this.endpoint.host });
    for (const fail of [...this.#inflight]) fail(error);
  }


  /**
   * One SFTP session per link, shared by uploads and downloads: opening one costs a
   * round trip and a process on the guest, which dominated deploying many files.
   */
  async #sftp(): Promise<SFTPWrapper> {
    const client = await this.#ensureLink();
    const cached = this.#sftpSession;
    if (cached && cached.client === client) return cached.session;
    const session: Promise<SFTPWrapper> = this.#guarded('sftp session', new Promise<SFTPWrapper>((resolve, reject) => {
      client.sftp((err, s) => {
        if (err) return reject(err);
        s.on('close', () => this.#dropSftp(session));
        resolve(s);
      });
    }));
    this.#sftpSession = { client, session };
    session.catch(() => this.#dropSftp(session));
    return session;
  }

  #dropSftp(session: Promise<SFTPWrapper>): void {
    if (this.#sftpSession?.session === session) this.#sftpSession = undefined;
  }

  /** Races an operation against the link dying, and wraps its failure as InfraError. */
  async #guarded<T>(what: string, op: Promise<T>): Promise<T> {
    let onLost!: (e: InfraError) => void;
    const lost = new Promise<never>((_, reject) => (onLost = reject));
    this.#inflight.add(onLost);
    try {
      return await Promise.race([op, lost]);
    } catch (e) {
      if (e instanceof InfraError) throw this.#redactor.redactError(e);
      throw this.#error(`${what} on ${this.endpoint.name} failed: ${(e as Error).message}`, undefined, e);
    } finally {
      this.#inflight.delete(onLost);
    }
  }

  #error(message: string, command?: string, cause?: unknown): InfraError {
    return new InfraError(this.#redactor.redact(message), { host: this.endpoint.host, command, cause });
  }

  #log(line: string): void {
    this.#options.log?.(this.#redactor.redact(line));
  }
}

/**
 * Sends a `signal` channel request (RFC 4254 6.9); OpenSSH's sshd delivers it with
 * killpg() to the session's process group. ssh2's own `channel.signal()` silently does
 * nothing once stdin has been closed, which every command here does at start, so the
 * request goes through the protocol object directly. If ssh2's internals ever change
 * shape, this does nothing and the guest-side reaper still ends the command.
 */
function sendSignal(channel: ClientChannel, name: 'KILL' | 'TERM'): void {
  const c = channel as unknown as { outgoing?: { id?: number; state?: string }; _client?: { _protocol?: { signal?: (id: number, s: string) => void } } };
  const id = c.outgoing?.id;
  // 'eof' is our own end of stdin; channel requests are still allowed after it.
  const state = c.outgoing?.state;
  if ((state === 'open' || state === 'eof') && typeof id === 'number') c._client?._protocol?.signal?.(id, name);
}
