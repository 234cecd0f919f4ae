// Putting a driver package (driver-package.ts) into a Windows guest, taking it off again,
// reading the trace it says it writes, and running the device's control tool there.
//
// A Windows guest is reached as a host is: PowerShell over its OpenSSH server
// (host-shell/ssh-pwsh.ts; Windows PowerShell 5.1, which every Windows guest has). So
// every value reaches it through the one quoting function (host-shell/quote.ts), and the
// package's files and its author's install and uninstall commands travel as base64
// (host-shell/render.ts): nothing is spliced into a command line. An author's command runs
// with $PackageDir set to the package folder, as a host package's does (deploy-drivers.ts).
//
// Cmdlets used, all in Microsoft's PowerShell reference: New-Item -ItemType Directory
// -Force, Get-FileHash -Algorithm SHA256, Get-CimInstance -ClassName Win32_OperatingSystem,
// Get-PnpDevice -PresentOnly, Disable-PnpDevice, Enable-PnpDevice; files are written and read with
// System.IO.File's WriteAllBytes / ReadAllBytes / Exists.

import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { InfraError } from '../errors.ts';
import { readHostFile } from './artefacts.ts';
import { listPackageFiles } from './deploy-guest.ts';
import type { InstalledPackage } from './deploy-guest-package.ts';
import { runNative } from './deploy-vsp.ts';
import type { GuestDriverPackage } from './driver-package.ts';
import { assign, authorScript, base64, emit, hostPath, pipe, project, ps, staticCall, where, type PsValue } from './host-shell/command.ts';
import { expectOk } from './host-shell/errors.ts';
import { cmd, hostContext, type HostContext } from './hyperv-vm.ts';
import { SshPwshShell, type SshAuth } from './host-shell/ssh-pwsh.ts';
import type { GuestEndpoint } from './guest-ssh.ts';
import { checkPrivateKey, resolveSecret } from './secrets.ts';

/** A Windows guest's PowerShell, and its name for messages. */
export interface WindowsGuest {
  name: string;
  ctx: HostContext;
}

/** `dir` and `parts` joined with the separator `dir` uses (a Windows guest's is `\`). */
export function guestPath(dir: string, ...parts: string[]): string {
  const sep = dir.includes('\\') || !dir.includes('/') ? '\\' : '/';
  return [dir.replace(/[\\/]+$/, ''), ...parts].join(sep);
}

/** Copies the files, runs `install` with $PackageDir set, and hashes the binary. */
export async function installWindowsGuestPackage(g: WindowsGuest, pkg: GuestDriverPackage): Promise<InstalledPackage> {
  await uploadWindowsPackage(g, pkg);
  await runWindowsPackageCommand(g, pkg, pkg.install, 'install', pkg.installTimeoutMs);
  return { remoteDir: pkg.remoteDir, binarySha256: pkg.binary ? await windowsFileSha256(g, guestPath(pkg.remoteDir, ...pkg.binary.split(/[\\/]/))) : undefined };
}

/** Runs `uninstall` with $PackageDir set (the files stay, for the next install). */
export async function uninstallWindowsGuestPackage(g: WindowsGuest, pkg: GuestDriverPackage): Promise<void> {
  await runWindowsPackageCommand(g, pkg, pkg.uninstall, 'uninstall', pkg.installTimeoutMs);
}

/** Each file of the package (its `include` entries, build output left out), as base64, into remoteDir. */
export async function uploadWindowsPackage(g: WindowsGuest, pkg: GuestDriverPackage): Promise<void> {
  const made = new Set<string>();
  for (const entry of pkg.include ?? ['.']) {
    for (const file of await listPackageFiles(join(pkg.files, entry))) {
      const parts = relative(pkg.files, file).split(/[\\/]/);
      const dir = guestPath(pkg.remoteDir, ...parts.slice(0, -1));
      if (!made.has(dir)) {
        await run(g, [assign('benchMade', ps('New-Item', { ItemType: 'Directory', Force: true, Path: dir }))], `create the package folder ${dir}`, 60_000);
        made.add(dir);
      }
      const remote = guestPath(pkg.remoteDir, ...parts);
      await run(g, [emit(staticCall('System.IO.File', 'WriteAllBytes', hostPath(remote), base64(new Uint8Array(await readFile(file)))))], `copy ${remote}`, 120_000);
    }
  }
}

/**
 * Runs an author's command (text for the guest's PowerShell) with $PackageDir; a
 * terminating error or a non-zero $LASTEXITCODE is an InfraError with its last lines.
 */
export async function runWindowsPackageCommand(g: WindowsGuest, pkg: GuestDriverPackage, text: string, what: string, timeoutMs: number): Promise<string[]> {
  const r = await run(g, [authorScript(text, { PackageDir: pkg.remoteDir })], `${what} the driver package`, timeoutMs);
  const o = (r.items[0] ?? {}) as { output?: unknown; exitCode?: unknown };
  const output = Array.isArray(o.output) ? o.output.map(String) : typeof o.output === 'string' ? [o.output] : [];
  const exitCode = typeof o.exitCode === 'number' ? o.exitCode : 0;
  if (exitCode !== 0) throw new InfraError(`the guest driver package's ${what} command exited with ${exitCode} on ${g.name}: ${output.filter((l) => l.trim()).slice(-2).join(' ')}`, { host: g.name });
  return output;
}

/**
 * The trace as text, from the package's trace file after its collect command, if any.
 * A missing file is an InfraError naming it.
 */
export async function readWindowsPackageTrace(g: WindowsGuest, pkg: GuestDriverPackage): Promise<string> {
  const trace = pkg.trace;
  if (trace.format !== 'jsonl') throw new InfraError(`a guest trace must be jsonl, not ${trace.format}`, { host: g.name });
  if (trace.collect !== undefined) await runWindowsPackageCommand(g, pkg, trace.collect, 'collect the trace with', 120_000);
  const data = await readHostFile(g, trace.path);
  if (!data) throw new InfraError(`the guest driver's trace ${trace.path} is missing on ${g.name}`, { host: g.name });
  return data.toString('utf8');
}

/** `trace_seq` from the package's counters file, when it names one. */
export async function readWindowsPackageCounters(g: WindowsGuest, pkg: GuestDriverPackage): Promise<number | undefined> {
  if (pkg.trace.format !== 'jsonl' || pkg.trace.counters === undefined) return undefined;
  const data = await readHostFile(g, pkg.trace.counters);
  const m = data ? /trace_seq=(\d+)/.exec(data.toString('utf8')) : null;
  if (!m) throw new InfraError(`${pkg.trace.counters} on ${g.name} holds no "trace_seq=N"`, { host: g.name });
  return Number(m[1]);
}

/** Runs the device's control tool in the guest; a non-zero exit is an InfraError with its last lines. */
export async function runGuestTool(g: WindowsGuest, program: string, args: readonly PsValue[]): Promise<string[]> {
  const x = await runNative(g, program, [...args]);
  if (x.exitCode !== 0) throw new InfraError(`${program} ${args.map(String).join(' ')} exited with ${x.exitCode} on ${g.name}: ${x.output.slice(-2).join(' ')}`, { host: g.name });
  return x.output;
}

/**
 * The PnP device of a VMBus channel instance in a Windows guest: its instance id, the
 * bus's `VMBUS\{interface type}\{instance GUID}` (inferred from how Windows names
 * VMBus children; the type is the device's, so it is matched by wildcard), and whether it
 * is started (`Status` OK) or not (disabled, or failed). Present devices only: a rescinded
 * one is gone. Get-PnpDevice -PresentOnly, Where-Object -Like (case-insensitive).
 */
export async function windowsVmbusDevice(g: WindowsGuest, instance: string): Promise<{ instanceId: string; started: boolean } | undefined> {
  const r = await run(g, [pipe(ps('Get-PnpDevice', { PresentOnly: true }), where('InstanceId', 'like', vmbusPattern(instance)), project({ InstanceId: 'string', Status: 'string' }))], `find the VMBus device of ${instance}`, 60_000);
  const d = r.items[0] as { InstanceId?: unknown; Status?: unknown } | undefined;
  if (!d || typeof d.InstanceId !== 'string') return undefined;
  return { instanceId: d.InstanceId, started: d.Status === 'OK' };
}

/**
 * Disables or enables the PnP device of a VMBus channel instance (Disable-PnpDevice /
 * Enable-PnpDevice, -Confirm:$false): a disabled device's driver lets it go, as its
 * EvtDeviceReleaseHardware runs; an enabled one is started again.
 */
export async function setWindowsVmbusDevice(g: WindowsGuest, instance: string, enabled: boolean): Promise<void> {
  const verb = enabled ? 'Enable-PnpDevice' : 'Disable-PnpDevice';
  await run(g, [pipe(ps('Get-PnpDevice', { PresentOnly: true }), where('InstanceId', 'like', vmbusPattern(instance)), ps(verb, { Confirm: false }))], `${enabled ? 'enable' : 'disable'} the VMBus device of ${instance}`, 120_000);
}

/** The -Like pattern of a channel instance's VMBus device id; a GUID holds no wildcard character. */
function vmbusPattern(instance: string): string {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(instance)) throw new InfraError(`${JSON.stringify(instance)} is not a channel instance GUID`);
  return `VMBUS\\*\\{${instance}}`;
}

/** Upper-case SHA-256 of a guest file (Get-FileHash). */
export async function windowsFileSha256(g: WindowsGuest, path: string): Promise<string> {
  const r = await run(g, [pipe(ps('Get-FileHash', { LiteralPath: path, Algorithm: 'SHA256' }), project({ Hash: 'string' }))], `hash ${path}`, 60_000);
  const h = (r.items[0] as { Hash?: unknown } | undefined)?.Hash;
  if (typeof h !== 'string' || !/^[0-9A-Fa-f]{64}$/.test(h)) throw new InfraError(`hashing ${path} on ${g.name} gave no SHA-256`, { host: g.name });
  return h.toUpperCase();
}

/**
 * The guest's OS, "Caption Version" of Win32_OperatingSystem (for the results, as a Linux
 * guest's kernel); undefined when it cannot be read.
 */
export async function windowsGuestOs(g: WindowsGuest): Promise<string | undefined> {
  const r = await g.ctx.shell.run(cmd(g.ctx, [pipe(ps('Get-CimInstance', { ClassName: 'Win32_OperatingSystem' }), project({ Caption: 'string', Version: 'string' }))]), { timeoutMs: g.ctx.queryTimeoutMs }).catch(() => undefined);
  if (!r || r.failure) return undefined;
  const o = (r.items[0] ?? {}) as { Caption?: unknown; Version?: unknown };
  const text = [o.Caption, o.Version].filter((x): x is string => typeof x === 'string' && x !== '').join(' ');
  return text || undefined;
}

async function run(g: WindowsGuest, statements: Parameters<typeof cmd>[1], what: string, timeoutMs: number) {
  const r = await g.ctx.shell.run(cmd(g.ctx, statements), { timeoutMs });
  try {
    return expectOk(r);
  } catch (e) {
    throw new InfraError(`could not ${what} on ${g.name}: ${(e as Error).message.split('\n')[0]}`, { host: g.name, cause: e });
  }
}

/**
 * The Windows guest's PowerShell over its OpenSSH server, as a host's (host-connect.ts):
 * the template's credential resolved (and registered with the redactor), the host key
 * pinned. Windows PowerShell 5.1 runs the commands (`remoteProgram` replaces it: tests).
 */
export async function openWindowsGuest(e: GuestEndpoint, options: { queryTimeoutMs?: number; remoteProgram?: string | undefined } = {}): Promise<WindowsGuest> {
  const where = { field: `guest ${e.name} credentials` };
  let auth: SshAuth;
  if (e.credential.kind === 'key') {
    const privateKey = await resolveSecret(e.credential.key, { where });
    const passphrase = e.credential.passphrase ? await resolveSecret(e.credential.passphrase, { where }) : undefined;
    checkPrivateKey(privateKey, passphrase, where);
    auth = { kind: 'key', privateKey, passphrase };
  } else {
    auth = { kind: 'password', password: await resolveSecret(e.credential.password, { where }) };
  }
  const shell = new SshPwshShell({
    host: e.name, address: e.host, port: e.port, user: e.user, auth,
    hostKey: e.hostKey.kind === 'fingerprint' ? { kind: 'fingerprint', sha256: e.hostKey.sha256 } : { kind: 'known-hosts', path: e.hostKey.path },
    shell: 'powershell', remoteProgram: options.remoteProgram,
  });
  return { name: e.name, ctx: hostContext(shell, { queryTimeoutMs: options.queryTimeoutMs ?? 60_000 }) };
}
