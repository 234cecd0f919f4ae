// The guest driver's control in a VM job (src/run/real/lab-guest.ts), by guest OS, with
// the sample device's control: a Linux guest takes each line as one write to the
// module's control file (over a real sshd and sh), a Windows guest through the device's
// control tool run in the guest (a real PowerShell), the package's tool when it names
// one; the trace seq comes from the counters file, else the tool's counters.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleControl } from '../../../devices/sample/control.ts';
import type { GuestDriverPackage } from '../../../src/lab/driver-package.ts';
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { hostContext } from '../../../src/lab/hyperv-vm.ts';
import type { VmTemplate } from '../../../src/lab/template.ts';
import { labGuestControl } from '../../../src/run/real/lab-guest.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../../lab/support/sshd.ts';

const LINE = "send 4 64 2 30 ch=0; rm -rf '$HOME' `id`";
const template = (os: 'linux' | 'windows', driver: GuestDriverPackage) => ({ guest: { os, driver } }) as unknown as VmTemplate;

describe.skipIf(!pwsh)(`a Windows guest driver's control ${pwshLabel}`, { timeout: 60_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'lab-guest-win-'));
  const remoteDir = join(work, 'driver');
  const shell = new LocalPwshShell({ host: 'win-guest', executable: pwsh?.path });
  afterAll(() => shell.close());
  beforeAll(() => {
    mkdirSync(remoteDir);
    // The package's control tool: records its arguments, prints counters as sample-ctl does.
    writeFileSync(join(remoteDir, 'ctl.ps1'), [
      "Add-Content -LiteralPath (Join-Path $PSScriptRoot 'calls.txt') -Value ($args -join '|')",
      "if ($args[1] -eq 'counters') { 'ch=0 requests_sent=3 completions=2 trace_seq=9' }",
      'exit 0', '',
    ].join('\n'));
  });
  const pkg: GuestDriverPackage = {
    files: work, include: undefined, remoteDir, install: '', uninstall: '', sudo: false, binary: undefined, installTimeoutMs: 60_000,
    controlTool: 'ctl.ps1', trace: { format: 'jsonl', path: join(work, 'trace.jsonl') },
  };

  it('runs the package\'s tool with the line as one argument, and reads the trace seq from its counters', async () => {
    const g = labGuestControl({ os: 'windows', win: { name: 'win-guest', ctx: hostContext(shell) } }, template('windows', pkg), sampleControl);
    await g.command(LINE);
    expect(await g.traceSeq()).toBe(9);
    expect(readFileSync(join(remoteDir, 'calls.txt'), 'utf8').trimEnd().split(/\r?\n/)).toEqual([`guest|command|${LINE}`, 'guest|counters']);
    writeFileSync(join(work, 'trace.jsonl'), '{"seq":1}\n');
    expect(await g.readTrace()).toBe('{"seq":1}\n');
  });
});

const sshReason = sshdUnavailable();
describe.skipIf(sshReason)(`a Linux guest driver's control ${sshReason ? `(skipped: ${sshReason})` : ''}`, { timeout: 60_000 }, () => {
  let sshd: Sshd;
  let ssh: GuestSsh;
  beforeAll(async () => {
    sshd = await startSshd();
    ssh = await GuestSsh.connect({
      name: 'linux-guest', host: sshd.host, port: sshd.port, user: sshd.user,
      credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } }, hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
    });
  });
  afterAll(async () => {
    ssh?.close();
    await sshd?.stop();
  });

  it('writes each line, whatever it holds, to the module\'s control file, and reads the trace seq from the counters file', async () => {
    const dir = mkdtempSync(join(tmpdir(), "debugfs 'x' "));
    const controlFile = join(dir, 'control');
    writeFileSync(join(dir, 'counters'), 'trace_seq=41 trace_dropped=0\n');
    const pkg: GuestDriverPackage = {
      files: dir, include: undefined, remoteDir: dir, install: '', uninstall: '', sudo: false, binary: undefined, installTimeoutMs: 60_000,
      trace: { format: 'jsonl', path: join(dir, 'trace'), counters: join(dir, 'counters') },
    };
    const g = labGuestControl({ os: 'linux', ssh }, template('linux', pkg), { ...sampleControl, linuxGuest: { controlFile } });
    await g.command(LINE);
    expect(readFileSync(controlFile, 'utf8')).toBe(LINE);
    expect(await g.traceSeq()).toBe(41);
    // A module without a Linux control file cannot drive a Linux guest: said, not guessed.
    const none = labGuestControl({ os: 'linux', ssh }, template('linux', pkg), { ...sampleControl, linuxGuest: undefined });
    await expect(none.command('x')).rejects.toThrow(/names no control file for a Linux guest driver \(control\.linuxGuest\)/);
  });
});
