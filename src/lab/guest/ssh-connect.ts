// Opening one authenticated ssh2 connection to a pinned host. GuestSsh owns the
// connection's life (loss, backoff, reconnection); this file only knows how to make one.

import { Client } from 'ssh2';
import { InfraError } from '../../errors.ts';
import type { Credential, HostKeyPin } from '../inventory.ts';
import { checkPrivateKey, resolveSecret, type Redactor } from '../secrets.ts';
import { acceptedFingerprints, HostKeyMismatchError, sha256Fingerprint } from './host-key.ts';

export interface SshTarget {
  name: string;
  host: string;
  port: number;
  user: string;
  hostKey: HostKeyPin;
}

export type ResolvedCredential = { privateKey: string; passphrase?: string } | { password: string };

/** Reads the referenced secrets (registering them with the redactor first). */
export async function resolveCredential(c: Credential, redactor: Redactor): Promise<ResolvedCredential> {
  const opts = { redactor };
  if (c.kind === 'password') return { password: await resolveSecret(c.password, opts) };
  const privateKey = await resolveSecret(c.key, opts);
  const passphrase = c.passphrase ? await resolveSecret(c.passphrase, opts) : undefined;
  checkPrivateKey(privateKey, passphrase, {});
  return passphrase !== undefined ? { privateKey, passphrase } : { privateKey };
}

export interface ConnectOptions {
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  redactor: Redactor;
  /** Called once if the link fails after it was established. */
  onLost: (client: Client, reason: string) => void;
}

/**
 * Resolves with a ready client, or rejects with HostKeyMismatchError (the presented key
 * is not pinned) or an InfraError whose `level` is ssh2's (`client-authentication` for
 * a refused login, `client-socket` / `client-timeout` for an unreachable host).
 */
export function openClient(target: SshTarget, credential: ResolvedCredential, options: ConnectOptions): Promise<Client> {
  const { host, port, user } = target;
  const pin = acceptedFingerprints(target.hostKey, host, port);
  return new Promise<Client>((resolve, reject) => {
    const client = new Client();
    let presented: string | undefined;
    let ready = false;
    client.on('ready', () => {
      ready = true;
      client.on('close', () => options.onLost(client, 'connection closed'));
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (ready) return options.onLost(client, err.message);
      if (presented !== undefined && !pin.fingerprints.includes(presented)) {
        return reject(new HostKeyMismatchError(`${host}:${port}`, pin.fingerprints, presented, pin.source));
      }
      const message = options.redactor.redact(`cannot connect to ${target.name} (${host}:${port}): ${err.message}`);
      reject(Object.assign(new InfraError(message, { host, cause: err }), { level: err.level }));
    });
    client.connect({
      host,
      port,
      username: user,
      ...credential,
      readyTimeout: options.connectTimeoutMs,
      keepaliveInterval: options.keepaliveIntervalMs,
      keepaliveCountMax: options.keepaliveCountMax,
      // The only place a host key is judged: pinned fingerprints, nothing else.
      hostVerifier: (key: Buffer): boolean => {
        presented = sha256Fingerprint(key);
        return pin.fingerprints.includes(presented);
      },
    });
  });
}
