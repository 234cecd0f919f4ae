// The run deploys what it uses (src/lab/deploy-drivers.ts), on the Hyper-V stand-in: the
// staged build of each driver package becomes the installed one through the package's own
// install command (the sample's, lab/drivers/packages.yaml, runs pnputil), its hash and
// version are recorded, an older build is updated, a host that cannot be updated says
// why, and the packages' uninstall commands remove them again. Host facts are read from
// the host, not the inventory.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHostDrivers, hostPackages, removeHostDriver, runPackageCommand } from '../../../src/lab/deploy-drivers.ts';
import { loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { buildMismatch, readHostFacts } from '../../../src/lab/host-facts.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { existsSync } from 'node:fs';
import { disposeHost, hostFile, hostFileSha256, newStandinHost, PARENT, SWITCH, type StandinHost } from './standin.ts';

describe.skipIf(!pwsh)(`driver deployment and host facts on the stand-in ${pwshLabel}`, { timeout: 120_000 }, () => {
  let a: StandinHost;
  let hv: HyperV;
  const pkgs = hostPackages(loadHostDrivers(), ['loopback']);
  const infOf = (sys: string) => sys.replace(/\.sys$/, '.inf');
  beforeAll(() => {
    a = newStandinHost('hostA');
    hv = new HyperV(a.ctx);
  });
  afterAll(async () => disposeHost(a));

  async function init(extra: Record<string, boolean | string | number> = {}) {
    await a.setup('Initialize-StandinHost', { Name: 'hostA', Switches: [SWITCH], TestSigning: true, Files: [PARENT, ...pkgs.map((p) => infOf(p.sys))], ...extra });
  }
  /** Stages build `build` of a driver as a real file and returns its SHA-256, as the host would hash it. */
  const stage = async (name: 'vsp' | 'client', build: string, version: string) => {
    const sys = pkgs.find((p) => p.name === name)!.sys;
    await a.setup('Add-StandinFile', { Path: sys, Version: version, Build: build });
    return hostFileSha256(a, sys);
  };
  const installed = (name: 'vsp' | 'client') => `C:\\Windows\\System32\\drivers\\${pkgs.find((p) => p.name === name)!.sys.split('\\').pop()}`;

  it('installs the staged VSP and client, records their hash and version, and does nothing the second time', async () => {
    await init();
    const vsp1 = await stage('vsp', '1', '1.0.0.1');
    const client2 = await stage('client', '2', '1.0.0.2');
    expect(vsp1).not.toBe(client2);
    const first = await ensureHostDrivers(hv, pkgs);
    expect(first).toEqual({ ok: true, updated: ['vsp', 'client'], drivers: [
      { name: 'vsp', where: 'host', sha256: vsp1, fileVersion: '1.0.0.1', sourceCommit: undefined },
      { name: 'client', where: 'host', sha256: client2, fileVersion: '1.0.0.2', sourceCommit: undefined },
    ] });
    // The real files: pnputil's install put the staged binary in System32\drivers.
    expect(hostFileSha256(a, installed('vsp'))).toBe(vsp1);
    const store = (await a.state()).Drivers;
    expect(store).toHaveLength(2);
    expect(await ensureHostDrivers(hv, pkgs)).toMatchObject({ ok: true, updated: [] });
    expect((await a.state()).Drivers).toEqual(store);
    // Undeployment: both packages leave the driver store.
    await removeHostDriver(hv, pkgs[0]!);
    expect((await a.state()).Drivers).toEqual([store[1]]); // the client's package is still there
    await removeHostDriver(hv, pkgs[1]!);
    expect((await a.state()).Drivers).toEqual([]);
    // Removing what is gone already is fine.
    await removeHostDriver(hv, pkgs[0]!);
  });

  it('updates a host with an older build, and fails with the reason when it cannot', async () => {
    await init();
    await stage('vsp', '1', '1.0.0.1');
    expect(await ensureHostDrivers(hv, pkgs.slice(0, 1))).toMatchObject({ ok: true, updated: ['vsp'] });
    const vsp3 = await stage('vsp', '3', '1.0.0.3');
    expect(await ensureHostDrivers(hv, pkgs.slice(0, 1))).toMatchObject({ ok: true, updated: ['vsp'], drivers: [{ sha256: vsp3, fileVersion: '1.0.0.3' }] });
    expect(existsSync(hostFile(a, pkgs[1]!.sys))).toBe(false);
    expect(await ensureHostDrivers(hv, pkgs)).toEqual({ ok: false, reason: expect.stringMatching(/client build is not staged.*vmbus_sample_guest\.sys is missing/) });

    await init({ DriverInUse: true });
    await stage('vsp', '1', '1.0.0.1');
    expect(await ensureHostDrivers(hv, pkgs.slice(0, 1))).toMatchObject({ ok: true });
    await stage('vsp', '4', '1.0.0.4');
    expect(await ensureHostDrivers(hv, pkgs.slice(0, 1))).toEqual({ ok: false, reason: expect.stringMatching(/cannot be updated: .*still the old build \(a reboot is needed/) });

    await init({ TestSigning: false });
    await stage('vsp', '1', '1.0.0.1');
    expect(await ensureHostDrivers(hv, pkgs.slice(0, 1))).toEqual({ ok: false, reason: expect.stringMatching(/cannot be updated: .*test signing is off.*bcdedit \/set testsigning on/) });
  });

  it('runs an author\'s install command as written, with $PackageDir, and fails with its exit code', async () => {
    await init();
    // Quotes, $, backticks and a here-string: the text travels as base64 and is never spliced.
    const install = [
      "Write-Output \"dir=$PackageDir\"",
      "Write-Output 'it''s $HOME `n \"x\"'",
      "$t = @'\nline one\n  $not.a.variable\n'@",
      'Write-Output $t',
    ].join('\n');
    const pkg = { ...pkgs[0]!, files: "C:\\bench\\my driver's \"pkg\"", install };
    expect((await runPackageCommand(hv, pkg, 'install')).output).toEqual([
      'dir=C:\\bench\\my driver\'s "pkg"', 'it\'s $HOME `n "x"', 'line one\n  $not.a.variable',
    ]);
    // A native program's failure is the command's; what it printed last says why.
    const failing = { ...pkg, install: 'pnputil /add-driver "$PackageDir\\missing.inf" /install' };
    await expect(runPackageCommand(hv, failing, 'install')).rejects.toThrow(/vsp package's install command exited with 2: .*cannot find the file specified/);
    await stage('vsp', '5', '1.0.0.5');
    expect(await ensureHostDrivers(hv, [failing])).toEqual({ ok: false, reason: expect.stringMatching(/^the vsp driver cannot be updated: the vsp package's install command exited with 2/) });
  });

  it('reads the OS build with its revision and the Hyper-V and vmbkmcl.sys versions from the host', async () => {
    await init({ OsBuild: '26100', Ubr: 4061 });
    const facts = await readHostFacts(hv);
    expect(facts).toEqual({ osBuild: '26100.4061', hypervVersion: '10.0.26100.4061', kmclVersion: '10.0.26100.4061' });
    // The real cmdlets answered from real files: the registry key is a folder of values.
    expect(existsSync(hostFile(a, 'C:\\Windows\\System32\\drivers\\vmbkmcl.sys'))).toBe(true);
    expect(existsSync(join(a.dir, 'HKLM', 'SOFTWARE', 'Microsoft', 'Windows NT', 'CurrentVersion', 'UBR'))).toBe(true);
    expect(buildMismatch('hostA', '26100.2314', facts)).toMatch(/inventory says build 26100\.2314, the host runs 26100\.4061/);
  });
});
