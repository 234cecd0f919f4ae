// The guest's SSH host key, as the guest itself printed it on its serial console during
// first boot (vm-templates: a template may leave guest.hostKey out because the key is
// made on first boot). cloud-init writes a block like this to the console:
//
//   <14>Nov 24 03:00:01 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----
//   <14>Nov 24 03:00:01 cloud-init: 256 SHA256:Xh1...43 chars... root@ubuntu (ED25519)
//   <14>Nov 24 03:00:01 cloud-init: 3072 SHA256:k9Q... root@ubuntu (RSA)
//   <14>Nov 24 03:00:01 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----
//
// The console is the host's own channel to the VM, not the network, so pinning what it
// shows is not trust-on-first-use of whatever answers on port 22. Only a complete block
// counts (a block cut by the end of the log is still being written), the last one wins
// (a guest that rebooted made new keys), and the key type the SSH client prefers is
// pinned: ED25519, then ECDSA, then RSA.

import { InfraError } from '../../errors.ts';
import { readHostFile } from '../../lab/artefacts.ts';
import type { HyperV } from '../../lab/hyperv.ts';
import type { HostKeyPin } from '../../lab/inventory.ts';
import type { Clock } from '../engine/job-pipeline.ts';

export interface ConsoleFingerprint {
  type: string;
  sha256: string;
}

const BEGIN = '-----BEGIN SSH HOST KEY FINGERPRINTS-----';
const END = '-----END SSH HOST KEY FINGERPRINTS-----';
const LINE = /\b\d+ (SHA256:[A-Za-z0-9+/]{43}) .*\((\w+)\)\s*$/;
const PREFERENCE = ['ED25519', 'ECDSA', 'RSA'];

/** The fingerprints of the last complete block in the console text, or none. */
export function consoleFingerprints(text: string): ConsoleFingerprint[] {
  const lines = text.split(/\r?\n/);
  let found: ConsoleFingerprint[] = [];
  let open: ConsoleFingerprint[] | undefined;
  for (const line of lines) {
    if (line.includes(BEGIN)) { open = []; continue; }
    if (line.includes(END)) { if (open) found = open; open = undefined; continue; }
    const m = open ? LINE.exec(line) : null;
    if (m && open) open.push({ sha256: m[1]!, type: m[2]!.toUpperCase() });
  }
  return found;
}

/** The fingerprint to pin from a block, by the SSH client's preference. */
export function preferredPin(fps: readonly ConsoleFingerprint[]): HostKeyPin | undefined {
  for (const type of PREFERENCE) {
    const f = fps.find((x) => x.type === type);
    if (f) return { kind: 'fingerprint', sha256: f.sha256 };
  }
  return undefined;
}

/** Polls the serial log on the host until it shows the fingerprint block, or throws at the deadline. */
export async function pinFromConsole(hv: HyperV, logPath: string, timeoutMs: number, clock: Clock, pollMs = 2000): Promise<HostKeyPin> {
  const until = clock.now() + timeoutMs;
  for (;;) {
    const text = (await readHostFile(hv, logPath).catch(() => undefined))?.toString('utf8') ?? '';
    const pin = preferredPin(consoleFingerprints(text));
    if (pin) return pin;
    if (clock.now() >= until) {
      throw new InfraError(`the guest printed no SSH host key fingerprints on its serial console within ${Math.round(timeoutMs / 1000)} s (${logPath}); pin guest.hostKey in the template, or check that cloud-init writes them to the console`, { host: hv.host, timedOut: true });
    }
    await clock.sleep(pollMs);
  }
}
