// The sample's C Windows guest driver (guest-windows.ts) as the guest of an emulated VM
// (`devices: c-windows`): the guest side the scenario executor drives, in place of the
// TypeScript twin (devices/sample/guest.ts).
//
// The bench drives it as a lab job drives the real driver through the control tool:
//  - each traffic step becomes a line of the drivers' command language, made by the
//    device module's own `control.command` (the one a lab job sends), sent with
//    IOCTL_SAMPLE_COMMAND; the lines of `control.begin` for the guest go first;
//  - the trace is the driver's own, read with IOCTL_SAMPLE_READ_TRACE after every entry
//    into the driver (from where the last read stopped) and written into the run's trace
//    in the order the driver wrote it;
//  - what is still in flight is read with IOCTL_SAMPLE_COUNTERS.
// VMBus's and KMCL's part is the emulator's: PnP binds the device's client channel to the
// channel's offer (its instance GUID, the Opened/Started/PostStarted callbacks), the client
// Channel (src/vmbus/channel.ts) reads and writes the rings in guest memory, and the
// scheduler runs its deliveries, its library queue and the driver's timer and work items.
//
// Guest memory: the state is the driver itself (linear memory, the WDF and KMCL shims'
// tables and client channel objects; CGuestWindows.image). A Windows guest sees no
// callback for a VM save or restore: a restore builds the driver again from the copy, in
// the instance of the guest it replaces (as the C Linux guest does), and binds its client
// channel to the restored rings (kmcl-client-image.ts bindClientRings).
// Time the VM spends saved does not pass for the guest, as for the twin (guest-image.ts).
// The state, the image's checks, the guest's clock and the trace drain are the C guest
// base's (src/device-api/c-guest-base.ts); what is here is how the driver is driven
// (IOCTLs, PnP's binding) and read (the trace from an offset the bench keeps).
//
// Channels: on Windows each VMBus channel offer is a PnP device of its own. The probe adds
// one device per channel (EvtDriverDeviceAdd, EvtDevicePrepareHardware: its client channel
// enabled) and binds its client to the offer; all are driven through the driver's one
// control device, each command naming its channel (`ch=N`). A rescind, or the guest's own
// close (`guest-close`, Disable-PnpDevice on a real guest), is PnP removing the channel's
// device (EvtDeviceReleaseHardware: KMCL's Disable suspends the client, which completes
// what it holds, closes it and cancels its requests in flight, pkt.cancel); the new
// instance (`reopen`, `guest-open`, a re-offer after a restore that abandoned a channel)
// is a new device. The driver's trace outlives its devices; while none is there (every
// channel closed) nothing can open the control device, and the bench reads the trace
// once one is back, as a lab job would. A real Windows guest starts the new instance's
// device at once: the held instance of a `rescind` with `reopen: false` is the bench's
// (a real lab plans it not applicable, src/lab/vm-steps.ts). Refused (exit 2, `refuses`):
// a step that leaves every channel closed.
// A test's removal race (ExecuteOptions.cGuestRemovalRace, never the default) splits a host
// rescind as a real guest's threads may: KMCL suspends and closes the client, a control
// command reaches the device, then PnP removes it (raceRemoval says what is documented).
// The driver's hold timers and work items run as the first channel's timer work.
//
// Intended differences from the twin (test/devices/wasm/c-vs-twin.test.ts lists them): it
// traces its client's own Enabled and Started; no `pkt.queued` (KMCL queues a send inside
// the library and VmbPacketSend says nothing of it); a held host transaction completes at
// the driver's next 5 ms hold-timer tick after it is due; at a removal, its client's
// Suspend (`Paused`) completes the host transactions it held, where the twin drops them.

import type { EmulatorGuest, GuestRings, HostDoorbell, KmclFaults, RemovalRace } from '../../../src/device-api/device-module.ts';
import type { IncomingRing, OutgoingRing } from '../../../src/vmbus/ring.ts';
import type { TraceSink } from '../../../src/trace/sink.ts';
import type { GapChoices } from '../../../src/vmbus/choices.ts';
import type { Channel } from '../../../src/vmbus/channel.ts';
import { fifoLength } from '../../../src/vmbus/fifo.ts';
import { bindClientRings } from '../../../src/devices/wasm/kmcl-client-image.ts';
import { CGuestState, CVmGuestBase, cGuestSide, type CGuestControl } from '../../../src/device-api/c-guest-base.ts';
import { CGuestWindows, type CGuestWindowsImage, type CGuestWindowsOptions } from './guest-windows.ts';
import { keyCGuestWindows } from './guest-windows-key.ts';
import type { StateKey } from '../../../src/scenario/state-key.ts';

/** The trace buffer the bench starts the device with (its TraceKiB registry value); reads empty it long before it fills. */
const TRACE_KIB = 256;
/** Bytes read before the bench clears the driver's trace buffer (trace-clear), as the Linux guest's reader does. */
const CLEAR_AFTER = 64 * 1024;
const decoder = new TextDecoder();

export interface CWindowsGuestOptions {
  /** the run's clock (ms) */
  now: () => number;
  /** the run's documented-gap choices: the guest's KMCL client channel follows them too */
  choices: GapChoices;
  /**
   * the device's control language, as a lab job's: `command`, a traffic step as the line its
   * guest driver's command IOCTL takes; `channelInstance`, the instance GUID each channel is
   * offered with; `begin`, the lines before the first step (the guest's are sent after the probe)
   */
  control: CGuestControl;
  replace?: Readonly<Record<string, string>> | undefined;
  /** answers its KMCL client gives as a Driver-Verifier-style run injects them (a test's) */
  kmclFaults?: KmclFaults | undefined;
  /** a test's removal race (ExecuteOptions.cGuestRemovalRace; CWindowsVmGuest.raceRemoval says what is documented) */
  removalRace?: RemovalRace | undefined;
}

/** A C Windows guest's state: the base's, and how far the bench has read the driver's trace buffer. */
export class CWindowsGuestState extends CGuestState<CGuestWindows> {
  /** how far the bench has read the driver's trace buffer (the control tool's offset) */
  traceOffset: number;

  constructor(away: number, channels: readonly number[], probed: boolean, traceOffset: number) {
    super(away, channels, probed);
    this.traceOffset = traceOffset;
  }
}

/** The Windows guest writes its trace to its own buffer; a TraceLogging event from it would be a bench bug. */
const NO_TRACELOGGING: TraceSink = {
  emit: () => {
    throw new Error('guest-windows wrote a TraceLogging event: its trace is its own buffer (guest-trace.c)');
  },
} as unknown as TraceSink;

/** Channel `ch`'s device and its client channel (bound to the offer of `instance`), or null: no device (removed, or not added yet). */
function deviceOf(drv: CGuestWindows, instance: string): { device: number; client: Channel } | null {
  for (const device of drv.devices()) {
    const client = drv.clientOf(device);
    if (client?.config.interfaceInstance === instance) return { device, client };
  }
  return null;
}

/**
 * What the C Windows guest cannot run in scenario `s`, as the place to name (exit 2), or
 * null: a step that leaves every channel closed (`guest-close`, or a `rescind` with
 * `reopen: false`). The driver's control device goes with its last device (KMDF's
 * ControlDeviceDeleted rule), so nothing can read the driver until a channel opens again,
 * and the close's own events would reach the run's trace after the steps between (a real
 * lab plans it not applicable too, src/lab/vm-steps.ts). A rescind reopened in the same
 * step is read once its new device is there, before anything else runs.
 */
function refuses(s: { channels: ReadonlyArray<{ id: number }>; steps: ReadonlyArray<{ op: string; channel?: number; reopen?: boolean }> }): { field: string; step?: number; reason: string } | null {
  const closed = new Set<number>();
  for (const [i, st] of s.steps.entries()) {
    if (st.channel === undefined) continue;
    if (st.op === 'guest-close' || (st.op === 'rescind' && st.reopen === false)) closed.add(st.channel);
    else if (st.op === 'guest-open') closed.delete(st.channel);
    if (closed.size === s.channels.length) {
      return { field: `steps[${i}].op`, step: i, reason: `step ${i + 1} (${st.op}) leaves every channel closed: the C Windows guest driver's control device goes with its last device, so the bench could not read the driver until a channel opens again (a real lab plans this not applicable too)` };
    }
  }
  return null;
}

export function cWindowsGuest(o: CWindowsGuestOptions): EmulatorGuest & { refuses: typeof refuses } {
  const driverOpts = (now: () => number): CGuestWindowsOptions => ({
    choices: o.choices, sink: NO_TRACELOGGING, now, traceKib: TRACE_KIB, onEnabled: () => {}, devicesAtLoad: 0,
    ...(o.replace ? { replace: o.replace } : {}), ...(o.kmclFaults ? { faults: o.kmclFaults } : {}),
  });
  const side = cGuestSide<CGuestWindows, CWindowsGuestState, CGuestWindowsImage>({
    kind: 'c-windows',
    title: 'C Windows guest driver',
    now: o.now,
    state: (away, channels, probed, img) => new CWindowsGuestState(away, channels, probed, (img?.traceOffset as number | undefined) ?? 0),
    load: (now) => new CGuestWindows(driverOpts(now)),
    // The image goes into the replaced guest's instance when it fits (CGuestWindows, `spare`).
    revive: (now, image, spare) => new CGuestWindows(driverOpts(now), image, spare),
    image: (drv, live) => drv.image(live),
    extra: (st) => ({ traceOffset: st.traceOffset }),
    check(img, bad) {
      if (!Number.isSafeInteger(img.traceOffset) || (img.traceOffset as number) < 0) bad('traceOffset is not a byte offset');
    },
    checkRevived(st, bad) {
      // Every device the driver has serves one of the VM's channels.
      const instances = new Set(st.channels.map((ch) => o.control.channelInstance(ch)));
      for (const d of st.drv.devices()) {
        const i = st.drv.clientOf(d)?.config.interfaceInstance;
        if (i === undefined || i === null || !instances.has(i)) bad(`says the driver's device 0x${d.toString(16)} serves ${i ?? 'no channel'}, which is none of the VM's channels`);
      }
    },
    face: (st, rings, sink, host) => new CWindowsVmGuest(st, rings, sink, host, o.control, o.removalRace),
  });
  return { ...side, refuses };
}

/** The GuestDriver face of the C Windows driver over one run's rings. */
class CWindowsVmGuest extends CVmGuestBase<CGuestWindows, CWindowsGuestState> {
  /**
   * Host transactions held and Requests awaiting completion on all channels, from the
   * counters IOCTL, read again after an entry into the driver: a cache of what the
   * driver's memory says (keyed there), so explore's key leaves it out (`counters`,
   * state-key.ts).
   */
  private readonly counters = { held: 0, completions: 0, stale: true };
  /** the channel whose timer work runs the driver's timers and work items (as the C Linux guest's) */
  private readonly timerCh: number;
  /**
   * Each channel's device and client as last found (null: none), asked on every scheduler
   * turn. Only this face adds and removes devices (offer, rescind), and it sets the entry
   * when it does; a revived guest gets a new face. What the driver's memory says (keyed
   * there), so a private field explore's key does not walk.
   */
  readonly #found = new Map<number, { device: number; client: Channel } | null>();
  /** a test's removal race at each host rescind (raceRemoval), or none: the removal runs as one */
  readonly #race: RemovalRace | undefined;

  constructor(st: CWindowsGuestState, rings: GuestRings, sink: TraceSink, host: HostDoorbell, ctl: CGuestControl, race?: RemovalRace) {
    super(st, rings, sink, host, ctl);
    this.#race = race;
    this.timerCh = st.channels[0]!;
    // A restored VM's driver finds its clients bound to the restored rings, as they were.
    if (st.probed) {
      for (const ch of st.channels) {
        const d = this.device(ch);
        if (d) bindClientRings(d.client, rings.get(ch)!, this.doorbell(ch));
      }
    }
  }

  /** Explore's state key: the driver as its image (guest-windows-key.ts), not field by field. */
  keyers(add: (object: object, key: (k: StateKey) => void) => void): void {
    const drv = this.st.drv;
    add(drv, (k) => keyCGuestWindows(k, drv));
  }

  private device(ch: number): { device: number; client: Channel } | null {
    let d = this.#found.get(ch);
    if (d === undefined) this.#found.set(ch, (d = deviceOf(this.st.drv, this.ctl.channelInstance(ch))));
    return d;
  }

  /** Whether any channel has its device (and so the driver its control device). */
  private anyDevice(): boolean {
    return this.st.channels.some((ch) => this.device(ch) !== null);
  }

  private client(ch: number): Channel {
    const d = this.device(ch);
    if (!d) throw new Error(`the C Windows guest driver has no device for channel ${ch}`);
    return d.client;
  }

  /**
   * PnP adds channel `ch`'s device (its client channel enabled, waiting) and the offer
   * binds it on `rings`: Opened, Started, PostStarted run in the driver.
   */
  private offer(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void {
    const drv = this.st.drv;
    const device = drv.addDevice();
    const c = drv.clientOf(device);
    if (!c) throw new Error(`the C Windows guest driver's device for channel ${ch} enabled no client channel`);
    this.#found.set(ch, { device, client: c });
    this.drain();
    c.config.interfaceInstance = this.ctl.channelInstance(ch);
    c.signalPeer = this.doorbell(ch);
    const status = c.connectionOpened(rings.out, rings.in, { restored: false });
    this.drain();
    if (status !== 0) throw new Error(`the C Windows guest driver's EvtVmbChannelOpened on channel ${ch} failed with 0x${(status >>> 0).toString(16)}`);
  }

  /** PnP adds a device per channel and each offer binds its client; then the control's begin lines. */
  probe(): void {
    for (const ch of this.st.channels) this.offer(ch, this.rings.get(ch)!);
    this.begin();
  }

  /**
   * The host rescinded channel `ch`, or the guest closes it (`guest-close`): PnP removes its
   * device. EvtDeviceReleaseHardware disables the client (Suspend: the held host
   * transactions completed; Closed; its requests in flight cancelled, pkt.cancel) and
   * cleans it up. No device (closed already): nothing. With a test's removal race, a host
   * rescind reaches the client first (raceRemoval).
   */
  rescind(ch: number, cause: 'host' | 'guest' = 'host'): void {
    const d = this.device(ch);
    if (!d) return;
    // The host's end has gone (or closed first, at a guest close): what the client writes
    // while it closes (its Suspend's completions) signals nobody.
    d.client.signalPeer = () => {};
    if (cause === 'host' && this.#race) this.raceRemoval(ch, d.client, this.#race);
    this.#found.set(ch, null);
    this.st.drv.removeDevice(d.device);
    this.drain();
  }

  /**
   * A test's removal race (ExecuteOptions.cGuestRemovalRace), before PnP removes the
   * rescinded channel's device: KMCL suspends and closes the client on the host's rescind
   * (Paused, the held host transactions dropped, Closed, the Requests in flight cancelled),
   * then a guest-send from the control tool reaches the device.
   *
   * Documented: a KMCL client whose host rescinds the offer is suspended (it must stop
   * calling VmbPacketSend) and closed, and ends Disabled (EvtVmbChannelSuspend,
   * EvtVmbChannelClosed; SPEC-NOTES 2.4, 2.5). A bus driver reports a vanished child with
   * IoInvalidateDeviceRelations; the PnP manager then asks for the bus relations and sends
   * IRP_MN_SURPRISE_REMOVAL and IRP_MN_REMOVE_DEVICE from a system thread of its own, and
   * the bus driver goes on handling the child's IRPs until that remove: the device outlives
   * the bus's news for a while. A control device object is in no device stack and has no PnP
   * or power state (KMDF, "Using Control Device Objects"), so nothing in a PnP device's
   * removal stops its queue; this driver unlinks a device from the commands only in
   * EvtDeviceReleaseHardware.
   * Inferred, not documented: that vmbus and KMCL suspend and close the client on the
   * rescind message itself, before PnP's removal reaches the driver, rather than through the
   * driver's VmbChannelDisable at EvtDeviceReleaseHardware (the bench's default order). Not
   * seen on a real guest (lab/drivers/README.md).
   */
  private raceRemoval(ch: number, client: Channel, race: RemovalRace): void {
    client.peerClosed();
    this.drain();
    const line = this.sendLine(ch, 'request', race.count, race.size, 'inline', 0);
    const status = this.st.drv.command(line) >>> 0;
    this.drain();
    race.answered?.(ch, line, status);
  }

  /** The channel's new instance is offered on fresh rings: PnP adds a new device for it, which numbers on. */
  reopen(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void {
    this.rings.set(ch, rings);
    this.offer(ch, rings);
  }

  /** The driver has no device for channel `ch`: removed, not added again (its memory says). */
  isClosed(ch: number): boolean {
    return this.st.probed && this.device(ch) === null;
  }

  /** One line through the command IOCTL: the NTSTATUS it completed with. */
  protected runLine(line: string): string | null {
    const st = this.st.drv.command(line);
    return st !== 0 ? `status 0x${(st >>> 0).toString(16)}` : null;
  }

  /**
   * The trace from the bench's offset on (IOCTL_SAMPLE_READ_TRACE); past CLEAR_AFTER bytes
   * the bench empties the buffer. With no device there is no control device to open: the
   * lines wait in the driver's buffer for the next read.
   */
  protected readTrace(): string {
    const drv = this.st.drv;
    if (!this.anyDevice()) return '';
    const bytes = drv.readTraceFrom(this.st.traceOffset);
    if (bytes.length === 0) return '';
    this.st.traceOffset += bytes.length;
    return decoder.decode(bytes);
  }

  /** Once the lines are in the run's trace: the buffer cleared when read far enough, and the counters to read again. */
  protected override afterDrain(): void {
    if (this.st.traceOffset >= CLEAR_AFTER && this.anyDevice()) {
      const r = this.st.drv.command('trace-clear');
      if (r !== 0) throw new Error(`the C Windows guest driver refused trace-clear with 0x${(r >>> 0).toString(16)}`);
      this.st.traceOffset = 0;
    }
    this.counters.stale = true;
  }

  /** The counters IOCTL (one line per device), once per entry into the driver (the scheduler asks nextDue often). */
  private readCounters(): void {
    const c = this.counters;
    if (!c.stale) return;
    c.stale = false;
    c.held = 0;
    c.completions = 0;
    if (!this.anyDevice()) return;
    for (const row of this.st.drv.counters()) {
      c.held += row.held ?? 0;
      c.completions += (row.requests_sent ?? 0) - (row.completions ?? 0) - (row.cancelled ?? 0);
    }
  }

  signal(ch: number, what: 'interrupt' | 'writable'): void {
    const c = this.device(ch)?.client;
    if (!c) return;
    if (what === 'interrupt') c.interrupt = true;
    else c.writable = true;
  }

  canFlush(ch: number): boolean {
    return this.device(ch)?.client.canFlush() ?? false;
  }

  flushOne(ch: number): void {
    this.client(ch).flushOne();
    this.drain();
  }

  canDeliver(ch: number): boolean {
    return this.device(ch)?.client.canDeliver() ?? false;
  }

  deliverOne(ch: number): void {
    this.client(ch).deliverOne();
    this.drain();
  }

  /** The driver's hold timers while it holds a host transaction, or now when a work item is queued (the first channel's timer work). */
  nextDue(ch: number): number | null {
    if (ch !== this.timerCh) return null;
    const drv = this.st.drv;
    // A queued work item runs at once (PASSIVE_LEVEL, from the scheduler's timer task).
    if (drv.wdf.workItemQueued) return drv.rt.opts.now() + this.st.away;
    // The hold timers are periodic for each channel's life: only due work while something is held.
    this.readCounters();
    if (this.counters.held === 0) return null;
    const d = drv.nextTimerDue();
    return d === null ? null : d + this.st.away;
  }

  completeDue(ch: number, now: number): boolean {
    if (ch !== this.timerCh) return false;
    const drv = this.st.drv;
    const n = drv.runTimers(now - this.st.away) + drv.runWorkItems();
    this.drain();
    return n > 0;
  }

  /** Requests awaiting their completion, host transactions held, and sends still in the library's queues. */
  pending(): number {
    this.readCounters();
    let queued = 0;
    for (const ch of this.st.channels) {
      const c = this.device(ch)?.client;
      if (c) queued += fifoLength(c.queue);
    }
    return this.counters.completions + this.counters.held + queued;
  }
}
