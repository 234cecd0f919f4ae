// A driver package: how the bench puts a device author's driver on a machine, takes it off
// again, and where the driver leaves its trace. VM templates describe the guest driver
// with one (`guest.driver`), lab inventories the host's VSP and loopback client
// (`drivers.vsp`, `drivers.client`). The sample drivers are described the same way
// (vm-templates/*.yaml, lab/drivers/packages.yaml); the code knows no driver by name.
//
// Commands are text the author writes for the target's own shell: POSIX sh in a Linux
// guest, PowerShell on a Windows host or guest. The bench never splices them into its own
// command lines: a guest command reaches `sh -c` as one quoted word (guest/posix-quote.ts),
// a host command travels as base64 and is compiled into a script block on the far side
// (host-shell/render.ts). Each runs in the folder the package's files are in, which it
// also finds in $BENCH_PACKAGE_DIR (sh) or $PackageDir (PowerShell).

import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { parseYamlText, problemsToError, validate, type Problem } from './yaml-input.ts';

const GUID = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;
const windowsPath = z.string().regex(/^[A-Za-z]:\\/, { message: 'must be an absolute Windows path, like C:\\bench\\drivers\\vsp' });
/** A path inside the package folder: relative, no "..", no drive. */
const packagePath = z.string().min(1).refine((p) => !/^([A-Za-z]:)?[\\/]/.test(p) && !p.split(/[\\/]/).includes('..'), {
  message: 'must be a path inside the package folder (relative, without "..")',
});
const command = z.string()
  .refine((c) => c.trim() !== '', { message: 'must not be empty' })
  // A NUL cannot reach a shell intact; nothing else is refused: the text is data to us.
  .refine((c) => !c.includes('\0'), { message: 'must not contain a NUL character' });

/**
 * Where the driver's trace is and what it looks like. `jsonl`: a file of trace-schema
 * lines, read as it is (the trace library's buffer, lab/drivers/trace-lib). `etw`: events
 * of a TraceLogging provider, captured on the host and converted to JSON Lines.
 */
const traceSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('jsonl'),
    path: z.string().min(1),
    /** A file printing "trace_seq=N trace_dropped=N": a trace with drops is incomplete. */
    counters: z.string().min(1).optional(),
    /** A command that writes the file first (a driver that hands its trace out on request). */
    collect: command.optional(),
  }),
  z.strictObject({
    format: z.literal('etw'),
    provider: z.string().regex(GUID, { message: 'must be the provider GUID, like {dd84f5b2-2614-4623-b28a-6b85d3a4202c}' }),
  }),
], { message: 'format must be jsonl (a file of trace lines) or etw (a TraceLogging provider)' });

export const guestPackageSchema = z.strictObject({
  /** Local folder whose files are copied into the guest, relative to the YAML file. */
  files: z.string().min(1),
  /** Only these entries of that folder (files or subfolders); default: all of it. */
  include: z.array(packagePath).min(1).optional(),
  /** Where in the guest the files go (default /var/tmp/bench-driver). */
  remoteDir: z.string().min(1).optional(),
  install: command,
  uninstall: command,
  /** Run install, uninstall and the trace read with `sudo -n` (the user has NOPASSWD). */
  sudo: z.boolean().optional(),
  /** The file, inside the package folder once installed, whose SHA-256 the results record. */
  binary: packagePath.optional(),
  installTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
  /**
   * A Windows guest: the device's control tool in the package folder once installed (the
   * bench runs it there); default the device module's control.tool.program.
   */
  controlTool: packagePath.optional(),
  trace: traceSchema,
});

export const hostPackageSchema = z.strictObject({
  /** Folder on the host where the lab stages the built package (lab/SETUP.md "Drivers"). */
  files: windowsPath,
  /** The driver binary in that folder: its SHA-256 says which build is staged. */
  binary: packagePath,
  /** Where installing puts the binary: a host whose copy differs is updated. */
  installed: windowsPath,
  install: command,
  uninstall: command,
  installTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
  trace: traceSchema,
});

export type TraceLocation = z.infer<typeof traceSchema>;

export interface GuestDriverPackage {
  /** Absolute local folder. */
  files: string;
  /** Entries of `files` to copy (relative); undefined: all. */
  include: readonly string[] | undefined;
  remoteDir: string;
  install: string;
  uninstall: string;
  sudo: boolean;
  binary: string | undefined;
  installTimeoutMs: number;
  /** A Windows guest's control tool, relative to the package folder; undefined: the module's. */
  controlTool?: string | undefined;
  trace: TraceLocation;
}

export interface HostDriverPackage {
  /** `vsp` or `client`: the role the package plays. */
  name: 'vsp' | 'client';
  files: string;
  /** Absolute: files + binary. */
  sys: string;
  installed: string;
  install: string;
  uninstall: string;
  installTimeoutMs: number;
  trace: TraceLocation;
}

export const DEFAULT_GUEST_PACKAGE_DIR = '/var/tmp/bench-driver';

/**
 * The guest package as the bench uses it. `at` is the package's field path, for
 * problems; `os` decides what a trace path must look like.
 */
export function resolveGuestPackage(raw: z.infer<typeof guestPackageSchema>, os: 'linux' | 'windows', baseDir: string, at: readonly PropertyKey[], problems: Problem[]): GuestDriverPackage | undefined {
  const files = resolve(baseDir, raw.files);
  let ok = true;
  if (!existsSync(files) || !statSync(files).isDirectory()) {
    problems.push({ path: [...at, 'files'], message: `folder not found: ${files}`, hint: 'paths are relative to the file that names them' });
    ok = false;
  }
  const absolute = os === 'linux' ? /^\// : /^[A-Za-z]:\\/;
  for (const [i, entry] of (raw.include ?? []).entries()) {
    if (ok && !existsSync(resolve(files, entry))) {
      problems.push({ path: [...at, 'include', i], message: `not found in ${files}: ${entry}` });
      ok = false;
    }
  }
  if (raw.remoteDir !== undefined && !absolute.test(raw.remoteDir)) {
    problems.push({ path: [...at, 'remoteDir'], message: `must be an absolute path in the ${os} guest` });
    ok = false;
  }
  if (raw.trace.format === 'etw') {
    problems.push({ path: [...at, 'trace', 'format'], message: 'a guest driver\'s trace must be jsonl (a file read over SSH)', hint: 'write it with lab/drivers/trace-lib into a debugfs file' });
    ok = false;
  } else {
    const example = os === 'linux' ? '/sys/kernel/debug/my_driver/trace' : 'C:\\bench\\guest-trace.jsonl';
    for (const key of ['path', 'counters'] as const) {
      const p = raw.trace[key];
      if (p !== undefined && !absolute.test(p)) {
        problems.push({ path: [...at, 'trace', key], message: `must be an absolute path in the ${os} guest, like ${example}` });
        ok = false;
      }
    }
  }
  if (raw.controlTool !== undefined && os !== 'windows') {
    problems.push({ path: [...at, 'controlTool'], message: 'a Linux guest driver takes its control lines through its control file (the device module\'s control.linuxGuest)', hint: 'remove controlTool' });
    ok = false;
  }
  if (!ok) return undefined;
  return {
    files, include: raw.include, remoteDir: raw.remoteDir ?? (os === 'linux' ? DEFAULT_GUEST_PACKAGE_DIR : 'C:\\bench\\driver'), install: raw.install, uninstall: raw.uninstall,
    sudo: raw.sudo ?? false, binary: raw.binary, installTimeoutMs: (raw.installTimeoutSeconds ?? 600) * 1000, trace: raw.trace,
    ...(raw.controlTool !== undefined ? { controlTool: raw.controlTool } : {}),
  };
}

export function resolveHostPackage(name: 'vsp' | 'client', raw: z.infer<typeof hostPackageSchema>, at: readonly PropertyKey[], problems: Problem[]): HostDriverPackage | undefined {
  if (raw.trace.format === 'jsonl' && !/^[A-Za-z]:\\/.test(raw.trace.path)) {
    problems.push({ path: [...at, 'trace', 'path'], message: 'must be an absolute Windows path on the host' });
    return undefined;
  }
  const files = raw.files.replace(/\\+$/, '');
  return {
    name, files, sys: `${files}\\${raw.binary.replace(/\//g, '\\')}`, installed: raw.installed,
    install: raw.install, uninstall: raw.uninstall, installTimeoutMs: (raw.installTimeoutSeconds ?? 300) * 1000, trace: raw.trace,
  };
}

/** A host's packages: the VSP, and the client driver a loopback host also runs. */
export const hostDriversSchema = z.strictObject({
  vsp: hostPackageSchema,
  client: hostPackageSchema.optional(),
});

export interface HostDrivers {
  vsp: HostDriverPackage;
  client: HostDriverPackage | undefined;
}

export function resolveHostDrivers(raw: z.infer<typeof hostDriversSchema>, at: readonly PropertyKey[], problems: Problem[]): HostDrivers | undefined {
  const vsp = resolveHostPackage('vsp', raw.vsp, [...at, 'vsp'], problems);
  const client = raw.client ? resolveHostPackage('client', raw.client, [...at, 'client'], problems) : undefined;
  return vsp && (client || !raw.client) ? { vsp, client } : undefined;
}

/**
 * A packages file named by an inventory (`driversFile`, relative to it), as a device
 * ships its own (devices/blockq/c/packages.yaml). A missing file is a problem at `at`;
 * a wrong one an InputError naming its own file and line.
 */
export function resolveHostDriversFile(path: string, baseDir: string, at: readonly PropertyKey[], problems: Problem[]): HostDrivers | undefined {
  const file = resolve(baseDir, path);
  if (!existsSync(file) || !statSync(file).isFile()) {
    problems.push({ path: at, message: `packages file not found: ${file}`, hint: 'paths are relative to the inventory, e.g. ../devices/blockq/c/packages.yaml' });
    return undefined;
  }
  return loadHostDrivers(file);
}

/**
 * The packages of a host whose inventory names none: the sample VSP and client, described
 * in lab/drivers/packages.yaml like any author's (lab/SETUP.md "Driver packages").
 */
export const DEFAULT_HOST_DRIVERS_FILE = fileURLToPath(new URL('../../lab/drivers/packages.yaml', import.meta.url));

export function loadHostDrivers(file: string = DEFAULT_HOST_DRIVERS_FILE): HostDrivers {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the driver packages (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  }
  const src = parseYamlText(text, file);
  const raw = validate(src, hostDriversSchema);
  const problems: Problem[] = [];
  const drivers = resolveHostDrivers(raw, [], problems);
  if (problems.length > 0 || !drivers) throw problemsToError(src, problems);
  return drivers;
}
