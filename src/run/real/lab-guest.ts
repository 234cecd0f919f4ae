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
  guestPath, installWindowsGuestPackage, openWindowsGuest, readWindowsPackageCounters, readWindowsPackageTrace, runGuestTool, setWindowsVmbusDevice, windowsGuestOs, windowsVmbusDevice, type WindowsGuest,
} from '../../lab/deploy-guest-windows.ts';
import type { DriverRecord } from '../../lab/deploy-drivers.ts';
import { GuestSsh, type GuestEndpoint } from '../../lab/guest-ssh.ts';
import type { VmTemplate } from '../../lab/template.ts';
import type { GuestControl, GuestDevices } from './real-job.ts';
import { sh } from '../../lab/guest/posix-quote.ts';

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

/** Where Linux's VMBus bus is in sysfs (tests give a folder of their own). */
export const VMBUS_SYSFS = '/sys/bus/vmbus';

/**
 * The guest driver's control for a job: the device's lines in, its trace seq and trace
 * out, and the guest OS's hold on the channels' devices when the device says how
 * (control.guestUnbind): Linux's sysfs unbind and bind, Windows' PnP disable and enable.
 */
export function labGuestControl(g: LabGuest, t: VmTemplate, control: ToolControl, o: { vmbusSysfs?: string } = {}): GuestControl {
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
      devices: control.guestUnbind?.windowsPnp ? windowsDevices(win) : undefined,
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
    devices: control.guestUnbind?.linuxDriver !== undefined ? linuxDevices(ssh, pkg, control.guestUnbind.linuxDriver, o.vmbusSysfs ?? VMBUS_SYSFS) : undefined,
  };
}

/**
 * A Linux guest's VMBus devices through sysfs: a device is named by its instance GUID
 * (vmbus_drv.c names it "%pUl", lower case); writing that name to the driver's `unbind`
 * has the vmbus core run the driver's remove, to `bind` its probe; `drivers_autoprobe` 0
 * leaves a newly offered device unbound. Writes as root when the package says sudo; every
 * value reaches the guest's shell quoted by `sh` (writeControlLine).
 */
function linuxDevices(ssh: GuestSsh, pkg: VmTemplate['guest']['driver'], driver: string, root: string): GuestDevices {
  const drv = posix.join(root, 'drivers', driver);
  const name = (instance: string) => instance.toLowerCase();
  return {
    state: async (instance) => {
      const dev = posix.join(root, 'devices', name(instance));
      const r = await ssh.exec(sh`if [ -e ${posix.join(dev, 'driver')} ]; then echo bound; elif [ -e ${dev} ]; then echo unbound; else echo absent; fi`, { timeoutMs: 15_000, maxOutputBytes: 4096 });
      const s = r.stdout.trim();
      if (r.exitCode !== 0 || (s !== 'bound' && s !== 'unbound' && s !== 'absent')) throw new InfraError(`could not read ${dev} on ${ssh.endpoint.name}: ${(r.stderr.trim() || s).slice(0, 200)}`, { host: ssh.endpoint.host });
      return s;
    },
    unbind: (instance) => writeControlLine(ssh, pkg, posix.join(drv, 'unbind'), name(instance)),
    bind: (instance) => writeControlLine(ssh, pkg, posix.join(drv, 'bind'), name(instance)),
    autoBind: (on) => writeControlLine(ssh, pkg, posix.join(root, 'drivers_autoprobe'), on ? '1' : '0'),
  };
}

/** A Windows guest's VMBus devices through PnP (deploy-guest-windows.ts); it has no switch to leave new devices unbound. */
function windowsDevices(win: WindowsGuest): GuestDevices {
  return {
    state: async (instance) => {
      const d = await windowsVmbusDevice(win, instance);
      return d === undefined ? 'absent' : d.started ? 'bound' : 'unbound';
    },
    unbind: (instance) => setWindowsVmbusDevice(win, instance, false),
    bind: (instance) => setWindowsVmbusDevice(win, instance, true),
    autoBind: async () => {
      throw new InfraError(`a Windows guest (${win.name}) cannot leave a new VMBus device unbound (src/lab/vm-steps.ts plans such a rescind not applicable)`, { host: win.name });
    },
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
