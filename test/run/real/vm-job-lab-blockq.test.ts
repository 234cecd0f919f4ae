// blockq on a real lab's VM job (src/run/real/vm-job-lab.ts), as a device author's own
// device runs there: its control tool (blockq-ctl, devices/blockq/control.ts), its host
// package (devices/blockq/c/packages.yaml: the INF pnputil installs, the provider logman
// captures), its Linux guest package (devices/blockq/vm-templates/ubuntu-2404-blockq.yaml)
// and its command language, on a real pwsh with the Hyper-V stand-in and a real sshd.
//
// The host side is PowerShell through the one quoting function, run by the real engine:
// the stand-in's `handle-broker` (the lab/SETUP.md contract) has blockq's VSP offer each
// channel with a handle through `blockq-ctl`, and the stand-in's `blockq-ctl` passes each
// call, arguments as the program got them, to the C VSP on the emulator (support/c-vm.ts)
// over HTTP (support/vm-job-harness.ts). Each Hyper-V operation (Save-VM, Start-VM,
// Checkpoint-VM) runs on the stand-in and on the C VM.
//
// The guest side goes over SSH as a lab's does (lab-guest.ts): each control line is
// written to the driver's control file and its counters and trace files are read with
// `cat`, in a folder standing for /sys/kernel/debug/vmbus_blockq_guest. What the control
// file got is what the C guest module runs; the files show the module's own counters and
// trace before each read. Its VMBus devices are read and unbound and bound the same way,
// in a folder standing for /sys/bus/vmbus (blockqControl.guestUnbind names the driver,
// vmbus_blockq_guest), which shows the C VM's devices: the guest-close scenario runs so.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockqControl } from '../../../devices/blockq/control.ts';
import { BlockqCVsp } from '../../../devices/blockq/c/vsp.ts';
import { BLOCKQ_IOCTL, blockqGuestLinuxRecipe } from '../../../devices/blockq/c/recipe.ts';
import { loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { deployVsp } from '../../../src/lab/deploy-vsp.ts';
import type { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import { loadTemplate } from '../../../src/lab/template.ts';
import { vmStepNotApplicable } from '../../../src/lab/vm-steps.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { labGuestControl } from '../../../src/run/real/lab-guest.ts';
import { runRealJob, type GuestControl, type GuestDevices } from '../../../src/run/real/real-job.ts';
import { vmJobLab } from '../../../src/run/real/vm-job-lab.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { PARENT, SWITCH, VM_ROOT } from '../../lab/host/standin.ts';
import { sshdUnavailable } from '../../lab/support/sshd.ts';
import { cVmJob, type CVmDevice, type CVmJob } from './support/c-vm.ts';
import { stillWhileBusy, TeeHyperV, toolchain, useStandinLab } from './support/vm-job-harness.ts';

const PACKAGES = loadHostDrivers('devices/blockq/c/packages.yaml');
const INF = `${PACKAGES.vsp.files}\\vmbus_blockq_vsp.inf`;
const BLOCKQ: CVmDevice = { vsp: (o) => new BlockqCVsp(o), countersIoctl: BLOCKQ_IOCTL.counters, guestRecipe: blockqGuestLinuxRecipe(), control: blockqControl };

/**
 * blockq's guest package and control file as a lab uses them over SSH, in `dir` (standing
 * for the module's debugfs folder): each line written to `control` is handed to the C
 * guest and recorded in `writes`; `counters` and `trace` are the C guest's before each read.
 */
async function guestOverSsh(ssh: GuestSsh, c: () => CVmJob, hv: TeeHyperV, dir: string, writes: string[], channels: readonly number[]): Promise<GuestControl> {
  const t = await loadTemplate('devices/blockq/vm-templates/ubuntu-2404-blockq.yaml');
  if (t.guest.driver.trace.format !== 'jsonl') throw new Error('blockq\'s guest trace is jsonl');
  // The template's own package, its debugfs files moved into `dir` (no root needed there).
  const file = (name: string) => join(dir, name);
  const driver = { ...t.guest.driver, sudo: false, trace: { ...t.guest.driver.trace, path: file('trace'), counters: file('counters') } };
  expect(t.guest.driver.trace).toMatchObject({ path: '/sys/kernel/debug/vmbus_blockq_guest/trace', counters: '/sys/kernel/debug/vmbus_blockq_guest/counters' });
  expect(blockqControl.linuxGuest?.controlFile).toBe('/sys/kernel/debug/vmbus_blockq_guest/control');
  const control = { ...blockqControl, linuxGuest: { controlFile: file('control') } };
  // The guest's VMBus devices (blockqControl.guestUnbind: the job waits for each offered
  // channel's device to be bound, and a guest-close unbinds it) in a folder standing for
  // /sys/bus/vmbus, made to show the C VM's devices before each read; what the job writes
  // into it is read back and handed to the C VM's core (as vm-job-lab.test.ts does).
  const sysfs = join(dir, 'vmbus');
  const drv = join(sysfs, 'drivers', blockqControl.guestUnbind!.linuxDriver!);
  mkdirSync(drv, { recursive: true });
  mkdirSync(join(sysfs, 'devices'));
  const overSsh = labGuestControl({ os: 'linux', ssh }, { ...t, guest: { ...t.guest, driver } }, control, { vmbusSysfs: sysfs });
  const sysfsDevices = overSsh.devices!;
  const written = (f: string): string => {
    const v = readFileSync(f, 'utf8');
    rmSync(f);
    return v;
  };
  const devices: GuestDevices = {
    state: async (instance) => {
      const core = c().lab.guest.devices!;
      for (const ch of channels) {
        const i = blockqControl.channelInstance(ch);
        const dev = join(sysfs, 'devices', i.toLowerCase());
        const st = await core.state(i);
        rmSync(dev, { recursive: true, force: true });
        if (st !== 'absent') mkdirSync(dev);
        if (st === 'bound') writeFileSync(join(dev, 'driver'), '');
      }
      return sysfsDevices.state(instance);
    },
    unbind: async (instance) => {
      await sysfsDevices.unbind(instance);
      const v = written(join(drv, 'unbind'));
      expect(v).toBe(instance.toLowerCase());
      await c().lab.guest.devices!.unbind(instance);
    },
    bind: async (instance) => {
      await sysfsDevices.bind(instance);
      const v = written(join(drv, 'bind'));
      expect(v).toBe(instance.toLowerCase());
      await c().lab.guest.devices!.bind(instance);
    },
    autoBind: async (on) => {
      await sysfsDevices.autoBind(on);
      const v = written(join(sysfs, 'drivers_autoprobe'));
      expect(v).toBe(on ? '1' : '0');
      await c().lab.guest.devices!.autoBind(on);
    },
  };
  return {
    command: async (line) => {
      await overSsh.command(line);
      const got = readFileSync(file('control'), 'utf8');
      rmSync(file('control'));
      writes.push(got);
      await c().lab.guest.command(got);
    },
    traceSeq: async () => {
      writeFileSync(file('counters'), c().guestFile('counters'));
      return overSsh.traceSeq();
    },
    readTrace: async () => {
      writeFileSync(file('trace'), c().guestFile('trace'));
      return overSsh.readTrace();
    },
    // Real time passes while SSH connects again: the C VM's clock waits, as for a Hyper-V operation.
    reconnect: () => hv.busyWith(() => overSsh.reconnect()),
    devices,
  };
}

const sshReason = sshdUnavailable();

describe.skipIf(!pwsh || !toolchain || sshReason)(`blockq's VM jobs through blockq-ctl on the stand-in ${pwshLabel}, its guest driven over sshd`, { timeout: 600_000 }, () => {
  let c: CVmJob;
  const standin = useStandinLab('hv-bq', [INF], () => c);
  const { calls, tools } = standin;

  it('before blockq\'s VSP package is installed, blockq-ctl cannot reach it: exit 3, naming its INF', async () => {
    const hv = new TeeHyperV(standin.host.ctx);
    await standin.host.setup('Set-StandinSampleDrivers', { Bridge: standin.url, Tool: 'blockq-ctl' });
    const { runNative } = await import('../../../src/lab/deploy-vsp.ts');
    const r = await runNative(hv, 'blockq-ctl', ['vsp', 'counters']);
    expect(r.exitCode).toBe(3);
    expect(r.output.join(' ')).toContain('is vmbus_blockq_vsp.inf installed?');
    expect(tools).toEqual([]); // nothing reached the drivers
    // A tool the stand-in does not know is refused by name, not taken for the sample's.
    await expect(standin.host.setup('Set-StandinSampleDrivers', { Bridge: standin.url, Tool: 'nope-ctl' })).rejects.toThrow(/no control tool nope-ctl in the stand-in/);
  });

  for (const file of ['devices/blockq/scenarios/01-save-restore.yaml', 'devices/blockq/scenarios/03-checkpoint.yaml', 'devices/blockq/scenarios/05-guest-close-and-reopen.yaml']) {
    it(`${file}: the broker offers each channel through blockq-ctl, traffic goes in blockq's language both ways, and the merged trace passes bench check`, async () => {
      const s = await loadScenarioFile(file);
      expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
      const hv = new TeeHyperV(standin.host.ctx);
      await deployVsp(hv, INF);
      await standin.host.setup('Set-StandinSampleDrivers', { Bridge: standin.url, Tool: 'blockq-ctl' });
      calls.length = 0;
      tools.length = 0;
      const vm = await hv.provision({
        name: `bench-${s.name}`, runId: 'bq', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 2048,
        processors: 2, secureBoot: { enabled: false }, integrationServices: ['Heartbeat'], waitForGuest: false,
      });
      c = cVmJob(s, 'hv-bq', BLOCKQ);
      hv.c = c.lab.hosts['hv-bq']!;
      const writes: string[] = [];
      const work = mkdtempSync(join(tmpdir(), 'vm-job-lab-bq-'));
      const clock = stillWhileBusy(c.clock, hv);
      const lab = vmJobLab({
        hosts: new Map([['hv-bq', { vmRoot: VM_ROOT, handleBroker: { command: 'handle-broker', args: [] } }]]),
        hv: () => hv,
        tool: { hv, host: 'hv-bq', control: blockqControl, program: 'blockq-ctl', clock, workDir: work, session: 'bench-bq', vspProvider: (PACKAGES.vsp.trace as { provider: string }).provider },
        vm: { id: vm.id, name: vm.name, host: 'hv-bq' }, jobHosts: ['hv-bq'],
        guest: await guestOverSsh(standin.ssh, () => c, hv, mkdtempSync(join(tmpdir(), "vmbus_blockq_guest 'debugfs' ")), writes, s.channels.map((x) => x.id)), clock, openTimeoutMs: 30_000,
      });
      const dir = mkdtempSync(join(tmpdir(), 'vm-job-lab-bq-out-'));
      const out = await runRealJob({ scenario: s, seed: 1, hostMap: { [s.host]: 'hv-bq' } }, lab, dir, new AbortController().signal, { opTimeoutMs: 60_000, settleQuietMs: 2_000, settleTimeoutMs: 120_000 });
      expect(out, JSON.stringify(out).slice(0, 600)).toMatchObject({ kind: 'ran' });
      if (out.kind !== 'ran') return;
      const r = await checkTraces(s, out.traces, { minimise: false });
      expect(r.result, JSON.stringify(r.result).slice(0, 600)).toMatchObject({ verdict: 'pass' });

      // Every call reached the drivers through blockq-ctl, each command line one argument.
      expect(new Set(tools.map((t) => t.tool))).toEqual(new Set(['blockq-ctl']));
      expect(calls.filter((a) => a[1] === 'command').every((a) => a.length === 3 && a[0] === 'vsp')).toBe(true);
      expect(calls.at(-1)).toEqual(['etl2jsonl', `${work}\\vsp.etl`, `${work}\\vsp.etl.jsonl`]);
      // The broker offered each channel into the VM by its handle, in blockq's open, through blockq-ctl.
      const log = ((await standin.host.state()) as unknown as { SampleDriversLog: string[] }).SampleDriversLog;
      const g = (ch: number) => blockqControl.channelInstance(ch);
      const offers = s.channels.flatMap((ch) => [
        `handle-broker -VmId ${vm.id} -Channel ${ch.id} -InstanceId ${g(ch.id)} -RingPages ${ch.h2gPages}`,
        `vsp command open ${ch.id} ${g(ch.id)} handle=${0x400 + 4 * ch.id} ring-pages=${ch.h2gPages}`,
      ]);
      expect(log.filter((l) => /^(handle-broker|vsp command open)/.test(l))).toEqual(offers);
      // blockq's Events went to its VSP through the tool; its Requests to the guest over SSH.
      expect(log.some((l) => /^vsp command event \d+ \d+ \d+ ch=\d+$/.test(l)), log.join('\n')).toBe(true);
      expect(writes.length).toBeGreaterThan(0);
      expect(writes.every((w) => /^(request \d+ \d+ [012] \d+|note \d+ \d+) ch=\d+$/.test(w)), writes.join('\n')).toBe(true);
      const core = /^guest: (unbind|bind|drivers_autoprobe) /;
      expect(c.log.filter((l) => l.startsWith('guest: ') && !core.test(l))).toEqual(writes.map((w) => `guest: ${w}`));
      // A guest-close unbound the device from vmbus_blockq_guest through the guest's sysfs, and guest-open bound it again.
      const closed = s.steps.flatMap((st) => (st.op === 'guest-close' || st.op === 'guest-open' ? [`guest: ${st.op === 'guest-close' ? 'unbind' : 'bind'} ${blockqControl.channelInstance(st.channel)}`] : []));
      expect(c.log.filter((l) => core.test(l))).toEqual(closed);
      // Each Hyper-V operation ran on the stand-in too: the VM ends Running.
      expect((await hv.getVm(vm.id))?.state).toBe('Running');
      await hv.turnOff(vm.id).catch(() => undefined);
    });
  }
});
