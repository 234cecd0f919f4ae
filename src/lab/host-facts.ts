// Facts read from a host, not taken from the inventory's label (DESIGN.md "The lab"): the
// OS build with its update revision, the Hyper-V and vmbkmcl.sys file versions. A patched
// host is then reported under the build it runs, and a label that no longer matches is a
// visible warning rather than a silent lie in the report.
//
// Where they come from (all readable by a non-interactive session, no WMI provider needed):
//   OS build   HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion: CurrentBuildNumber + UBR
//              (Get-ItemPropertyValue)
//   Hyper-V    the file version of C:\Windows\System32\vmms.exe (the management service)
//   KMCL       the file version of C:\Windows\System32\drivers\vmbkmcl.sys (Get-Item's VersionInfo)
// Also the live-migration settings (Get-VMHost) and what they lack for a Move-VM started
// over SSH (migrationFindings).

import { expand, pipe, ps } from './host-shell/command.ts';
import { failureError } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { cmd } from './hyperv-vm.ts';

export interface HostFacts {
  /** "26100.2314": build number and update build revision. */
  osBuild: string | undefined;
  hypervVersion: string | undefined;
  kmclVersion: string | undefined;
}

const CURRENT_VERSION = 'SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion';

/** CurrentBuildNumber (a string in the registry) and UBR (a DWORD) as "build.ubr". */
export function osBuildOf(build: unknown, ubr: unknown): string | undefined {
  const b = typeof build === 'string' || typeof build === 'number' ? String(build).trim() : '';
  if (!/^\d+$/.test(b)) return undefined;
  const u = typeof ubr === 'number' || (typeof ubr === 'string' && /^\d+$/.test(ubr)) ? String(ubr) : undefined;
  return u === undefined ? b : `${b}.${u}`;
}

/** A FileVersionInfo.FileVersion string ("10.0.26100.2314 (WinBuild.160101.0800)") cut to its number. */
export function fileVersionOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  return /^\s*(\d+(?:\.\d+){1,3})/.exec(v)?.[1];
}

export const SYSTEM32 = 'C:\\Windows\\System32';

/** A file's version as Windows shows it (FileVersionInfo), or undefined when it has none. */
export async function fileVersion(hv: HyperV, path: string): Promise<string | undefined> {
  const r = await hv.ctx.shell.run(cmd(hv.ctx, [pipe(ps('Get-Item', { LiteralPath: path }), expand('VersionInfo'), expand('FileVersion'))]), { timeoutMs: hv.ctx.queryTimeoutMs });
  return failureError(r) ? undefined : fileVersionOf(r.items[0] ?? r.value);
}

export async function readHostFacts(hv: HyperV): Promise<HostFacts> {
  const reg = async (name: string): Promise<unknown> => {
    const r = await hv.ctx.shell.run(cmd(hv.ctx, [ps('Get-ItemPropertyValue', { LiteralPath: `HKLM:\\${CURRENT_VERSION}`, Name: name })]), { timeoutMs: hv.ctx.queryTimeoutMs });
    // A fact that cannot be read is reported as unknown, not as a failed host.
    return failureError(r) ? undefined : r.items[0] ?? r.value;
  };
  return {
    osBuild: osBuildOf(await reg('CurrentBuildNumber'), await reg('UBR')),
    hypervVersion: await fileVersion(hv, `${SYSTEM32}\\vmms.exe`),
    kmclVersion: await fileVersion(hv, `${SYSTEM32}\\drivers\\vmbkmcl.sys`),
  };
}

/**
 * The inventory's `build` label against the build read from the host. A label may name the
 * build alone ("26100") or with its revision ("26100.2314"); it matches when it is a prefix
 * at a dot boundary. Undefined when there is nothing to say.
 */
export function buildMismatch(host: string, label: string | undefined, facts: HostFacts): string | undefined {
  if (label === undefined || facts.osBuild === undefined) return undefined;
  if (facts.osBuild === label || facts.osBuild.startsWith(`${label}.`)) return undefined;
  return `${host}: the inventory says build ${label}, the host runs ${facts.osBuild}; results are reported under ${facts.osBuild}`;
}

export interface MigrationSettings {
  enabled: boolean;
  /** Get-VMHost VirtualMachineMigrationAuthenticationType: 'CredSSP' | 'Kerberos' (or 0 / 1). */
  authentication: string | number | undefined;
  useAnyNetwork: boolean | undefined;
  networks: string[];
}

/**
 * What a Move-VM started from an SSH session still needs, from the host's settings. An SSH
 * key logon has no credentials the host can pass on: CredSSP cannot work, and Kerberos works
 * only with constrained delegation, which lives in the domain and cannot be read here, so it
 * is always named as the thing to check (lab/SETUP.md, "Live migration").
 */
export function migrationFindings(s: MigrationSettings): { missing: string[]; note: string } {
  const missing: string[] = [];
  if (!s.enabled) missing.push('live migration is disabled (Enable-VMMigration)');
  const auth = s.authentication === 0 ? 'CredSSP' : s.authentication === 1 ? 'Kerberos' : s.authentication;
  if (auth === 'CredSSP' || auth === undefined) {
    missing.push(`authentication is ${auth ?? 'unknown'}: a Move-VM started over SSH has no credentials to delegate; use Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos with constrained delegation`);
  }
  if (s.useAnyNetwork === false && s.networks.length === 0) missing.push('no migration network (Add-VMMigrationNetwork, or Set-VMHost -UseAnyNetworkForMigration $true)');
  return { missing, note: 'Kerberos constrained delegation to the partner ("Microsoft Virtual System Migration Service" and "cifs") is set in Active Directory and cannot be checked from the host' };
}
