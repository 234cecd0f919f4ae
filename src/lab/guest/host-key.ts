// Pinned SSH host keys: an SHA256 fingerprint from the inventory, or a known_hosts file.
//
// Only pinned keys are accepted; there is no "trust on first use". A mismatch is an
// InfraError naming both fingerprints, so the user can tell a reprovisioned guest (update
// the pin) from a man in the middle (don't).

import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InfraError, InputError } from '../../errors.ts';
import type { HostKeyPin } from '../inventory.ts';

/** `SHA256:<unpadded base64>` of a raw SSH public key blob, as `ssh-keygen -l` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

export class HostKeyMismatchError extends InfraError {
  readonly expected: readonly string[];
  readonly presented: string;
  constructor(host: string, expected: readonly string[], presented: string, source: string) {
    super(
      `host key of ${host} does not match the pin; refusing to connect. ` +
        `Expected ${expected.length === 0 ? `an entry for ${host} in ${source} (none found)` : `${expected.join(' or ')} (${source})`}, ` +
        `presented ${presented}. If the machine was reinstalled, update the pin; otherwise treat this as an attack.`,
      { host },
    );
    this.name = 'HostKeyMismatchError';
    this.expected = expected;
    this.presented = presented;
  }
}

/** The fingerprints acceptable for `host`:`port` under `pin`, and where they came from. */
export function acceptedFingerprints(pin: HostKeyPin, host: string, port: number): { fingerprints: string[]; source: string } {
  if (pin.kind === 'fingerprint') return { fingerprints: [pin.sha256], source: 'inventory fingerprint' };
  let text: string;
  try {
    text = readFileSync(pin.path, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read known_hosts file ${pin.path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file: pin.path });
  }
  return { fingerprints: knownHostsFingerprints(text, host, port), source: pin.path };
}

/**
 * Fingerprints of the keys `known_hosts` text lists for a host, following sshd(8)'s
 * format: comma-separated patterns (`*`, `?`, `!negation`), `[host]:port` for ports
 * other than 22, hashed names (`|1|salt|hmac`). `@revoked` keys are never accepted;
 * `@cert-authority` lines are skipped (certificates are not used by the lab).
 */
export function knownHostsFingerprints(text: string, host: string, port: number): string[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const accepted: string[] = [];
  const revoked = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) [marker, ...fields] = fields;
    const [patterns, , blob] = fields;
    if (!patterns || !blob || marker === '@cert-authority') continue;
    if (!hostMatches(patterns, name)) continue;
    const fp = sha256Fingerprint(Buffer.from(blob, 'base64'));
    if (marker === '@revoked') revoked.add(fp);
    else accepted.push(fp);
  }
  return accepted.filter((fp) => !revoked.has(fp));
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    const negated = p.startsWith('!');
    if (glob(negated ? p.slice(1) : p, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function glob(pattern: string, name: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}
