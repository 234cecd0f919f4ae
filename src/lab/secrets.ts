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

import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { InputError } from '../errors.ts';

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
    let out = text;
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
    value = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new InputError(`cannot read secret file ${path} (${code})`, where, {
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
