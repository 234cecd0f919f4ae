// HostShell over SSH (ssh2) to a host's OpenSSH server, for remote Hyper-V hosts.
//
// Why an exec channel running our own PowerShell loop (remote-loop.ts) and not the sshd
// "powershell" subsystem: the subsystem speaks the PowerShell Remoting Protocol (binary
// PSRP/CLIXML fragments), a second protocol to implement and get right, and it needs a
// Subsystem line in every host's sshd_config. A plain exec channel works with the default
// Windows OpenSSH set-up (cmd.exe or PowerShell as its DefaultShell) and carries exactly
// what the local transport carries: one script in, our envelope line out.
//
// Like the local transport, one PowerShell process per host stays up on one channel of
// one connection, so a command costs a round trip, not a PowerShell start (~0.3-1 s).
// After each command the loop prints an end marker to stdout and stderr; the command's
// output is what comes before it, wherever on its line the marker stands (a console may
// put control sequences, a BOM or a banner before it). A timeout or cancel closes the
// channel and the connection: the process may still be inside the command, and is never
// given another one.

import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import type { PsCommand } from './command.ts';
import { execute, type Exchange, type RawReply } from './execute.ts';
import { endMarker, loopLine, remoteCommandLine, type RemoteShell } from './remote-loop.ts';
import type { HostShell, RunOptions, ShellResult } from './types.ts';

export type SshAuth = { kind: 'key'; privateKey: string; passphrase?: string | undefined } | { kind: 'password'; password: string };
export type SshHostKey = { kind: 'fingerprint'; sha256: string } | { kind: 'known-hosts'; path: string };

export interface SshPwshOptions {
  host: string;
  address: string;
  port: number;
  user: string;
  auth: SshAuth;
  /** The host key is always pinned; there is no "accept any key". */
  hostKey: SshHostKey;
  /** Which PowerShell the host runs the bench's commands in: Windows PowerShell 5.1 (`powershell`, the default) or PowerShell 7 (`pwsh`). */
  shell?: RemoteShell;
  /**
   * Replaces the shell's program name in the command line (a full path, or in tests
   * `env VAR=value /path/pwsh`); the transport adds its own arguments.
   */
  remoteProgram?: string | undefined;
  connectTimeoutMs?: number;
}

/** The shell a host runs when its inventory entry does not say (documented in README). */
export const DEFAULT_REMOTE_SHELL: RemoteShell = 'powershell';

interface Session {
  client: ssh2.Client;
  channel: ClientChannel | undefined;
  stdout: string;
  stderr: string;
  /** Set when the connection or channel is gone, with why. */
  ended: string | undefined;
  /** Called whenever output arrives or the session ends. */
  wake: (() => void) | undefined;
}

export class SshPwshShell implements HostShell {
  readonly host: string;
  readonly transport = 'ssh' as const;
  readonly #o: SshPwshOptions;
  #session: Promise<Session> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  sessionsStarted = 0;

  constructor(options: SshPwshOptions) {
    this.host = options.host;
    this.#o = options;
  }

  run(cmd: PsCommand, options: RunOptions): Promise<ShellResult> {
    const next = this.#queue.then(() => execute({ host: this.host, transport: 'ssh' }, cmd, options, (_line, rendered) => this.#exchange(loopLine(rendered.nonce, rendered.script), rendered.nonce)));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (s) discard(await s.catch(() => undefined));
  }

  #exchange(line: string, nonce: string): Exchange {
    let current: Session | undefined;
    let aborted = false;
    const done = (async (): Promise<RawReply> => {
      let s: Session;
      try {
        s = await this.#current();
      } catch (e) {
        return { kind: 'unreachable', detail: (e as Error).message };
      }
      // Timed out or canceled while connecting: the command must not start late.
      if (aborted) {
        discard(s);
        return { kind: 'lost', detail: 'aborted before the command was sent', stdout: '', stderr: '' };
      }
      current = s;
      const marker = endMarker(nonce);
      s.channel!.write(line);
      for (;;) {
        const out = cut(s.stdout, marker);
        const err = cut(s.stderr, marker);
        if (out !== undefined && err !== undefined) {
          s.stdout = out.rest;
          s.stderr = err.rest;
          return { kind: 'reply', stdout: out.before, stderr: err.before, exitCode: undefined };
        }
        if (s.ended !== undefined) {
          if (this.#session && (await this.#session.catch(() => undefined)) === s) this.#session = undefined;
          // The session is over but its SSH connection may not be: close it, or it keeps
          // the process alive after the command's result (issue 16).
          discard(s);
          const said = s.stderr.trim().slice(-300);
          return { kind: 'lost', detail: said ? `${s.ended}: ${said}` : s.ended, stdout: s.stdout, stderr: s.stderr };
        }
        await new Promise<void>((resolve) => { s.wake = resolve; });
      }
    })();
    return {
      done,
      abort: () => {
        aborted = true;
        const p = this.#session;
        this.#session = undefined;
        if (current) discard(current);
        else void p?.then(discard, () => undefined);
      },
    };
  }

  #current(): Promise<Session> {
    const existing = this.#session;
    if (!existing) return this.#reopen();
    return existing.then((s) => {
      if (s.ended === undefined) return s;
      discard(s); // an ended session's connection is closed before another is opened
      return this.#reopen();
    }, () => this.#reopen());
  }

  /** A new connection and session; a failed attempt is forgotten, so the next run tries again. */
  #reopen(): Promise<Session> {
    const p = this.#open();
    this.#session = p;
    p.catch(() => {
      if (this.#session === p) this.#session = undefined;
    });
    return p;
  }

  #open(): Promise<Session> {
    this.sessionsStarted++;
    const o = this.#o;
    return new Promise<Session>((resolve, reject) => {
      const client = new ssh2.Client();
      const s: Session = { client, channel: undefined, stdout: '', stderr: '', ended: undefined, wake: undefined };
      let seenKey = '';
      const end = (why: string): void => {
        s.ended ??= why;
        s.wake?.();
      };
      const config: ConnectConfig = {
        host: o.address, port: o.port, username: o.user, readyTimeout: o.connectTimeoutMs ?? 20_000,
        hostVerifier: (key: Buffer) => {
          seenKey = fingerprint(key);
          return hostKeyMatches(o.hostKey, key, o.address, o.port);
        },
        ...(o.auth.kind === 'key' ? { privateKey: o.auth.privateKey, passphrase: o.auth.passphrase } : { password: o.auth.password }),
      };
      client.on('ready', () => {
        // Commands are small writes that follow ssh2's own window-adjust packets; with
        // Nagle's algorithm each waited for the server's delayed ACK (~40 ms a command).
        client.setNoDelay(true);
        client.exec(remoteCommandLine(o.shell ?? DEFAULT_REMOTE_SHELL, o.remoteProgram), (err, channel) => {
          if (err) { client.end(); reject(new Error(`cannot start PowerShell: ${err.message}`)); return; }
          s.channel = channel;
          channel.setEncoding('utf8');
          channel.stderr.setEncoding('utf8');
          channel.on('data', (d: string) => { s.stdout += d; s.wake?.(); });
          channel.stderr.on('data', (d: string) => { s.stderr += d; s.wake?.(); });
          channel.on('exit', (code: number | null, signal?: string) => end(signal ? `remote PowerShell killed by ${signal}` : `remote PowerShell exited with code ${code}`));
          channel.on('close', () => end('channel closed'));
          // An unhandled 'error' event would end the bench; a broken channel is a lost session.
          channel.on('error', (e: Error) => end(`channel error: ${e.message}`));
          channel.stderr.on('error', (e: Error) => end(`channel error: ${e.message}`));
          resolve(s);
        });
      });
      client.on('error', (e: Error & { level?: string }) => {
        const why = /verification failed/i.test(e.message) ? `host key mismatch: ${o.address}:${o.port} presented ${seenKey}, which is not the pinned key` : `${e.message}${e.level ? ` (${e.level})` : ''}`;
        end(`connection error: ${why}`);
        reject(new Error(why));
      });
      client.on('close', () => { end('connection closed'); reject(new Error('connection closed before PowerShell started')); });
      client.connect(config);
    });
  }
}

/**
 * The text before `marker`, and what follows the end of the marker's line; undefined
 * until the marker and its line end have arrived. The marker may stand anywhere on its
 * line: a console may have written control sequences or a BOM in front of it.
 */
export function cut(buf: string, marker: string): { before: string; rest: string } | undefined {
  const at = buf.indexOf(marker);
  if (at < 0) return undefined;
  const lineEnd = buf.indexOf('\n', at + marker.length);
  if (lineEnd < 0) return undefined;
  return { before: buf.slice(0, at), rest: buf.slice(lineEnd + 1) };
}

function discard(s: Session | undefined): void {
  if (!s) return;
  s.ended ??= 'discarded';
  try {
    s.channel?.signal('KILL');
    s.channel?.close();
  } catch { /* already gone */ }
  s.client.end();
  s.client.destroy();
  s.wake?.();
}

/** OpenSSH's SHA256 fingerprint of a host key blob: base64 without padding. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export function hostKeyMatches(pin: SshHostKey, key: Buffer, address: string, port: number): boolean {
  if (pin.kind === 'fingerprint') return fingerprint(key) === pin.sha256.replace(/=+$/, '');
  const names = port === 22 ? [address, `[${address}]:22`] : [`[${address}]:${port}`];
  const blob = key.toString('base64');
  for (const raw of readFileSync(pin.path, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@revoked')) continue;
    const [hosts, , b64] = line.startsWith('@') ? line.split(/\s+/).slice(1) : line.split(/\s+/);
    if (!hosts || !b64 || b64 !== blob) continue;
    if (hosts.split(',').some((h) => names.includes(h) || hashedMatch(h, names))) return true;
  }
  return false;
}

/** known_hosts entries hashed by `ssh-keygen -H`: |1|salt|HMAC-SHA1(salt, name). */
function hashedMatch(entry: string, names: string[]): boolean {
  const m = /^\|1\|([^|]+)\|(.+)$/.exec(entry);
  if (!m) return false;
  const salt = Buffer.from(m[1]!, 'base64');
  return names.some((n) => createHmac('sha1', salt).update(n).digest('base64') === m[2]);
}
