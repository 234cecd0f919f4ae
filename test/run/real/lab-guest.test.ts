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
import type { ToolControl } from '../../../src/device-api/device-module.ts';
import type { GuestDriverPackage } from '../../../src/lab/driver-package.ts';
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { hostContext } from '../../../src/lab/hyperv-vm.ts';
import type { VmTemplate } from '../../../src/lab/template.ts';
import { labGuestControl } from '../../../src/run/real/lab-guest.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../../lab/support/sshd.ts';
import { connectToSshd } from '../../lab/support/sshd-guest.ts';

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

// PnP's cmdlets exist only on Windows, so a stand-in module takes their place on this
// pwsh: it keeps the devices in a JSON file, records each call, and asks for confirmation
// as the real Disable-/Enable-PnpDevice do (ConfirmImpact High, inferred from their
// -Confirm parameter and Microsoft's examples): in a non-interactive shell a call without
// -Confirm:$false fails.
const PNP_MODULE = `
$dir = $env:BENCH_PNP_STATE
function Read-Devices { @(Get-Content -Raw -LiteralPath (Join-Path $dir 'devices.json') | ConvertFrom-Json) }
function Write-Call([string]$Line) { Add-Content -LiteralPath (Join-Path $dir 'calls.txt') -Value $Line }
function Get-PnpDevice { [CmdletBinding()] param([switch]$PresentOnly)
  Write-Call "Get-PnpDevice -PresentOnly:$PresentOnly"
  Read-Devices | Where-Object { -not $PresentOnly -or $_.Present } }
function Set-Started([string]$Id, [bool]$On) {
  $all = Read-Devices
  foreach ($d in $all) { if ($d.InstanceId -eq $Id) { $d.Status = $(if ($On) { 'OK' } else { 'Error' }) } }
  ConvertTo-Json -InputObject $all -Depth 3 | Set-Content -LiteralPath (Join-Path $dir 'devices.json') }
function Disable-PnpDevice { [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')] param([Parameter(ValueFromPipelineByPropertyName = $true)][string[]]$InstanceId)
  process { foreach ($id in $InstanceId) { if ($PSCmdlet.ShouldProcess($id)) { Write-Call "Disable-PnpDevice $id"; Set-Started $id $false } } } }
function Enable-PnpDevice { [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')] param([Parameter(ValueFromPipelineByPropertyName = $true)][string[]]$InstanceId)
  process { foreach ($id in $InstanceId) { if ($PSCmdlet.ShouldProcess($id)) { Write-Call "Enable-PnpDevice $id"; Set-Started $id $true } } } }
Export-ModuleMember -Function Get-PnpDevice, Disable-PnpDevice, Enable-PnpDevice
`;

describe.skipIf(!pwsh)(`a Windows guest's VMBus devices through PnP ${pwshLabel}`, { timeout: 60_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'lab-guest-pnp-'));
  const modules = join(work, 'modules');
  const inst1 = sampleControl.channelInstance(1);
  const id1 = `VMBUS\\{2a0b6c1e-0000-4000-8000-5a4d9e000001}\\{${inst1.toUpperCase()}}`;
  beforeAll(() => {
    mkdirSync(join(modules, 'PnpDevice'), { recursive: true });
    writeFileSync(join(modules, 'PnpDevice', 'PnpDevice.psm1'), PNP_MODULE);
    writeFileSync(join(work, 'devices.json'), JSON.stringify([
      { InstanceId: 'VMBUS\\{2a0b6c1e-0000-4000-8000-5a4d9e000001}\\{8D2F5C3A-71B4-4E0E-9A6D-000000000000}', Status: 'OK', Present: true },
      { InstanceId: id1, Status: 'OK', Present: true },
      { InstanceId: 'VMBUS\\{2a0b6c1e-0000-4000-8000-5a4d9e000001}\\{8D2F5C3A-71B4-4E0E-9A6D-000000000002}', Status: 'OK', Present: false },
    ]));
  });
  const shell = new LocalPwshShell({ host: 'win-guest', executable: pwsh?.path, env: { BENCH_PNP_STATE: work, PSModulePath: `${modules}${process.platform === 'win32' ? ';' : ':'}${process.env.PSModulePath ?? ''}` } });
  afterAll(() => shell.close());
  const pkg = { files: work, include: undefined, remoteDir: work, install: '', uninstall: '', sudo: false, binary: undefined, installTimeoutMs: 60_000, trace: { format: 'jsonl', path: join(work, 'trace.jsonl') } } as GuestDriverPackage;
  const guest = (control: ToolControl = { ...sampleControl, guestUnbind: { windowsPnp: true } }) => labGuestControl({ os: 'windows', win: { name: 'win-guest', ctx: hostContext(shell) } }, template('windows', pkg), control);

  it('a guest close disables the channel instance\'s PnP device and a guest open enables it, matched by the instance GUID; a rescinded (not present) one is absent', async () => {
    const d = guest().devices!;
    expect(await d.state(inst1)).toBe('bound');
    await d.unbind(inst1);
    expect(await d.state(inst1)).toBe('unbound');
    await d.bind(inst1);
    expect(await d.state(inst1)).toBe('bound');
    expect(await d.state(sampleControl.channelInstance(2))).toBe('absent');
    const calls = readFileSync(join(work, 'calls.txt'), 'utf8').trimEnd().split(/\r?\n/);
    expect(calls.filter((c) => !c.startsWith('Get-PnpDevice'))).toEqual([`Disable-PnpDevice ${id1}`, `Enable-PnpDevice ${id1}`]);
    expect(new Set(calls.filter((c) => c.startsWith('Get-PnpDevice')))).toEqual(new Set(['Get-PnpDevice -PresentOnly:True']));
    // Windows has no switch to leave a new device unbound: said, not attempted.
    await expect(d.autoBind(false)).rejects.toThrow(/cannot leave a new VMBus device unbound/);
  });

  it('an instance id that is not a GUID never reaches the shell; a device whose control has no windowsPnp has no devices', async () => {
    await expect(guest().devices!.unbind("x' ; Remove-Item -Recurse C:\\ ; '")).rejects.toThrow(/is not a channel instance GUID/);
    expect(guest({ ...sampleControl, guestUnbind: { linuxDriver: 'vmbus_sample_guest' } }).devices).toBeUndefined();
    // The sample's own control says its Windows driver's trace outlives a device.
    expect(guest({ ...sampleControl }).devices).toBeDefined();
  });
});

const sshReason = sshdUnavailable();
describe.skipIf(sshReason)(`a Linux guest driver's control ${sshReason ? `(skipped: ${sshReason})` : ''}`, { timeout: 60_000 }, () => {
  let sshd: Sshd;
  let ssh: GuestSsh;
  beforeAll(async () => {
    sshd = await startSshd();
    ssh = await connectToSshd(sshd);
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

  it('a guest close writes the channel instance\'s device name to the driver\'s sysfs unbind file and a guest open to bind, drivers_autoprobe holds new devices, and the device\'s state is read from sysfs', async () => {
    // A folder laid out as /sys/bus/vmbus is (the real one cannot be written here), its path quoted on the way.
    const root = mkdtempSync(join(tmpdir(), "vmbus 'sysfs' $x "));
    const inst = sampleControl.channelInstance(1).toUpperCase();
    const dev = join(root, 'devices', inst.toLowerCase());
    const drv = join(root, 'drivers', 'vmbus_sample_guest');
    mkdirSync(drv, { recursive: true });
    mkdirSync(dev, { recursive: true });
    const pkg: GuestDriverPackage = {
      files: root, include: undefined, remoteDir: root, install: '', uninstall: '', sudo: false, binary: undefined, installTimeoutMs: 60_000,
      trace: { format: 'jsonl', path: join(root, 'trace') },
    };
    const g = labGuestControl({ os: 'linux', ssh }, template('linux', pkg), sampleControl, { vmbusSysfs: root });
    const d = g.devices!;
    expect(await d.state(inst)).toBe('unbound');
    writeFileSync(join(dev, 'driver'), '');
    expect(await d.state(inst)).toBe('bound');
    expect(await d.state(sampleControl.channelInstance(2))).toBe('absent');
    await d.unbind(inst);
    expect(readFileSync(join(drv, 'unbind'), 'utf8')).toBe(inst.toLowerCase());
    await d.bind(inst);
    expect(readFileSync(join(drv, 'bind'), 'utf8')).toBe(inst.toLowerCase());
    await d.autoBind(false);
    expect(readFileSync(join(root, 'drivers_autoprobe'), 'utf8')).toBe('0');
    await d.autoBind(true);
    expect(readFileSync(join(root, 'drivers_autoprobe'), 'utf8')).toBe('1');
    // A device whose control names no Linux driver: the guest has no devices to close or open.
    expect(labGuestControl({ os: 'linux', ssh }, template('linux', pkg), { ...sampleControl, guestUnbind: undefined }).devices).toBeUndefined();
  });
});
