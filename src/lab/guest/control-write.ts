// What a failed write to a Linux guest driver's control file means.
//
// A debugfs write returns what the driver's write handler returns; the sample's and
// blockq's Linux drivers return -EAGAIN when a send gave up after its timeout on a full
// ring (they trace `pkt.timeout` first). The errno reaches us only as the text the guest's
// write tool prints on stderr, so the write is done by coreutils' `printf` (run through
// `env`, not the shell's builtin): dash, Ubuntu's /bin/sh, prints "printf: I/O error" for
// every errno, coreutils prints "printf: write error: <strerror>". "Resource temporarily
// unavailable" is glibc's (and musl's) strerror(EAGAIN) - inferred from those libraries'
// message tables and checked on this machine by injecting EAGAIN into the write with
// strace (test/run/real/lab-guest-send-timeout.test.ts); a guest whose libc words it
// otherwise is reported as an error, never taken for a give-up.

import { InfraError } from '../../errors.ts';

/** strerror(EAGAIN) in glibc and musl, as coreutils writes it at the end of its error line. */
const EAGAIN_TEXT = /: Resource temporarily unavailable\s*$/m;

/** The write failed with EAGAIN: the driver gave a send up (its `pkt.timeout` is in its trace). */
export function isEagainWrite(r: { exitCode: number | null; stderr: string }): boolean {
  return r.exitCode !== null && r.exitCode !== 0 && EAGAIN_TEXT.test(r.stderr);
}

/**
 * A control write the driver refused with EAGAIN. Still an InfraError (exit 3) for a caller
 * that does not expect it; a job's send step takes it as the driver's give-up.
 */
export class ControlWriteAgain extends InfraError {
  constructor(message: string, details: { host?: string; command?: string }) {
    super(message, details);
    this.name = 'ControlWriteAgain';
  }
}
