// Secrets are referenced, never written down (DESIGN.md, "The lab").
//
// The inventory names where a secret lives: an environment variable or a file (an SSH
// private key, usually). `resolveSecret` reads it and registers the value with a
// `Redactor` *before* returning it, so that no code path can hold a secret that the
// redactor does not know. Everything that leaves the lab layer as text (log lines,
// error messages, recorded commands, traces) goes through `redact` on the way out.
//
// The redactor scrubs the value itself and the forms in which it travels through our
// own code: base64 (values are sent to shells as base64) and, for multi-line secrets
// such as PEM keys, each long line, so a partial echo is scrubbed too.

import { resolve as resolvePath } from 'node:path';
import ssh2 from 'ssh2';
import { InputError, type InputLocation } from '../errors.ts';
import { readInputText } from '../input-files.ts';

export type SecretRef =
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string };

export const REDACTED = '[redacted]';

/** Lines shorter than this are not scrubbed on their own (PEM headers, short words). */
const MIN_FRAGMENT = 16;

export class Redactor {
  readonly #needles = new Set<string>();
  // Longest first, so a fragment never leaves part of a longer match behind.
  #sorted: string[] = [];

  /** Registers a secret value; empty strings are ignored (they would match everywhere). */
  add(secret: string): void {
    if (secret.length === 0) return;
    const forms = [secret, secret.trim(), Buffer.from(secret, 'utf8').toString('base64')];
    if (secret.includes('\n')) {
      for (const line of secret.split(/\r?\n/)) if (line.trim().length >= MIN_FRAGMENT) forms.push(line.trim());
    }
    for (const f of forms) if (f.length > 0) this.#needles.add(f);
    this.#sorted = [...this.#needles].sort((a, b) => b.length - a.length);
  }

  /** How many distinct strings are scrubbed (for tests and diagnostics, never the values). */
  get size(): number {
    return this.#needles.size;
  }

  redact(text: string): string {
    let out = scrubKeyParserText(text);
    for (const needle of this.#sorted) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    return out;
  }

  /** An error whose message (and cause chain's messages) no longer hold a secret. */
  redactError<E extends Error>(error: E): E {
    error.message = this.redact(error.message);
    if (error.stack) error.stack = this.redact(error.stack);
    if (error.cause instanceof Error && error.cause !== error) this.redactError(error.cause);
    return error;
  }
}

/** The process-wide redactor: the CLI, logs and reporters all scrub through this one. */
export const redactor = new Redactor();

export function redact(text: string): string {
  return redactor.redact(text);
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** Relative file references are resolved against this (the inventory's folder). */
  baseDir?: string;
  redactor?: Redactor;
  /** Where the reference was written, for the error message. */
  where?: { file?: string; line?: number; field?: string };
}

/**
 * Reads a referenced secret. A missing variable or unreadable file is bad input
 * (exit 2): the message names the reference, never a value.
 */
export async function resolveSecret(ref: SecretRef, options: ResolveOptions = {}): Promise<string> {
  const sink = options.redactor ?? redactor;
  const where = options.where ?? {};
  if (ref.kind === 'env') {
    const value = (options.env ?? process.env)[ref.name];
    if (value === undefined || value === '') {
      throw new InputError(`environment variable ${ref.name} is not set`, where, {
        hint: `export ${ref.name} before running the bench, or reference a key file instead`,
      });
    }
    sink.add(value);
    return value;
  }
  const path = resolvePath(options.baseDir ?? process.cwd(), expandHome(ref.path, options.env ?? process.env));
  let value: string;
  try {
    // A FIFO or a looping link is refused, not read (input-files.ts).
    value = await readInputText(path);
  } catch (e) {
    const code = ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    const reason = (e as Error).message.slice(path.length + 2);
    throw new InputError(`cannot read secret file ${path}${code ? ` (${code})` : ''}: ${reason}`, where, {
      hint: 'check the path; relative paths are taken from the inventory file\'s folder',
    });
  }
  if (value.trim() === '') throw new InputError(`secret file ${path} is empty`, where);
  sink.add(value);
  return value;
}

export function expandHome(path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path === '~' || path.startsWith('~/')) return `${env.HOME ?? ''}${path.slice(1)}`;
  return path;
}

/** Text that looks like a private key written inline where only a reference belongs. */
export function looksLikeInlineSecret(value: string): boolean {
  return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(value);
}

/**
 * ssh2's key parser quotes bytes it decoded from the key in some of its messages
 * ("Unsupported OpenSSH key magic: " and 15 bytes of the key). Those bytes are not the
 * key's text or its base64, so the redactor's needles cannot match them: the messages
 * are recognised by their wording instead, and everything after the colon, to the end
 * of the line, is dropped.
 */
const KEY_PARSER_MESSAGE =
  /(Unsupported OpenSSH key magic|Unsupported cipher for OpenSSH key|Unsupported kdf name for OpenSSH key|Unsupported OpenSSH private key type|Unsupported private key EC OID|Unsupported OpenSSH public key type|Unsupported PPK key type|Unsupported key type|Unsupported OpenSSH key type):[^\n]*/g;

export function scrubKeyParserText(text: string): string {
  return text.replace(KEY_PARSER_MESSAGE, `$1: ${REDACTED}`);
}

/**
 * Whether ssh2 can use `key` (with `passphrase`): refused as bad input before any
 * connection, with ssh2's reason less the key bytes it quotes.
 */
export function checkPrivateKey(key: string, passphrase: string | undefined, where: InputLocation): void {
  let parsed: unknown;
  try {
    parsed = ssh2.utils.parseKey(key, passphrase);
  } catch (e) {
    parsed = e;
  }
  const problem = parsed instanceof Error ? parsed : Array.isArray(parsed) && parsed.length === 0 ? new Error('no key found') : undefined;
  if (problem) {
    throw new InputError(`the private key cannot be used: ${redact(problem.message)}`, where, {
      hint: 'reference an unencrypted OpenSSH, PEM or PPK private key, or give its passphrase',
    });
  }
}