// A VM job's lab (attach vm-handle, src/lab/attach.ts) on real hosts: real-job.ts's JobLab
// from the src/lab classes. LabRealSide builds it for each VM job with the VM's guest
// (lab-guest.ts); test/run/real/vm-job-lab.test.ts builds it with the C drivers behind
// the stand-in hosts' tools, so every PowerShell command it sends runs on a real pwsh.
//
//   hosts      each lab host's Hyper-V operations on the VM (Save-VM, Start-VM, ...)
//   migrate    Move-VM to the destination host's VM folder (lab/migration.ts)
//   vsp        the VSP through the device's control tool on the host, its trace an ETW
//              capture the tool converts (loopback-lab.ts, toolVsp)
//   offer      the host's handle broker, run on the host with the VM id, the channel, its
//              instance GUID and ring pages (attach.ts, HandleBroker; lab/SETUP.md
//              "Handle broker"): the broker holds the VM's VMBus handle and asks the VSP
//              to offer the channel into the VM from its own process. A rescinded
//              channel's new instance is offered the same way, with the same GUID.
//   prepare    the capture started, then each channel offered and, where the guest can
//              say (GuestControl.devices), bound by the guest before the next is offered:
//              the emulator opens each channel as it offers it, and a trace with every
//              offer before the first open is another order (state-order).

import { InfraError } from '../../errors.ts';
import type { HyperV } from '../../lab/hyperv.ts';
import type { LabHost } from '../../lab/inventory.ts';
import { migrate } from '../../lab/migration.ts';
import { runNative } from '../../lab/deploy-vsp.ts';
import type { ChannelSpec, Scenario } from '../../scenario/model.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import { toolVsp, type LoopbackLabOptions } from './loopback-lab.ts';
import type { GuestControl, GuestDevices, JobLab, VmOps } from './real-job.ts';

export interface VmJobLabOptions {
  /** the lab's hosts, by name: their handle broker and VM folder */
  hosts: ReadonlyMap<string, Pick<LabHost, 'handleBroker' | 'vmRoot'>>;
  /** an opened Hyper-V handle per host */
  hv: (host: string) => HyperV;
  /** the device's control tool, trace capture and work folder on the VM's host */
  tool: LoopbackLabOptions;
  /** the VM: its id, its name (its folder under each host's vmRoot), the host it runs on */
  vm: { id: string; name: string; host: string };
  /** the lab hosts the job uses (the VM's and its migration destinations) */
  jobHosts: readonly string[];
  /** the VM's guest driver and, where the OS can, its devices */
  guest: GuestControl;
  clock: Clock;
  /** how long the guest may take to open a channel after its offer */
  openTimeoutMs: number;
}

/** Waits for the guest to bind a channel instance's device (its probe opened the channel). */
async function waitBound(d: GuestDevices, instance: string, clock: Clock, timeoutMs: number): Promise<void> {
  const until = clock.now() + timeoutMs;
  for (;;) {
    const state = await d.state(instance);
    if (state === 'bound') return;
    if (clock.now() >= until) throw new InfraError(`the guest did not open channel instance ${instance} within ${Math.round(timeoutMs / 1000)} s of its offer (its device is ${state})`);
    await clock.sleep(250);
  }
}

export function vmJobLab(o: VmJobLabOptions): JobLab {
  const { vm, guest, tool } = o;
  const { control } = tool;
  const ops = (name: string): VmOps => {
    const hv = o.hv(name);
    return {
      host: name,
      save: (id) => hv.save(id), start: (id) => hv.start(id), suspend: (id) => hv.suspend(id), resume: (id) => hv.resume(id),
      checkpoint: (id, n) => hv.checkpoint(id, n), restoreCheckpoint: (id, n) => hv.restoreCheckpoint(id, n), turnOff: (id) => hv.turnOff(id),
    };
  };
  // The VSP through the control tool, as a loopback job's: its counters' trace seq marks
  // the bench's events, and readTrace stops the ETW capture and converts it.
  const drivers = toolVsp(tool);
  const hostHv = o.hv(vm.host);
  const offer = async (c: ChannelSpec): Promise<void> => {
    const broker = o.hosts.get(vm.host)?.handleBroker;
    if (!broker) throw new InfraError(`${vm.host} has no handleBroker, so the VSP cannot reach VM ${vm.id} (attach vm-handle)`, { host: vm.host });
    // Every value goes to the host as a quoted literal (runNative: the one quoting function).
    const x = await runNative(hostHv, broker.command, [...broker.args, '-VmId', vm.id, '-Channel', String(c.id), '-InstanceId', control.channelInstance(c.id), '-RingPages', String(c.h2gPages)]);
    if (x.exitCode !== 0) throw new InfraError(`the handle broker ${broker.command} could not offer channel ${c.id} into VM ${vm.id} (exit ${x.exitCode}): ${x.output.slice(-2).join(' ')}`, { host: vm.host });
  };
  return {
    vmId: vm.id,
    hosts: Object.fromEntries(o.jobHosts.map((h) => [h, ops(h)])),
    migrate: async (from, to, id) => {
      const dst = o.hosts.get(to.host)!;
      await migrate(o.hv(from.host), o.hv(to.host), id, { destinationStoragePath: `${dst.vmRoot}\\${vm.name}` });
    },
    guest,
    vsp: drivers.vsp,
    prepare: async (s: Scenario) => {
      // The VSP's ETW capture runs for the whole job; `readTrace` stops and converts it.
      await drivers.startCapture();
      for (const c of s.channels) {
        await offer(c);
        if (guest.devices) await waitBound(guest.devices, control.channelInstance(c.id), o.clock, o.openTimeoutMs);
      }
    },
    offer,
    clock: o.clock,
  };
}
