// Deploying a guest driver module into a Linux guest over SSH, and reading its trace.
//
// Two ways in: upload a module built elsewhere, or upload the sources and build them in
// the guest against its own kernel headers (the only way to match a distribution kernel
// we did not build). Then insmod with the scenario's module parameters, wait until the
// driver has bound the channel (a device directory appears under the vmbus driver in
// sysfs), and later read the JSON Lines trace from the driver's debugfs directory.
//
// Every path and tool is a parameter (`GuestDriverLayout`), so tests can point the same
// code at fake files and commands, and a renamed driver needs no code change. Values
// reach the guest shell only through `sh` (one quoting function).

import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { InfraError, InputError } from '../errors.ts';
import { sh, type ShellCommand } from './guest/posix-quote.ts';
import type { ExecResult, GuestSsh } from './guest-ssh.ts';

export interface GuestDriverLayout {
  /** Kernel module name, as in /sys/module and `rmmod`. */
  moduleName: string;
  /** Where sources and the .ko go in the guest. */
  remoteDir: string;
  /** The driver's directory on the vmbus bus: bound devices appear in it. */
  sysDriverDir: string;
  /** Present while the module is loaded. */
  sysModuleDir: string;
  /** The driver's debugfs directory (control, trace, counters). */
  debugfsDir: string;
  /** 'sudo' runs privileged commands with `sudo -n` (the guest user has NOPASSWD). */
  privilege: 'root' | 'sudo';
  tools: { insmod: string; rmmod: string; make: string };
}

/**
 * The usual layout of a Linux guest driver module named `moduleName`: bound devices
 * under the vmbus driver's sysfs folder, control, trace and counters in its debugfs
 * folder. The sample guest driver (lab/drivers/guest-linux) is `vmbus_sample_guest`.
 */
export function guestDriverLayout(moduleName: string, overrides: Partial<Omit<GuestDriverLayout, 'moduleName'>> = {}): GuestDriverLayout {
  return {
    moduleName,
    remoteDir: '/var/tmp/bench-driver',
    sysDriverDir: `/sys/bus/vmbus/drivers/${moduleName}`,
    sysModuleDir: `/sys/module/${moduleName}`,
    debugfsDir: `/sys/kernel/debug/${moduleName}`,
    privilege: 'sudo',
    tools: { insmod: 'insmod', rmmod: 'rmmod', make: 'make' },
    ...overrides,
  };
}

export type ModuleSource =
  | { kind: 'prebuilt'; koFile: string }
  /** `dirs` are uploaded side by side under remoteDir (Kbuild finds ../common); `buildDir` is built. */
  | { kind: 'build'; dirs: Record<string, string>; buildDir: string; makeArgs?: Record<string, string> };

export interface DeployOptions {
  layout: GuestDriverLayout;
  source: ModuleSource;
  /** Module parameters, e.g. { ring_pages: 8 }. */
  params?: Record<string, string | number>;
  bindTimeoutMs?: number;
  buildTimeoutMs?: number;
}

export interface Deployed {
  /** Device instance ids the driver bound, e.g. the channel's instance GUID. */
  boundDevices: string[];
  koPath: string;
}

/** Upload or build, load (after unloading an old copy), and wait for the channel to bind. */
export async function deployGuestDriver(guest: GuestSsh, options: DeployOptions): Promise<Deployed> {
  const { layout } = options;
  await run(guest, sh`mkdir -p ${layout.remoteDir}`, 'create the driver directory');
  const koPath = options.source.kind === 'prebuilt'
    ? await uploadModule(guest, options.source.koFile, layout)
    : await buildInGuest(guest, options.source, layout, options.buildTimeoutMs);
  if (await isLoaded(guest, layout)) await unloadModule(guest, layout);
  await loadModule(guest, koPath, layout, options.params ?? {});
  const boundDevices = await waitForBinding(guest, layout, options.bindTimeoutMs ?? 15_000);
  return { boundDevices, koPath };
}

export async function uploadModule(guest: GuestSsh, koFile: string, layout: GuestDriverLayout): Promise<string> {
  const remote = posix.join(layout.remoteDir, `${layout.moduleName}.ko`);
  await guest.upload(await readFile(koFile), remote, { mode: 0o644 });
  return remote;
}

export async function buildInGuest(guest: GuestSsh, source: Extract<ModuleSource, { kind: 'build' }>, layout: GuestDriverLayout, timeoutMs = 600_000): Promise<string> {
  // Quoting gets the path to make intact, but Kbuild itself splits M=$(CURDIR) on
  // spaces and gives ':', '#', '$' and quotes meanings of its own.
  const buildPath = posix.join(layout.remoteDir, source.buildDir);
  if (/[\s:#$'"\\]/.test(buildPath)) {
    throw new InputError(`cannot build a kernel module in ${JSON.stringify(buildPath)}`, { field: 'remoteDir' }, {
      hint: 'Kbuild needs a build directory without spaces, quotes, backslashes, ":", "#" or "$"',
    });
  }
  for (const [name, localDir] of Object.entries(source.dirs)) {
    for (const file of await listFiles(localDir)) {
      const remote = posix.join(layout.remoteDir, name, ...relative(localDir, file).split(/[\\/]/));
      await run(guest, sh`mkdir -p ${posix.dirname(remote)}`, 'create a source directory');
      await guest.upload(await readFile(file), remote);
    }
  }
  const dir = buildPath;
  const vars = Object.entries(source.makeArgs ?? {}).map(([k, v]) => `${k}=${v}`);
  const r = await guest.exec(sh`${layout.tools.make} -C ${dir} ${vars}`, { timeoutMs, maxOutputBytes: 1024 * 1024 });
  if (r.exitCode !== 0) throw failure(guest, `building ${layout.moduleName} in the guest failed`, r);
  const ko = posix.join(dir, `${layout.moduleName}.ko`);
  await run(guest, sh`test -f ${ko}`, `find the built module ${ko}`);
  return ko;
}

export async function loadModule(guest: GuestSsh, koPath: string, layout: GuestDriverLayout, params: Record<string, string | number>): Promise<void> {
  for (const key of Object.keys(params)) {
    // The name is a module_param identifier; the value is quoted like any other word.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new InfraError(`module parameter name "${key}" is not an identifier`, { host: guest.endpoint.host });
  }
  const words = Object.entries(params).map(([k, v]) => `${k}=${v}`);
  await run(guest, privileged(layout, sh`${layout.tools.insmod} ${koPath} ${words}`), `load ${layout.moduleName}`);
}

export async function unloadModule(guest: GuestSsh, layout: GuestDriverLayout): Promise<void> {
  await run(guest, privileged(layout, sh`${layout.tools.rmmod} ${layout.moduleName}`), `unload ${layout.moduleName}`);
}

export async function isLoaded(guest: GuestSsh, layout: GuestDriverLayout): Promise<boolean> {
  return (await guest.exec(sh`test -d ${layout.sysModuleDir}`, { timeoutMs: 15_000 })).exitCode === 0;
}

const DEVICE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Bound device ids now (entries of the driver dir that are device instance GUIDs). */
export async function boundDevices(guest: GuestSsh, layout: GuestDriverLayout): Promise<string[]> {
  const r = await guest.exec(sh`ls -1 ${layout.sysDriverDir} 2>/dev/null || true`, { timeoutMs: 15_000, maxOutputBytes: 256 * 1024 });
  return r.stdout.split('\n').filter((line) => DEVICE_ID.test(line)).sort();
}

export async function waitForBinding(guest: GuestSsh, layout: GuestDriverLayout, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1_000)) {
    const devices = await boundDevices(guest, layout);
    if (devices.length > 0) return devices;
    if (Date.now() + delay > deadline) {
      throw new InfraError(
        `${layout.moduleName} is loaded but bound no channel within ${timeoutMs} ms (nothing under ${layout.sysDriverDir}); ` +
          'is the VSP offering the channel to this VM?',
        { host: guest.endpoint.host, timedOut: true },
      );
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Writes one command to the driver's debugfs control file (one command per write). */
export async function sendControl(guest: GuestSsh, layout: GuestDriverLayout, command: string): Promise<void> {
  const control = posix.join(layout.debugfsDir, 'control');
  await run(guest, privileged(layout, sh`sh -c ${sh`printf '%s' ${command} > ${control}`.script}`), `send "${command}" to ${control}`);
}

/** The driver's trace as text; a trace bigger than `maxBytes` is an error, never cut silently. */
export async function readGuestTrace(guest: GuestSsh, layout: GuestDriverLayout, maxBytes = 64 * 1024 * 1024): Promise<string> {
  const path = posix.join(layout.debugfsDir, 'trace');
  const r = await guest.exec(privileged(layout, sh`cat ${path}`), { timeoutMs: 120_000, maxOutputBytes: maxBytes });
  if (r.exitCode !== 0) throw failure(guest, `reading ${path} failed`, r);
  if (r.truncated) throw new InfraError(`${path} holds ${r.stdoutBytes} bytes, more than the ${maxBytes}-byte limit`, { host: guest.endpoint.host });
  return r.stdout;
}

/** `trace_seq` and `trace_dropped` from the counters file: a trace with drops is incomplete. */
export async function readTraceCounters(guest: GuestSsh, layout: GuestDriverLayout): Promise<{ traceSeq: number; traceDropped: number }> {
  const path = posix.join(layout.debugfsDir, 'counters');
  const r = await guest.exec(privileged(layout, sh`cat ${path}`), { timeoutMs: 15_000, maxOutputBytes: 64 * 1024 });
  if (r.exitCode !== 0) throw failure(guest, `reading ${path} failed`, r);
  const m = /trace_seq=(\d+) trace_dropped=(\d+)/.exec(r.stdout);
  // Output we cannot read is bad input (exit 2), like a malformed trace line.
  if (!m) throw new InputError(`does not start with "trace_seq=N trace_dropped=N": ${JSON.stringify(r.stdout.slice(0, 120))}`, { file: `guest ${guest.endpoint.name}:${path}`, line: 1 });
  return { traceSeq: Number(m[1]), traceDropped: Number(m[2]) };
}

function privileged(layout: GuestDriverLayout, command: ShellCommand): ShellCommand {
  return layout.privilege === 'sudo' ? sh`sudo -n ${command}` : command;
}

async function run(guest: GuestSsh, command: ShellCommand, what: string): Promise<ExecResult> {
  const r = await guest.exec(command, { timeoutMs: 60_000, maxOutputBytes: 256 * 1024 });
  if (r.exitCode !== 0) throw failure(guest, `could not ${what}`, r);
  return r;
}

function failure(guest: GuestSsh, what: string, r: ExecResult): InfraError {
  const status = r.timedOut ? 'timed out' : r.exitCode !== null ? `exit ${r.exitCode}` : `signal ${r.signal ?? '?'}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n');
  return new InfraError(`${what} on ${guest.endpoint.name} (${status}): ${r.command}${tail ? `\n${tail}` : ''}`, {
    host: guest.endpoint.host,
    command: r.command,
    timedOut: r.timedOut,
  });
}

/** Kbuild leftovers from a local build: never shipped to the guest, which builds its own. */
const BUILD_OUTPUT = /(\.o|\.ko|\.mod|\.mod\.c|\.cmd|\.a)$|^(Module\.symvers|modules\.order)$/;

/** The files to ship from `path` (a file, or a folder walked in order), build output left out. */
export async function listPackageFiles(path: string): Promise<string[]> {
  return (await stat(path)).isDirectory() ? listFiles(path) : [path];
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full)));
    else if (entry.isFile() && !BUILD_OUTPUT.test(entry.name)) out.push(full);
  }
  return out.sort();
}

/**
 * The guest driver as loaded, for the job's results (DESIGN.md "The lab": versions recorded):
 * the module's SHA-256, and the guest's kernel. `commit` is the bench's source commit the
 * module was built from, when the caller knows it.
 */
export async function guestDriverRecord(guest: GuestSsh, koPath: string, commit?: string): Promise<{ sha256: string; kernel: string | undefined; commit: string | undefined }> {
  const sum = await guest.exec(sh`sha256sum ${koPath}`, { timeoutMs: 30_000 });
  const sha256 = /^([0-9a-f]{64})\b/.exec(sum.stdout.toString())?.[1];
  if (sum.exitCode !== 0 || !sha256) throw failure(guest, `hashing ${koPath} in the guest failed`, sum);
  const uname = await guest.exec(sh`uname -r`, { timeoutMs: 30_000 });
  return { sha256: sha256.toUpperCase(), kernel: uname.exitCode === 0 ? uname.stdout.toString().trim() || undefined : undefined, commit };
}
