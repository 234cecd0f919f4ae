// A VM job's lab (src/run/real/vm-job-lab.ts) on a real pwsh with the Hyper-V stand-in,
// running 12-rescind-and-guest-reopen as written: every command the job sends the host
// is PowerShell through the one quoting function, run by the real engine. The host's
// tools are the stand-in's (test/lab/standin/HyperVStandin/ControlTools.ps1): its
// `handle-broker` (the lab/SETUP.md contract, argv as a lab's program gets them) asks Get-VM
// for the VM and has the VSP offer the channel with a handle; its `sample-ctl` passes each
// call (arguments as the program received them) to the drivers behind it, here the C VSP
// and C Linux guest driver on the emulator (support/c-vm.ts), over HTTP. Each Hyper-V
// operation runs on the stand-in (its VM state machine) and on the C VM.
//
// The guest OS's side goes over a real sshd: the job's sysfs writes (unbind, bind,
// drivers_autoprobe, by lab-guest.ts) land in a folder laid out as /sys/bus/vmbus, and
// what was written there is what the C VM's core then does (its remove, its probe, its
// autoprobe); the folder shows the C VM's devices before each read the job makes.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleControl } from '../../../devices/sample/control.ts';
import { vmStepNotApplicable } from '../../../src/lab/vm-steps.ts';
import { deployVsp } from '../../../src/lab/deploy-vsp.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { vmJobLab } from '../../../src/run/real/vm-job-lab.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { PARENT, SWITCH, VM_ROOT } from '../../lab/host/standin.ts';
import { cVmJob, type CVmJob } from './support/c-vm.ts';
import { stillWhileBusy, TeeHyperV, toolchain, useStandinLab } from './support/vm-job-harness.ts';
import type { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import type { GuestDriverPackage } from '../../../src/lab/driver-package.ts';
import type { VmTemplate } from '../../../src/lab/template.ts';
import { labGuestControl } from '../../../src/run/real/lab-guest.ts';
import type { GuestDevices } from '../../../src/run/real/real-job.ts';
import { sshdUnavailable } from '../../lab/support/sshd.ts';

const VSP_INF = 'C:\\bench\\drivers\\vmbus_sample_vsp.inf';

/**
 * The guest's VMBus devices over SSH (lab-guest.ts, the sysfs files of a Linux guest) in
 * a folder standing for /sys/bus/vmbus, kept by this "kernel": each value the job writes
 * is read back from its file and handed to the C VM's core, and the folder is made to
 * show the C VM's devices (present; bound: a `driver` link) before each state read.
 */
function sysfsOverSsh(ssh: GuestSsh, c: CVmJob, channels: readonly number[], writes: string[]): GuestDevices {
  const root = mkdtempSync(join(tmpdir(), "vmbus 'sysfs' "));
  const drv = join(root, 'drivers', 'vmbus_sample_guest');
  mkdirSync(drv, { recursive: true });
  mkdirSync(join(root, 'devices'));
  const pkg = { files: root, include: undefined, remoteDir: root, install: '', uninstall: '', sudo: false, binary: undefined, installTimeoutMs: 60_000, trace: { format: 'jsonl', path: join(root, 'trace') } } as GuestDriverPackage;
  const overSsh = labGuestControl({ os: 'linux', ssh }, { guest: { os: 'linux', driver: pkg } } as unknown as VmTemplate, sampleControl, { vmbusSysfs: root }).devices!;
  const core = c.lab.guest.devices!;
  const instances = channels.map((ch) => sampleControl.channelInstance(ch));
  const written = (file: string): string => {
    const v = readFileSync(file, 'utf8');
    rmSync(file);
    writes.push(`${file.slice(root.length + 1)} ${v}`);
    return v;
  };
  const named = (name: string): string => {
    const i = instances.find((x) => x.toLowerCase() === name);
    if (!i) throw new Error(`no VMBus device is named ${name}`);
    return i;
  };
  return {
    state: async (instance) => {
      for (const i of instances) {
        const dev = join(root, 'devices', i.toLowerCase());
        const st = await core.state(i);
        rmSync(dev, { recursive: true, force: true });
        if (st !== 'absent') mkdirSync(dev);
        if (st === 'bound') writeFileSync(join(dev, 'driver'), '');
      }
      return overSsh.state(instance);
    },
    unbind: async (instance) => {
      await overSsh.unbind(instance);
      await core.unbind(named(written(join(drv, 'unbind'))));
    },
    bind: async (instance) => {
      await overSsh.bind(instance);
      await core.bind(named(written(join(drv, 'bind'))));
    },
    autoBind: async (on) => {
      await overSsh.autoBind(on);
      const v = written(join(root, 'drivers_autoprobe'));
      if (v !== '0' && v !== '1') throw new Error(`drivers_autoprobe takes 0 or 1, not ${JSON.stringify(v)}`);
      await core.autoBind(v === '1');
    },
  };
}

const sshReason = sshdUnavailable();

describe.skipIf(!pwsh || !toolchain || sshReason)(`a VM job's rescinds, broker offers and guest close/open on the stand-in ${pwshLabel}, the guest's sysfs over sshd`, { timeout: 600_000 }, () => {
  let c: CVmJob;
  const standin = useStandinLab('hv-a', [VSP_INF], () => c);
  const { calls } = standin;

  it('12-rescind-and-guest-reopen: the broker offers each channel and each new instance, the VSP gets its rescinds, and the merged trace passes bench check', async () => {
    const s = await loadScenarioFile('bench/scenarios/12-rescind-and-guest-reopen.yaml');
    expect(vmStepNotApplicable(s, 'linux')).toBeUndefined();
    const hv = new TeeHyperV(standin.host.ctx);
    await deployVsp(hv, VSP_INF);
    await standin.host.setup('Set-StandinSampleDrivers', { Bridge: standin.url });
    const vm = await hv.provision({
      name: 'bench-rescind', runId: 'vjl', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 2048,
      processors: 2, secureBoot: { enabled: false }, integrationServices: ['Heartbeat'], waitForGuest: false,
    });
    c = cVmJob(s, 'hv-a');
    hv.c = c.lab.hosts['hv-a']!;
    const writes: string[] = [];
    const work = mkdtempSync(join(tmpdir(), 'vm-job-lab-'));
    const clock = stillWhileBusy(c.clock, hv);
    const lab = vmJobLab({
      hosts: new Map([['hv-a', { vmRoot: VM_ROOT, handleBroker: { command: 'handle-broker', args: [] } }]]),
      hv: () => hv,
      tool: { hv, host: 'hv-a', control: sampleControl, program: 'sample-ctl', clock, workDir: work, session: 'bench-vjl', vspProvider: 'VmbusSampleVsp' },
      vm: { id: vm.id, name: vm.name, host: 'hv-a' }, jobHosts: ['hv-a'],
      guest: { ...c.lab.guest, devices: sysfsOverSsh(standin.ssh, c, s.channels.map((x) => x.id), writes) }, clock, openTimeoutMs: 30_000,
    });
    const dir = mkdtempSync(join(tmpdir(), 'vm-job-lab-out-'));
    const out = await runRealJob({ scenario: s, seed: 1, hostMap: { [s.host]: 'hv-a' } }, lab, dir, new AbortController().signal, { opTimeoutMs: 60_000, settleQuietMs: 2_000, settleTimeoutMs: 120_000 });
    expect(out, JSON.stringify(out).slice(0, 600)).toMatchObject({ kind: 'ran' });
    if (out.kind !== 'ran') return;
    const r = await checkTraces(s, out.traces, { minimise: false });
    expect(r.result, JSON.stringify(r.result).slice(0, 600)).toMatchObject({ verdict: 'pass' });

    // What the host's tools were run with, in order (the stand-in's log: argv as each got it).
    const g = (ch: number) => sampleControl.channelInstance(ch);
    const broker = (ch: number) => `handle-broker -VmId ${vm.id} -Channel ${ch} -InstanceId ${g(ch)} -RingPages 4`;
    const open = (ch: number) => `vsp command open ${ch} ${g(ch)} handle=${0x400 + 4 * ch} ring-pages=4`;
    const log = ((await standin.host.state()) as unknown as { SampleDriversLog: string[] }).SampleDriversLog;
    const channelOps = log.filter((l) => /^(handle-broker|vsp command (open|rescind|save|detach|restore|resume))/.test(l));
    // Save-VM and Start-VM go to Hyper-V, not to the tool: the C VM stands for what they do to the VSP.
    const cSave = [0, 1, 2].flatMap((ch) => [`vsp: save ch=${ch}`]);
    expect(c.log.filter((l) => l.startsWith('vsp: save ')), 'the C VM saved every channel at each Save-VM').toEqual([...cSave, ...cSave]);
    expect(channelOps).toEqual([
      broker(0), open(0), broker(1), open(1), broker(2), open(2), // prepare: each offered, bound, then the next
      'vsp command rescind ch=1', broker(1), open(1), // the first rescind: the new instance, through the broker
      'vsp command rescind ch=1', broker(1), open(1), // the second: offered and held unbound by the guest's bus
    ]);
    // Each Hyper-V operation ran on the stand-in: the VM ends Running, saved and started twice.
    expect((await hv.getVm(vm.id))?.state).toBe('Running');
    // The guest OS closed channel 2 and opened it again; it held channel 1's second new
    // instance until the guest-open: the sysfs writes over SSH, as the files got them.
    expect(writes).toEqual([
      `drivers/vmbus_sample_guest/unbind ${g(2)}`, `drivers/vmbus_sample_guest/bind ${g(2)}`,
      'drivers_autoprobe 0', `drivers/vmbus_sample_guest/bind ${g(1)}`, 'drivers_autoprobe 1',
    ]);
    expect(c.log.filter((l) => /^guest: (bind|unbind|drivers_autoprobe)/.test(l))).toEqual([
      `guest: unbind ${g(2)}`, `guest: bind ${g(2)}`, 'guest: drivers_autoprobe 0', `guest: bind ${g(1)}`, 'guest: drivers_autoprobe 1',
    ]);
    // Every call to sample-ctl reached the drivers with its arguments whole (a command line is one argument).
    expect(calls.filter((a) => a[1] === 'command').every((a) => a.length === 3)).toBe(true);
    expect(calls.at(-1)).toEqual(['etl2jsonl', `${work}\\vsp.etl`, `${work}\\vsp.etl.jsonl`]);
    // ch.rescind and ch.offer are in the host's file, where the VSP was when the job asked.
    const hostTrace = readFileSync(join(dir, 'host.trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ev: string });
    expect(hostTrace.filter((e) => e.ev === 'ch.rescind' || e.ev === 'ch.offer').map((e) => e.ev)).toEqual(['ch.rescind', 'ch.offer', 'ch.rescind', 'ch.offer']);
    await hv.turnOff(vm.id).catch(() => undefined);
  });

  it('a broker asked for a VM that is not running cannot get its handle: exit 3, the job\'s error names the broker and the VM', async () => {
    const s = await loadScenarioFile('bench/scenarios/12-rescind-and-guest-reopen.yaml');
    const hv = new TeeHyperV(standin.host.ctx);
    const vm = await hv.provision({
      name: 'bench-off', runId: 'vjl', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 2048,
      processors: 2, secureBoot: { enabled: false }, integrationServices: ['Heartbeat'], waitForGuest: false,
    });
    c = cVmJob(s, 'hv-a');
    hv.c = c.lab.hosts['hv-a']!;
    await hv.turnOff(vm.id);
    const lab = vmJobLab({
      hosts: new Map([['hv-a', { vmRoot: VM_ROOT, handleBroker: { command: 'handle-broker', args: [] } }]]),
      hv: () => hv,
      tool: { hv, host: 'hv-a', control: sampleControl, program: 'sample-ctl', clock: c.clock, workDir: mkdtempSync(join(tmpdir(), 'vm-job-lab-')), session: 'bench-vjl2', vspProvider: 'VmbusSampleVsp' },
      vm: { id: vm.id, name: vm.name, host: 'hv-a' }, jobHosts: ['hv-a'],
      guest: c.lab.guest, clock: c.clock, openTimeoutMs: 30_000,
    });
    await expect(lab.offer!(s.channels[0]!)).rejects.toThrow(new RegExp(`the handle broker handle-broker could not offer channel 0 into VM ${vm.id} \\(exit 3\\)`));
  });
});
