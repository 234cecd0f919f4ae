// A Windows guest's driver package (src/lab/deploy-guest-windows.ts), through the real
// PowerShell engine over a real OpenSSH server on loopback (test/lab/support/sshd.ts), the
// way the bench reaches a Windows guest: the files arrive byte for byte whatever their
// names, the author's install, uninstall and collect commands run as written with
// $PackageDir set, a failing command is an error that says what it printed, and the
// trace, counters and the device's control tool work in the guest.
//
// Off Windows the guest's folder is a POSIX path (guestPath keeps the separator the
// folder uses); on a Windows guest it is C:\... as the template says.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../../src/errors.ts';
import {
  guestPath, installWindowsGuestPackage, openWindowsGuest, readWindowsPackageCounters, readWindowsPackageTrace,
  runGuestTool, uninstallWindowsGuestPackage, windowsGuestOs, type WindowsGuest,
} from '../../../src/lab/deploy-guest-windows.ts';
import type { GuestDriverPackage } from '../../../src/lab/driver-package.ts';
import { pwsh, pwshLabel } from '../host/find-pwsh.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';

const reason = !pwsh ? 'no PowerShell' : sshdUnavailable();

describe('guestPath', () => {
  it('joins with the separator the folder uses', () => {
    expect(guestPath('C:\\bench\\driver', 'sub', 'a.inf')).toBe('C:\\bench\\driver\\sub\\a.inf');
    expect(guestPath('C:\\bench\\driver\\', 'a.inf')).toBe('C:\\bench\\driver\\a.inf');
    expect(guestPath('/tmp/x/', 'sub', 'a.inf')).toBe('/tmp/x/sub/a.inf');
  });
});

describe.skipIf(reason)(`a Windows guest's driver package over SSH ${reason ? `(skipped: ${reason})` : pwshLabel}`, { timeout: 120_000 }, () => {
  let sshd: Sshd;
  let guest: WindowsGuest;
  let work: string;
  const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 131 + 7) % 256));
  const pkg = (over: Partial<GuestDriverPackage> = {}): GuestDriverPackage => ({
    files: join(work, 'package'), include: undefined, remoteDir: join(work, "guest's driver folder"), sudo: false, binary: "it's $x.sys",
    installTimeoutMs: 60_000, trace: { format: 'jsonl', path: join(work, 'guest-trace.jsonl'), collect: "Set-Content -LiteralPath (Join-Path $PackageDir '..' 'guest-trace.jsonl') -Value '{\"seq\":1}'" },
    install: "$here = $PackageDir\nCopy-Item -LiteralPath (Join-Path $here \"it's `$x.sys\") -Destination (Join-Path $here 'installed.sys')\nWrite-Output \"installed in $here\"",
    uninstall: "Remove-Item -LiteralPath (Join-Path $PackageDir 'installed.sys')",
    ...over,
  });
  beforeAll(async () => {
    sshd = await startSshd();
    work = mkdtempSync(join(tmpdir(), 'win-guest-'));
    mkdirSync(join(work, 'package', 'sub dir'), { recursive: true });
    writeFileSync(join(work, 'package', "it's $x.sys"), binary);
    writeFileSync(join(work, 'package', 'sub dir', 'vmbus guest.inf'), '[Version]\r\nSignature="$Windows NT$"\r\n');
    writeFileSync(join(work, 'package', 'guest.o'), 'build output, never shipped');
    guest = await openWindowsGuest({
      name: 'win-guest', host: sshd.host, port: sshd.port, user: sshd.user,
      credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } }, hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
    }, { remoteProgram: pwsh!.path });
  });
  afterAll(async () => {
    await guest?.ctx.shell.close();
    await sshd?.stop();
  });

  it('copies every file byte for byte, runs install with $PackageDir, and records the binary\'s hash', async () => {
    const p = pkg();
    const installed = await installWindowsGuestPackage(guest, p);
    expect(installed.binarySha256).toBe(createHash('sha256').update(binary).digest('hex').toUpperCase());
    expect(readFileSync(join(p.remoteDir, "it's $x.sys"))).toEqual(binary);
    expect(readFileSync(join(p.remoteDir, 'sub dir', 'vmbus guest.inf'), 'utf8')).toBe('[Version]\r\nSignature="$Windows NT$"\r\n');
    // The install command ran, in the guest, with the folder the files are in.
    expect(readFileSync(join(p.remoteDir, 'installed.sys'))).toEqual(binary);
    expect(() => readFileSync(join(p.remoteDir, 'guest.o'))).toThrow();
    await uninstallWindowsGuestPackage(guest, p);
    expect(() => readFileSync(join(p.remoteDir, 'installed.sys'))).toThrow();
    // Win32_OperatingSystem exists only on Windows: elsewhere the OS is left unknown, not an error.
    expect(await windowsGuestOs(guest)).toEqual(process.platform === 'win32' ? expect.stringMatching(/Windows/) : undefined);
  });

  it('fails an install whose command exits non-zero, with what it printed', async () => {
    const e = await installWindowsGuestPackage(guest, pkg({ install: "Write-Output 'pnputil: the certificate is not trusted'\n$global:LASTEXITCODE = 5" })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InfraError);
    expect((e as Error).message).toMatch(/install command exited with 5 on win-guest: pnputil: the certificate is not trusted/);
    const thrown = await installWindowsGuestPackage(guest, pkg({ install: "throw 'no such driver store'" })).catch((x: unknown) => x);
    expect((thrown as Error).message).toMatch(/could not install the driver package on win-guest: .*no such driver store/);
  });

  it('collects and reads the trace, reads trace_seq from the counters file, and says when the trace is missing', async () => {
    const p = pkg();
    await installWindowsGuestPackage(guest, p);
    expect(await readWindowsPackageTrace(guest, p)).toBe('{"seq":1}\n');
    writeFileSync(join(work, 'counters'), 'trace_seq=17 trace_dropped=0\n');
    expect(await readWindowsPackageCounters(guest, pkg({ trace: { format: 'jsonl', path: 'x', counters: join(work, 'counters') } }))).toBe(17);
    expect(await readWindowsPackageCounters(guest, p)).toBeUndefined();
    const missing = await readWindowsPackageTrace(guest, pkg({ trace: { format: 'jsonl', path: join(work, 'nowhere.jsonl') } })).catch((x: unknown) => x);
    expect((missing as Error).message).toMatch(/trace .*nowhere\.jsonl is missing on win-guest/);
  });

  it('runs the control tool with each argument intact, and fails on its exit code', async () => {
    const tool = join(work, 'tool.sh');
    writeFileSync(tool, '#!/bin/sh\nfor a in "$@"; do printf "[%s]\\n" "$a"; done\n[ "$1" = fail ] && exit 3\nexit 0\n');
    chmodSync(tool, 0o755);
    expect(await runGuestTool(guest, tool, ['guest', 'command', "send 4 64 0 0 ch=0; rm -rf '$HOME' `x`"])).toEqual(['[guest]', '[command]', "[send 4 64 0 0 ch=0; rm -rf '$HOME' `x`]"]);
    const e = await runGuestTool(guest, tool, ['fail']).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/exited with 3 on win-guest: \[fail\]/);
  });
});
