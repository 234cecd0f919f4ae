// The run deploys what it uses (DESIGN.md "The lab"): before any job, each host gets the
// staged build of its VSP package and, where it offers loopback, of its client driver
// package, installed by the package's own install command (test signing checked first).
// What is installed is recorded: the SHA-256 of the driver binary, its file version, and
// the source commit when the staging wrote one. A host whose binary differs from the
// staged build is updated; one that cannot be updated (test signing off, the install
// command failing, a reboot still needed for the old binary to go) fails preflight with
// that reason.
//
// Packages are described in the inventory (`drivers`) or, for a host that names none, in
// lab/drivers/packages.yaml (the sample's; driver-package.ts). The bench cannot build
// Windows drivers (that needs the WDK on Windows): the lab stages each built package in
// the package's `files` folder on the host (lab/SETUP.md "Drivers").

import type { AttachMode } from './attach.ts';
import { readHostFile } from './artefacts.ts';
import { checkTestSigning } from './deploy-vsp.ts';
import type { HostDriverPackage, HostDrivers } from './driver-package.ts';
import { fileVersion } from './host-facts.ts';
import { authorScript, pipe, project, ps } from './host-shell/command.ts';
import { expectOk, failureError } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { cmd } from './hyperv-vm.ts';

export type { HostDriverPackage } from './driver-package.ts';

/** One driver as installed, for the job's results. */
export interface DriverRecord {
  name: 'vsp' | 'client' | 'guest';
  where: 'host' | 'guest';
  sha256: string;
  fileVersion?: string | undefined;
  sourceCommit?: string | undefined;
}

/** The packages a host needs for its attach modes: the VSP always, the client for loopback. */
export function hostPackages(drivers: HostDrivers, attach: readonly AttachMode[]): HostDriverPackage[] {
  if (!attach.includes('loopback')) return [drivers.vsp];
  if (!drivers.client) throw new TypeError('a loopback host needs a client driver package (drivers.client)');
  return [drivers.vsp, drivers.client];
}

/** SHA-256 (upper-case hex, as Get-FileHash prints it) of a host file, or undefined if absent. */
export async function fileSha256(hv: HyperV, path: string): Promise<string | undefined> {
  const r = await hv.ctx.shell.run(cmd(hv.ctx, [pipe(ps('Get-FileHash', { LiteralPath: path, Algorithm: 'SHA256' }), project({ Hash: 'string' }))]), { timeoutMs: hv.ctx.queryTimeoutMs });
  if (failureError(r)) return undefined;
  const h = (r.items[0] as { Hash?: unknown } | undefined)?.Hash;
  return typeof h === 'string' && /^[0-9A-Fa-f]{64}$/.test(h) ? h.toUpperCase() : undefined;
}

export type HostDeployOutcome =
  | { ok: true; drivers: DriverRecord[]; updated: string[] }
  | { ok: false; reason: string };

/**
 * Makes each package's staged build the installed one. Invariant: on `ok`, every record's
 * sha256 is both the staged and the installed binary's hash (checked after installing).
 */
export async function ensureHostDrivers(hv: HyperV, packages: readonly HostDriverPackage[]): Promise<HostDeployOutcome> {
  const drivers: DriverRecord[] = [];
  const updated: string[] = [];
  for (const p of packages) {
    const staged = await fileSha256(hv, p.sys);
    if (!staged) return { ok: false, reason: `the ${p.name} build is not staged on the host (${p.sys} is missing; lab/SETUP.md "Drivers")` };
    let installed = await fileSha256(hv, p.installed);
    if (installed !== staged) {
      try {
        await installHostPackage(hv, p);
      } catch (e) {
        return { ok: false, reason: `the ${p.name} driver cannot be updated: ${(e as Error).message}` };
      }
      installed = await fileSha256(hv, p.installed);
      if (installed !== staged) {
        return { ok: false, reason: `the ${p.name} driver cannot be updated: its install command ran but ${p.installed} is ${installed ? 'still the old build (a reboot is needed to replace a driver in use)' : 'missing'}` };
      }
      updated.push(p.name);
    }
    drivers.push({ name: p.name, where: 'host', sha256: staged, fileVersion: await fileVersion(hv, p.installed), sourceCommit: await sourceCommit(hv, p.sys) });
  }
  return { ok: true, drivers, updated };
}

/** The outcome of one of a package's commands on the host. */
export interface PackageCommandResult {
  output: string[];
  exitCode: number;
}

/**
 * Runs one of the package's commands (its text travels as base64, host-shell/render.ts)
 * with $PackageDir set to its folder. Throws with the command's last output lines when it
 * ends with a non-zero $LASTEXITCODE or a terminating error.
 */
export async function runPackageCommand(hv: HyperV, p: HostDriverPackage, which: 'install' | 'uninstall'): Promise<PackageCommandResult> {
  const r = await hv.ctx.shell.run(cmd(hv.ctx, [authorScript(p[which], { PackageDir: p.files })]), { timeoutMs: p.installTimeoutMs });
  const o = (expectOk(r).items[0] ?? {}) as { output?: unknown; exitCode?: unknown };
  const output = Array.isArray(o.output) ? o.output.map(String) : typeof o.output === 'string' ? [o.output] : [];
  const exitCode = typeof o.exitCode === 'number' ? o.exitCode : 0;
  if (exitCode !== 0) {
    throw new Error(`the ${p.name} package's ${which} command exited with ${exitCode}: ${output.filter((l) => l.trim()).slice(-2).join(' ')}`);
  }
  return { output, exitCode };
}

/** Test-signed kernel drivers need test signing; say so before the install fails obscurely. */
async function installHostPackage(hv: HyperV, p: HostDriverPackage): Promise<void> {
  const signing = await checkTestSigning(hv);
  if (!signing.enabled) throw new Error(`test signing is off (${signing.reason}); run "bcdedit /set testsigning on" on the host and reboot it`);
  await runPackageCommand(hv, p, 'install');
}

/** The commit the staging recorded beside the package (a SOURCE_COMMIT file), if any. */
async function sourceCommit(hv: HyperV, sys: string): Promise<string | undefined> {
  const file = sys.replace(/[^\\]+$/, 'SOURCE_COMMIT');
  const data = await readHostFile(hv, file).catch(() => undefined);
  const text = data?.toString('utf8').trim();
  return text && /^[0-9a-f]{7,40}$/i.test(text) ? text.toLowerCase() : undefined;
}

/** Takes the package off the host with its uninstall command (one already gone is the command's to accept). */
export async function removeHostDriver(hv: HyperV, p: HostDriverPackage): Promise<void> {
  await runPackageCommand(hv, p, 'uninstall');
}
