// A VM's guest as a real job drives it, by the template's guest OS: a Linux guest over
// SSH and its POSIX shell (guest-ssh.ts, deploy-guest-package.ts), a Windows guest over
// PowerShell on its OpenSSH server (deploy-guest-windows.ts). Either way the template's
// driver package is installed, and the guest driver takes the device's control lines:
// through its control file (the module's control.linuxGuest) on Linux, through the
// device's control tool (control.tool) on Windows.

import { posix } from 'node:path';
import type { ToolControl } from '../../device-api/device-module.ts';
import { InfraError } from '../../errors.ts';
import { guestDriverRecord } from '../../lab/deploy-guest.ts';
import { installGuestPackage, readPackageCounters, readPackageTrace, writeControlLine } from '../../lab/deploy-guest-package.ts';
import {
  guestPath, installWindowsGuestPackage, openWindowsGuest, readWindowsPackageCounters, readWindowsPackageTrace, runGuestTool, windowsGuestOs, type WindowsGuest,
} from '../../lab/deploy-guest-windows.ts';
import type { DriverRecord } from '../../lab/deploy-drivers.ts';
import { GuestSsh, type GuestEndpoint } from '../../lab/guest-ssh.ts';
import type { VmTemplate } from '../../lab/template.ts';
import type { GuestControl } from './real-job.ts';

export type LabGuest =
  | { os: 'linux'; ssh: GuestSsh }
  | { os: 'windows'; win: WindowsGuest };

/** How guests are reached (defaults: GuestSsh.connect, openWindowsGuest); tests pass their own. */
export interface GuestConnectors {
  connectGuest?: ((endpoint: GuestEndpoint) => Promise<GuestSsh>) | undefined;
  connectWindowsGuest?: ((endpoint: GuestEndpoint) => Promise<WindowsGuest>) | undefined;
}

export async function connectLabGuest(t: VmTemplate, e: GuestEndpoint, c: GuestConnectors): Promise<LabGuest> {
  if (t.guest.os === 'windows') return { os: 'windows', win: await (c.connectWindowsGuest ?? ((x) => openWindowsGuest(x)))(e) };
  return { os: 'linux', ssh: await (c.connectGuest ?? ((x) => GuestSsh.connect(x)))(e) };
}

/** Installs the template's driver package; returns the guest's OS (kernel) and the driver's record for the results. */
export async function installLabGuest(g: LabGuest, t: VmTemplate, sourceCommit: string | undefined): Promise<{ guestOs: string | undefined; drivers: DriverRecord[] }> {
  const pkg = t.guest.driver;
  if (g.os === 'windows') {
    const installed = await installWindowsGuestPackage(g.win, pkg);
    const guestOs = await windowsGuestOs(g.win);
    return { guestOs, drivers: installed.binarySha256 ? [{ name: 'guest', where: 'guest', sha256: installed.binarySha256, sourceCommit }] : [] };
  }
  const installed = await installGuestPackage(g.ssh, pkg);
  const rec = pkg.binary ? await guestDriverRecord(g.ssh, posix.join(installed.remoteDir, pkg.binary), sourceCommit) : undefined;
  return { guestOs: rec?.kernel, drivers: rec ? [{ name: 'guest', where: 'guest', sha256: rec.sha256, sourceCommit: rec.commit }] : [] };
}

/** The guest driver's control for a job: the device's lines in, its trace seq and trace out. */
export function labGuestControl(g: LabGuest, t: VmTemplate, control: ToolControl): GuestControl {
  const pkg = t.guest.driver;
  if (g.os === 'windows') {
    const { win } = g;
    const program = pkg.controlTool ? guestPath(pkg.remoteDir, ...pkg.controlTool.split(/[\\/]/)) : control.tool.program;
    const tool = (v: Parameters<ToolControl['tool']['args']>[0]) => runGuestTool(win, program, control.tool.args(v));
    return {
      command: async (line) => { await tool({ verb: 'command', who: 'guest', line }); },
      traceSeq: async () => (await readWindowsPackageCounters(win, pkg)) ?? control.counters('guest', await tool({ verb: 'counters', who: 'guest' })).traceSeq ?? lastSeq(await readWindowsPackageTrace(win, pkg)),
      readTrace: () => readWindowsPackageTrace(win, pkg),
      // A saved, restored or moved VM's session is dead: the next command opens a new one.
      reconnect: () => win.ctx.shell.close(),
    };
  }
  const { ssh } = g;
  return {
    command: async (line) => {
      const file = control.linuxGuest?.controlFile;
      if (!file) throw new InfraError('the device module names no control file for a Linux guest driver (control.linuxGuest)', { host: ssh.endpoint.host });
      await writeControlLine(ssh, pkg, file, line);
    },
    traceSeq: async () => (await readPackageCounters(ssh, pkg))?.traceSeq ?? lastSeq(await readPackageTrace(ssh, pkg)),
    readTrace: () => readPackageTrace(ssh, pkg),
    reconnect: () => ssh.reconnect(),
  };
}

export async function reconnectLabGuest(g: LabGuest): Promise<void> {
  if (g.os === 'windows') await g.win.ctx.shell.close();
  else await g.ssh.reconnect();
}

export function closeLabGuest(g: LabGuest): void {
  if (g.os === 'windows') void g.win.ctx.shell.close().catch(() => undefined);
  else g.ssh.close();
}

/** The seq of a trace's last line, for a driver package that names no counters file. */
function lastSeq(trace: string): number {
  const last = trace.trimEnd().split('\n').at(-1) ?? '';
  const m = /"seq":(\d+)/.exec(last);
  return m ? Number(m[1]) : 0;
}
