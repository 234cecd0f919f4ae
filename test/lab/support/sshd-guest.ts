// A GuestSsh session to the test sshd (sshd.ts), with its client key and pinned host key.
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import type { Sshd } from './sshd.ts';

export function connectToSshd(sshd: Sshd, name = 'linux-guest'): Promise<GuestSsh> {
  return GuestSsh.connect({
    name, host: sshd.host, port: sshd.port, user: sshd.user,
    credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } }, hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
  });
}
