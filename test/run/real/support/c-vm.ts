// A VM job's drivers as the real C code: a device's C VSP on each host and its Linux
// guest driver in the VM (the sample's lab/drivers by default, or blockq's), compiled
// to WebAssembly, driven by real-job.ts through their control interfaces exactly as a
// lab job drives them: the VSP's commands and
// counters (its trace_seq marks the bench's events), the guest's debugfs `control`,
// `counters` and `trace` files (deploy-guest.ts reads the same three over SSH). The
// traces are collected and merged by real-job.ts's own code.
//
// What stands in for Hyper-V: the VM (guest memory and the guest driver, saved whole as
// the emulator's VM save saves them: the module's memory and the shim's tables), the
// operations (Save-VM = `save` and the export of each channel's state, then `detach`;
// Start-VM = import, `restore` of every channel, the guest revived, `resume` of every
// channel; Suspend-VM = the guest stops running; Checkpoint-VM = `save` then `resume`,
// the copy kept), the rings (guest memory) and time: a virtual clock that real-job's
// sleeps advance, firing the VSP's timers and the guest's delayed work. Deliveries happen
// only as time passes.
//
// Restore-VMSnapshot discards the running VM (`discard` of every channel) and leaves the
// checkpoint's copy Saved, for Start-VM.
//
// The guest's VMBus core, as Linux's does it (vmbus_drv.c, channel_mgmt.c): a channel the
// VSP stops offering (its `rescind`) has its device removed, which runs the driver's
// remove; a new offer is probed, unless the bus's drivers_autoprobe is 0, when the device
// stays unbound until a `bind`. An offer is an offer whoever asked the VSP for it: its
// `open` sent as a command (a lab's handle broker, through the control tool) reaches the
// guest's core as JobLab.offer's does. The guest OS's unbind of a device runs the driver's remove,
// whose close reaches the host's KMCL as the partition's close (Channel.peerClosed, then
// retireOutstanding: the VSP's Closed callback and what KMCL hands back), and a bind its
// probe on fresh rings. These are real-job's GuestDevices (the sysfs files a Linux lab
// guest writes, src/run/real/lab-guest.ts).
//
// Not here: a migration (a lab job collects the VSP trace of the host the VM started on
// only).
import { CGuestLinux } from '../../../../src/devices/wasm/c-guest-linux.ts';
import { guestLinuxRecipe } from '../../../../devices/sample/c/recipes.ts';
import { CVsp } from '../../../../devices/sample/c/vsp.ts';
import type { WindowsDriverOptions } from '../../../../src/devices/wasm/windows-driver.ts';
import type { DriverRecipe } from '../../../../src/devices/wasm/build.ts';
import type { DeviceControl } from '../../../../src/device-api/device-module.ts';
import type { Clock } from '../../../../src/run/engine/job-pipeline.ts';
import { sampleControl } from '../../../../devices/sample/control.ts';
import { SAMPLE_IOCTL } from '../../../../devices/sample/c/control.ts';
import type { DriverControl, GuestControl, GuestDevices, JobLab, VmOps } from '../../../../src/run/real/real-job.ts';
import type { Scenario } from '../../../../src/scenario/model.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import type { Channel } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { stepSide } from '../../../vmbus/support/channel-pair.ts';
import { traceJsonl, virtualClock } from './virtual-time.ts';
import { ControlWriteAgain } from '../../../../src/lab/guest/control-write.ts';

/** Linux's EAGAIN (the guest driver's control write after a send given up). */
const EAGAIN = 11;

interface SavedVm {
  vsp: Uint8Array[];
  guest: ReturnType<CGuestLinux['image']>;
  memory: Uint8Array;
}

export interface CVmJob {
  lab: JobLab;
  clock: Clock;
  /** every command and operation, in order */
  log: string[];
  /** the guest driver's debugfs `counters` or `trace` file as it reads now (what a lab reads over SSH) */
  guestFile(name: 'counters' | 'trace'): string;
}

/**
 * A device's C drivers for the job: its VSP (loaded on the emulated host), the IOCTL
 * that prints its counters, its Linux guest module's recipe and its control. The
 * sample's by default; blockq's in c-vm-job.test.ts.
 */
export interface CVmDevice {
  vsp(o: WindowsDriverOptions): Pick<CVsp, 'run' | 'offered' | 'exportState' | 'importState' | 'nextTimerDue' | 'runTimers' | 'runWorkItems' | 'wdf'>;
  countersIoctl: number;
  guestRecipe: DriverRecipe;
  control: DeviceControl;
}

const SAMPLE: CVmDevice = { vsp: (o) => new CVsp(o), countersIoctl: SAMPLE_IOCTL.counters, guestRecipe: guestLinuxRecipe(), control: sampleControl };

/** One lab host, `host`, runs the VM. */
export function cVmJob(s: Scenario, host: string, device: CVmDevice = SAMPLE): CVmJob {
  const { control } = device;
  const t = { now: 0 };
  const choices = { ...DEFAULT_CHOICES };
  const chs = s.channels.map((c) => c.id);
  const layout = s.channels.map((c) => ({ ch: c.id, g2hPages: c.g2hPages, h2gPages: c.h2gPages }));
  const mem = new GuestMemory(layout);
  const log: string[] = [];
  // The VSP's TraceLogging events, as its ETW capture holds them.
  const vspSink = new MemorySink();
  const theVsp = device.vsp({ choices, sink: vspSink, now: () => t.now });
  const guestOpts = { recipe: device.guestRecipe, now: () => t.now };
  let guest = new CGuestLinux(guestOpts);
  /** the VM runs (not saved, not paused) */
  let running = true;
  let saved: SavedVm | null = null;
  const checkpoints = new Map<string, SavedVm>();
  const servers = new Map<number, Channel>();
  /** offered and present in the guest, not bound to its driver (the guest closed it, or autoprobe held it) */
  const unbound = new Set<number>();
  /** the guest bus's drivers_autoprobe */
  let autoprobe = true;

  const vsp = () => theVsp;
  const doorbell = (ch: number) => (w: 'interrupt' | 'writable') => {
    const sv = servers.get(ch);
    if (!sv) return;
    if (w === 'interrupt') sv.interrupt = true;
    else sv.writable = true;
  };
  /** Connects what the VSP of this host offers now to the VM's rings. */
  const connect = (restored: boolean): void => {
    for (const ch of chs) {
      const offered = vsp().offered(ch);
      if (!offered || offered === servers.get(ch) || unbound.has(ch)) continue;
      servers.set(ch, offered);
      const quota = s.channels.find((c) => c.id === ch)!.quota;
      if (quota) offered.setTransactionQuota(quota);
      offered.signalPeer = (w) => (w === 'interrupt' ? guest.signal(ch) : undefined);
      const hr = mem.hostRings(ch);
      offered.connectionOpened(hr.out, hr.in, { restored });
    }
  };
  /** Runs what is ready until nothing is; true when anything ran. */
  const pump = (): boolean => {
    for (let n = 0; ; n++) {
      if (n > 1_000_000) throw new Error('the C VM did not settle');
      let did = false;
      for (const ch of chs) {
        const sv = servers.get(ch);
        if (sv && vsp().offered(ch) === sv && stepSide(sv)) did = true;
      }
      if (!did && running) did = guest.runInterrupt();
      if (!did) did = vsp().runWorkItems() > 0;
      if (!did) return n > 0;
    }
  };
  const bind = (): void => {
    for (const ch of chs) guest.bind(ch, mem.guestRings(ch), doorbell(ch));
  };
  // The guest's thread sleeps on a full ring: the host runs meanwhile. With nothing ready
  // the sleep's time passes (at least a jiffy, as execute.ts's runHostTask), firing the
  // VSP's timers, so held requests come due and the driver's own send timeout can pass:
  // time moves inside a guest command only while its thread sleeps.
  const onSleep = (us: number): void => {
    if (pump()) return;
    t.now += Math.max(1, Math.ceil(us / 1000));
    // The kernel's jiffies runs on while a thread sleeps (the shim sets it only on entry).
    guest.rt.mem.setU32(guest.jiffiesAt, Math.floor(t.now));
    const due = vsp().nextTimerDue();
    if (due !== null && due <= t.now) vsp().runTimers(t.now);
  };
  guest.linux.onSleep = onSleep;

  // The VSP's channel operations in the device's own words (DeviceControl.channel), as a loopback job sends them.
  const each = (op: 'save' | 'detach' | 'restore' | 'resume' | 'discard') => {
    for (const ch of chs) {
      const line = control.channel({ op, ch });
      log.push(`vsp: ${line}`);
      vsp().run(line);
    }
  };
  const saveVm = (keepRunning: boolean): SavedVm => {
    each('save');
    const states = chs.map((ch) => vsp().exportState(ch));
    const img: SavedVm = { vsp: states, guest: guest.image(), memory: mem.image() };
    if (keepRunning) each('resume');
    else each('detach');
    return img;
  };
  const startVm = (img: SavedVm): void => {
    img.vsp.forEach((st) => {
      const r = vsp().importState(st);
      if (r !== 0) throw new Error(`import refused: 0x${(r >>> 0).toString(16)}`);
    });
    each('restore');
    mem.overwrite(img.memory);
    guest = new CGuestLinux(guestOpts, img.guest);
    guest.linux.onSleep = onSleep;
    bind();
    servers.clear();
    running = true;
    // Each channel offered and, the guest having it open, connected before the next (as
    // the emulator attaches a restored VM's channels one by one).
    for (const ch of chs) {
      const line = control.channel({ op: 'resume', ch });
      log.push(`vsp: ${line}`);
      vsp().run(line);
      connect(true);
    }
  };

  const ops = (host: string): VmOps => ({
    host,
    save: async () => {
      log.push(`${host}: save`);
      saved = saveVm(false);
      running = false;
    },
    start: async () => {
      log.push(`${host}: start`);
      startVm(saved!);
      saved = null;
    },
    suspend: async () => {
      log.push(`${host}: suspend`);
      running = false;
    },
    resume: async () => {
      log.push(`${host}: resume`);
      running = true;
    },
    checkpoint: async (_id, name) => {
      log.push(`${host}: checkpoint ${name}`);
      checkpoints.set(name, saveVm(true));
    },
    // The VM as it runs is discarded (the VSP's `discard`), and the checkpoint's copy is
    // what the next Start-VM restores: Hyper-V leaves a running VM's checkpoint Saved.
    restoreCheckpoint: async (_id, name) => {
      log.push(`${host}: apply ${name}`);
      if (running || saved === null) each('discard');
      saved = checkpoints.get(name)!;
      running = false;
      return { state: 'Saved' };
    },
    turnOff: async () => {
      log.push(`${host}: turn-off`);
      running = false;
    },
  });

  // The counters as a lab job reads them (DeviceControl.counters): trace_seq marks the bench's events.
  const seqOf = (who: 'vsp' | 'guest', text: string) => {
    const seq = control.counters(who, text.split('\n')).traceSeq;
    if (seq === undefined) throw new Error(`the ${who}'s counters have no trace_seq`);
    return seq;
  };
  /** Channel `ch`'s new connection: fresh rings (the guest gives new ring memory), the driver's probe, the host side opened on them. */
  const probe = (ch: number): void => {
    mem.g2h(ch).initialize();
    mem.h2g(ch).initialize();
    const r = guest.offer(ch, control.channelInstance(ch), mem.guestRings(ch), doorbell(ch));
    if (r !== 0) throw new Error(`probe of channel ${ch} failed with ${r}`);
    unbound.delete(ch);
    servers.delete(ch);
    connect(false);
  };
  const chOf = (instance: string): number => {
    const ch = chs.find((c) => control.channelInstance(c) === instance);
    if (ch === undefined) throw new Error(`no channel has instance ${instance}`);
    return ch;
  };
  const devices: GuestDevices = {
    state: async (instance) => {
      const ch = chOf(instance);
      return guest.hasDevice(ch) ? 'bound' : unbound.has(ch) ? 'unbound' : 'absent';
    },
    unbind: async (instance) => {
      const ch = chOf(instance);
      log.push(`guest: unbind ${instance}`);
      if (!guest.remove(ch)) throw new Error(`unbind: channel ${ch} has no bound device`);
      const sv = servers.get(ch)!;
      sv.peerClosed();
      sv.retireOutstanding();
      servers.delete(ch);
      unbound.add(ch);
      pump();
    },
    bind: async (instance) => {
      const ch = chOf(instance);
      log.push(`guest: bind ${instance}`);
      if (!unbound.has(ch)) throw new Error(`bind: channel ${ch} has no unbound device`);
      probe(ch);
    },
    autoBind: async (on) => {
      log.push(`guest: drivers_autoprobe ${on ? 1 : 0}`);
      autoprobe = on;
    },
  };
  /** The guest's VMBus core sees a new offer of channel `ch`: it probes the driver for it, unless the bus leaves new devices unbound. */
  const newOffer = (ch: number): void => {
    if (autoprobe) probe(ch);
    else unbound.add(ch);
  };
  const vspControl: DriverControl = {
    command: async (text) => {
      log.push(`vsp: ${text}`);
      const before = chs.map((ch) => vsp().offered(ch));
      vsp().run(text);
      // A channel no longer offered (a rescind) goes from the guest: the core removes its device.
      for (const ch of chs) {
        if (vsp().offered(ch)) continue;
        if (guest.hasDevice(ch)) guest.remove(ch);
        unbound.delete(ch);
      }
      // An offer the VSP made (its `open`, from a lab's handle broker) reaches the guest's core.
      chs.forEach((ch, i) => {
        const now = vsp().offered(ch);
        if (now && now !== before[i] && !guest.hasDevice(ch) && !unbound.has(ch)) newOffer(ch);
      });
      connect(false);
    },
    // The counters IOCTL's text (IOCTL_SAMPLE_COUNTERS's as `sample-ctl vsp counters` prints it).
    traceSeq: async () => seqOf('vsp', new TextDecoder().decode(vsp().wdf.ioctl(device.countersIoctl, new Uint8Array(0), 16384).output)),
    readTrace: async () => traceJsonl(vspSink.events as unknown as Array<Record<string, unknown>>),
  };
  const guestControl: GuestControl = {
    command: async (text) => {
      log.push(`guest: ${text}`);
      const r = guest.control(text);
      // The debugfs write fails with the driver's errno; EAGAIN is a send given up (as lab-guest.ts's write reports it).
      if (r === -EAGAIN) throw new ControlWriteAgain(`the guest driver refused '${text}' with EAGAIN`, {});
      if (r < 0) throw new Error(`the guest refused '${text}' with errno ${-r}`);
    },
    traceSeq: async () => seqOf('guest', guest.read('counters')),
    readTrace: async () => guest.read('trace'),
    reconnect: async () => undefined,
  };
  const clock = virtualClock(t, {
    pump,
    dues: () => [vsp().nextTimerDue(), running ? guest.nextWorkDue() : null],
    fire: (now) => {
      vsp().runTimers(now);
      if (running) guest.runWork(now);
    },
  });
  const lab: JobLab = {
    vmId: 'c-vm',
    hosts: { [host]: ops(host) },
    migrate: async () => {
      throw new Error('a migration is not modelled here (see the file header)');
    },
    guest: { ...guestControl, devices },
    vsp: vspControl,
    // A rescinded channel's new instance, as the VSP's `open` of it (same GUID) and the guest's core finds it.
    offer: async (c) => {
      const line = control.channel({ op: 'open', ch: c.id, instance: control.channelInstance(c.id), ringPages: c.h2gPages, loopback: true });
      log.push(`vsp: ${line}`);
      vsp().run(line);
      newOffer(c.id);
    },
    prepare: async (sc: Scenario) => {
      // One channel after the other, as the emulator opens them: offered, connected to the
      // VM's rings, and the guest driver probed for it by the VMBus core.
      for (const c of sc.channels) {
        // (A loopback offer: no VM handle here; the partition connects it to the VM's rings.)
        const line = control.channel({ op: 'open', ch: c.id, instance: control.channelInstance(c.id), ringPages: c.h2gPages, loopback: true });
        log.push(`vsp: ${line}`);
        vsp().run(line);
        // The VMBus core probes the guest driver for the offer, which opens the channel,
        // before the next is offered: a lab's prepare waits for each channel's device to
        // be bound (lab-real-side.ts), as the emulator opens each channel as it offers it.
        const r = guest.offer(c.id, control.channelInstance(c.id), mem.guestRings(c.id), doorbell(c.id));
        if (r !== 0) throw new Error(`probe of channel ${c.id} failed with ${r}`);
        connect(false);
      }
    },
    clock,
  };
  return { lab, clock, log, guestFile: (name) => guest.read(name) };
}
