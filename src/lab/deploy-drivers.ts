// The run deploys what it uses (DESIGN.md "The lab"): before any job, each host gets the
// staged build of the VSP and, where it offers loopback, of the Windows client driver,
// installed with pnputil (test signing checked first, deploy-vsp.ts). What is installed is
// recorded: the SHA-256 of the driver binary, its file version, and the source commit when
// the staging wrote one. A host whose binary differs from the staged build is updated; one
// that cannot be updated (test signing off, pnputil refusing, a reboot still needed for the
// old binary to go) fails preflight with that reason.
//
// The bench cannot build Windows drivers (that needs the WDK on Windows): the lab stages
// each built package in the host's driversDir (lab/SETUP.md "Drivers"):
//   <driversDir>\vsp\vmbus_sample_vsp.inf + .sys + .cat [+ SOURCE_COMMIT]
//   <driversDir>\guest-windows\vmbus_sample_guest.inf + .sys + .cat [+ SOURCE_COMMIT]

import { InfraError } from '../errors.ts';
import type { AttachMode } from './attach.ts';
import { readHostFile } from './artefacts.ts';
import { deployVsp, publishedNames, removeVsp, runNative } from './deploy-vsp.ts';
import { fileVersion, SYSTEM32 } from './host-facts.ts';
import { pipe, project, ps } from './host-shell/command.ts';
import { failureError } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { cmd } from './hyperv-vm.ts';

/** One driver as installed, for the job's results. */
export interface DriverRecord {
  name: 'vsp' | 'client' | 'guest';
  where: 'host' | 'guest';
  sha256: string;
  fileVersion?: string | undefined;
  sourceCommit?: string | undefined;
}

export interface HostDriverPackage {
  name: 'vsp' | 'client';
  /** Staged package on the host. */
  inf: string;
  sys: string;
  /** Where pnputil puts the binary (the INF's ServiceBinary, %13% = System32\drivers). */
  installed: string;
}

export const DEFAULT_DRIVERS_DIR = 'C:\\bench\\drivers';

/** The packages a host needs for its attach modes: the VSP always, the client for loopback. */
export function hostPackages(driversDir: string, attach: readonly AttachMode[]): HostDriverPackage[] {
  const pkg = (name: 'vsp' | 'client', folder: string, base: string): HostDriverPackage => ({
    name, inf: `${driversDir}\\${folder}\\${base}.inf`, sys: `${driversDir}\\${folder}\\${base}.sys`, installed: `${SYSTEM32}\\drivers\\${base}.sys`,
  });
  return [pkg('vsp', 'vsp', 'vmbus_sample_vsp'), ...(attach.includes('loopback') ? [pkg('client', 'guest-windows', 'vmbus_sample_guest')] : [])];
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
        await deployVsp(hv, p.inf);
      } catch (e) {
        return { ok: false, reason: `the ${p.name} driver cannot be updated: ${(e as Error).message}` };
      }
      installed = await fileSha256(hv, p.installed);
      if (installed !== staged) {
        return { ok: false, reason: `the ${p.name} driver cannot be updated: pnputil installed ${p.inf} but ${p.installed} is ${installed ? 'still the old build (a reboot is needed to replace a driver in use)' : 'missing'}` };
      }
      updated.push(p.name);
    }
    drivers.push({ name: p.name, where: 'host', sha256: staged, fileVersion: await fileVersion(hv, p.installed), sourceCommit: await sourceCommit(hv, p.sys) });
  }
  return { ok: true, drivers, updated };
}

/** The commit the staging recorded beside the package (a SOURCE_COMMIT file), if any. */
async function sourceCommit(hv: HyperV, sys: string): Promise<string | undefined> {
  const file = sys.replace(/[^\\]+$/, 'SOURCE_COMMIT');
  const data = await readHostFile(hv, file).catch(() => undefined);
  const text = data?.toString('utf8').trim();
  return text && /^[0-9a-f]{7,40}$/i.test(text) ? text.toLowerCase() : undefined;
}

/** Removes every driver-store package of this name (`vmbus_sample_vsp.inf`); gone ones are fine. */
export async function removeHostDriver(hv: HyperV, p: HostDriverPackage): Promise<number> {
  const list = await runNative(hv, 'pnputil', ['/enum-drivers']);
  if (list.exitCode !== 0) throw new InfraError(`pnputil /enum-drivers exited with ${list.exitCode}`, { host: hv.host });
  const original = p.inf.split('\\').pop()!.toLowerCase();
  const names = publishedNames(list.output);
  // /enum-drivers prints Published Name, then Original Name, per package.
  const ours = names.filter((n) => {
    const at = list.output.findIndex((l) => new RegExp(`^\\s*Published Name\\s*:\\s*${n.replace('.', '\\.')}\\s*$`, 'i').test(l));
    const orig = list.output.slice(at + 1, at + 3).map((l) => /^\s*Original Name\s*:\s*(\S+)/i.exec(l)?.[1]?.toLowerCase()).find((x) => x);
    return orig === original;
  });
  for (const n of ours) await removeVsp(hv, n);
  return ours.length;
}
