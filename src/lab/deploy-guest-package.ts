// Putting a driver package (driver-package.ts) into a Linux guest over SSH, taking it off
// again, and reading the trace it says it writes. The package's own commands do the
// driver-specific work (build, load, wait for the channel); the bench copies the files,
// runs the commands in the package folder and reports their failures with their output.
//
// An install or uninstall command is the author's text for the guest's POSIX shell. It
// reaches `sh -c` as one word quoted by `sh` (guest/posix-quote.ts), never spliced into
// our own script, so whatever it holds (quotes, $, newlines) arrives byte for byte. The
// package folder is its working directory and $BENCH_PACKAGE_DIR.

import { readFile } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { InfraError, InputError } from '../errors.ts';
import { listPackageFiles } from './deploy-guest.ts';
import type { GuestDriverPackage } from './driver-package.ts';
import { ControlWriteAgain, isEagainWrite } from './guest/control-write.ts';
import { sh, type ShellCommand } from './guest/posix-quote.ts';
import type { ExecResult, GuestSsh } from './guest-ssh.ts';

export interface InstalledPackage {
  /** Where the files are in the guest. */
  remoteDir: string;
  /** Upper-case SHA-256 of the package's `binary` after install, when it names one. */
  binarySha256: string | undefined;
}

/** Copies the files, runs `install` in the package folder, and hashes the binary. */
export async function installGuestPackage(guest: GuestSsh, pkg: GuestDriverPackage): Promise<InstalledPackage> {
  await uploadPackage(guest, pkg);
  await runPackageCommand(guest, pkg, pkg.install, 'install', pkg.installTimeoutMs);
  return { remoteDir: pkg.remoteDir, binarySha256: pkg.binary ? await hashBinary(guest, pkg, pkg.binary) : undefined };
}

/** Runs `uninstall` in the package folder (the files stay, for the next install). */
export async function uninstallGuestPackage(guest: GuestSsh, pkg: GuestDriverPackage): Promise<void> {
  await runPackageCommand(guest, pkg, pkg.uninstall, 'uninstall', pkg.installTimeoutMs);
}

export async function uploadPackage(guest: GuestSsh, pkg: GuestDriverPackage): Promise<void> {
  const entries = pkg.include ?? ['.'];
  await exec(guest, sh`mkdir -p ${pkg.remoteDir}`, 'create the package folder', 60_000);
  for (const entry of entries) {
    for (const file of await listPackageFiles(join(pkg.files, entry))) {
      const remote = posix.join(pkg.remoteDir, ...relative(pkg.files, file).split(/[\\/]/));
      await exec(guest, sh`mkdir -p ${posix.dirname(remote)}`, 'create a package folder', 60_000);
      await guest.upload(await readFile(file), remote);
    }
  }
}

/**
 * The trace as text, from the package's trace file (after its collect command, if any).
 * A trace bigger than `maxBytes` is an error, never cut silently.
 */
export async function readPackageTrace(guest: GuestSsh, pkg: GuestDriverPackage, maxBytes = 64 * 1024 * 1024): Promise<string> {
  const trace = pkg.trace;
  if (trace.format !== 'jsonl') throw new InputError(`a guest trace must be jsonl, not ${trace.format}`, { field: 'guest.driver.trace.format' });
  if (trace.collect !== undefined) await runPackageCommand(guest, pkg, trace.collect, 'collect the trace', 120_000);
  const r = await guest.exec(privileged(pkg, sh`cat ${trace.path}`), { timeoutMs: 120_000, maxOutputBytes: maxBytes });
  if (r.exitCode !== 0) throw failure(guest, `reading the trace ${trace.path} failed`, r);
  if (r.truncated) throw new InfraError(`${trace.path} holds ${r.stdoutBytes} bytes, more than the ${maxBytes}-byte limit`, { host: guest.endpoint.host });
  return r.stdout;
}

/** `trace_seq` and `trace_dropped` from the package's counters file, when it names one. */
export async function readPackageCounters(guest: GuestSsh, pkg: GuestDriverPackage): Promise<{ traceSeq: number; traceDropped: number } | undefined> {
  if (pkg.trace.format !== 'jsonl' || pkg.trace.counters === undefined) return undefined;
  const path = pkg.trace.counters;
  const r = await guest.exec(privileged(pkg, sh`cat ${path}`), { timeoutMs: 15_000, maxOutputBytes: 1024 * 1024 });
  if (r.exitCode !== 0) throw failure(guest, `reading ${path} failed`, r);
  const m = /trace_seq=(\d+) trace_dropped=(\d+)/.exec(r.stdout);
  if (!m) throw new InputError(`does not hold "trace_seq=N trace_dropped=N": ${JSON.stringify(r.stdout.slice(0, 120))}`, { file: `guest ${guest.endpoint.name}:${path}`, line: 1 });
  return { traceSeq: Number(m[1]), traceDropped: Number(m[2]) };
}

/**
 * Writes one line to a driver's control file in the guest (the device module's
 * `control.linuxGuest.controlFile`, a debugfs file taking one command per write), as
 * root when the package says sudo. Both reach the guest's shell quoted by `sh`.
 */
export async function writeControlLine(guest: GuestSsh, pkg: GuestDriverPackage, file: string, line: string): Promise<void> {
  // coreutils' printf (through env), not the shell's: it names the write's errno (guest/control-write.ts).
  const command = privileged(pkg, sh`sh -c ${sh`env printf '%s' ${line} > ${file}`.script}`);
  const r = await guest.exec(command, { timeoutMs: 60_000, maxOutputBytes: 1024 * 1024 });
  if (r.exitCode === 0) return;
  const e = failure(guest, `could not send "${line}" to ${file}`, r);
  if (isEagainWrite(r)) throw new ControlWriteAgain(`the driver refused "${line}" at ${file} with EAGAIN (a send given up on a full ring): ${e.message}`, { host: guest.endpoint.host, command: r.command });
  throw e;
}

/** Runs one of the package's commands with `sh -c`, in its folder, as root when it asks. */
export async function runPackageCommand(guest: GuestSsh, pkg: GuestDriverPackage, command: string, what: string, timeoutMs: number): Promise<ExecResult> {
  const script = sh`cd ${pkg.remoteDir} && BENCH_PACKAGE_DIR=${pkg.remoteDir} && export BENCH_PACKAGE_DIR && ${sh`sh -c ${command}`}`;
  return exec(guest, privileged(pkg, sh`sh -c ${script.script}`), `${what} the driver package`, timeoutMs);
}

async function hashBinary(guest: GuestSsh, pkg: GuestDriverPackage, binary: string): Promise<string> {
  const path = posix.join(pkg.remoteDir, binary);
  const r = await exec(guest, sh`sha256sum ${path}`, `hash ${path}`, 60_000);
  const sha = /^([0-9a-f]{64})\b/.exec(r.stdout)?.[1];
  if (!sha) throw failure(guest, `hashing ${path} gave no SHA-256`, r);
  return sha.toUpperCase();
}

function privileged(pkg: GuestDriverPackage, command: ShellCommand): ShellCommand {
  return pkg.sudo ? sh`sudo -n ${command}` : command;
}

async function exec(guest: GuestSsh, command: ShellCommand, what: string, timeoutMs: number): Promise<ExecResult> {
  const r = await guest.exec(command, { timeoutMs, maxOutputBytes: 1024 * 1024 });
  if (r.exitCode !== 0) throw failure(guest, `could not ${what}`, r);
  return r;
}

function failure(guest: GuestSsh, what: string, r: ExecResult): InfraError {
  const status = r.timedOut ? 'timed out' : r.exitCode !== null ? `exit ${r.exitCode}` : `signal ${r.signal ?? '?'}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n');
  return new InfraError(`${what} on ${guest.endpoint.name} (${status})${tail ? `:\n${tail}` : ''}`, {
    host: guest.endpoint.host, command: r.command, timedOut: r.timedOut,
  });
}
