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
// callback for a VM save or restore: a restore builds the driver again from the copy and
// binds its client channel to the restored rings (kmcl-client-image.ts bindClientRings).
// Time the VM spends saved does not pass for the guest, as for the twin (guest-image.ts).
// The state, the image's checks, the guest's clock and the trace drain are the C guest
// base's (src/device-api/c-guest-base.ts); what is here is how the driver is driven
// (IOCTLs, PnP's binding) and read (the trace from an offset the bench keeps).
//
// What it cannot run (refused with exit 2, `refuses`): more than one channel (the driver
// has one device per offer and one control device name per VM, \\.\VmbusSampleGuest, so a
// second device fails to start on a real guest too); a rescind, a guest close and
// forceNewChannel (the driver would be removed and a new device started for the new offer,
// which this adapter does not model yet).
//
// Intended differences from the twin (test/devices/wasm/c-windows-vs-twin.test.ts lists
// them): it traces its client's own Enabled and Started; no `pkt.queued` (KMCL queues a
// send inside the library and VmbPacketSend says nothing of it); a held host transaction
// completes at the driver's next 5 ms hold-timer tick after it is due.

import type { EmulatorGuest, GuestRings, HostDoorbell } from '../../../src/device-api/device-module.ts';
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
/** The WDF shim's kind number of a work item (wdf-shim.ts KIND). */
const WDF_WORKITEM = 4;
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
}

/** A C Windows guest's state: the base's, and how far the bench has read the driver's trace buffer. */
export class CWindowsGuestState extends CGuestState<CGuestWindows> {
  /** how far the bench has read the driver's trace buffer (the control tool's offset) */
  traceOffset: number;

  constructor(away: number, channels: readonly number[], probed: boolean, traceOffset: number) {
    super(away, channels, probed);
    this.traceOffset = traceOffset;
  }

  /** the one channel the driver serves */
  get ch(): number {
    return this.channels[0]!;
  }
}

/** The Windows guest writes its trace to its own buffer; a TraceLogging event from it would be a bench bug. */
const NO_TRACELOGGING: TraceSink = {
  emit: () => {
    throw new Error('guest-windows wrote a TraceLogging event: its trace is its own buffer (guest-trace.c)');
  },
} as unknown as TraceSink;

export function cWindowsGuest(o: CWindowsGuestOptions): EmulatorGuest & { refuses: typeof refuses } {
  const driverOpts = (now: () => number): CGuestWindowsOptions => ({
    choices: o.choices, sink: NO_TRACELOGGING, now, traceKib: TRACE_KIB, onEnabled: () => {},
    ...(o.replace ? { replace: o.replace } : {}),
  });
  const side = cGuestSide<CGuestWindows, CWindowsGuestState, CGuestWindowsImage>({
    kind: 'c-windows',
    title: 'C Windows guest driver',
    now: o.now,
    maxChannels: 1,
    state: (away, channels, probed, img) => new CWindowsGuestState(away, channels, probed, (img?.traceOffset as number | undefined) ?? 0),
    load: (now) => new CGuestWindows(driverOpts(now)),
    revive: (now, image) => new CGuestWindows(driverOpts(now), image),
    image: (drv, live) => drv.image(live),
    extra: (st) => ({ traceOffset: st.traceOffset }),
    check(img, bad) {
      if (!Number.isSafeInteger(img.traceOffset) || (img.traceOffset as number) < 0) bad('traceOffset is not a byte offset');
    },
    checkRevived(st, bad) {
      if (st.probed && st.drv.client() === null) bad('says the device was bound to its offer, but the driver has no client channel');
    },
    face: (st, rings, sink, host) => new CWindowsVmGuest(st, rings, sink, host, o.control),
  });
  return { ...side, refuses };
}

/**
 * What the C Windows guest cannot run in scenario `s`, as the place to name (exit 2), or
 * null. See the top of this file for why.
 */
function refuses(s: { channels: ReadonlyArray<{ id: number; forceNewChannel?: boolean | undefined }>; steps: ReadonlyArray<{ op: string }> }): { field: string; step?: number; reason: string } | null {
  if (s.channels.length !== 1) {
    return { field: 'channels', reason: `the sample's C Windows guest driver serves one channel per VM (one device per offer, and one control device name, \\\\.\\VmbusSampleGuest, per VM: a second device fails to start); this scenario has ${s.channels.length}` };
  }
  const f = s.channels.findIndex((c) => c.forceNewChannel);
  if (f >= 0) return { field: `channels[${f}].forceNewChannel`, reason: 'the C Windows guest does not run a re-offer yet (forceNewChannel falls back to a rescind: the device is removed and a new one started for the new offer)' };
  const i = s.steps.findIndex((st) => st.op === 'rescind' || st.op === 'guest-close' || st.op === 'guest-open');
  if (i >= 0) return { field: `steps[${i}].op`, step: i, reason: `the C Windows guest does not run step ${i + 1} (${s.steps[i]!.op}) yet: on Windows the device is removed and a new offer starts a new device, and the sample's driver frees its trace with its device (a real lab plans this not applicable too)` };
  return null;
}

/** The GuestDriver face of the C Windows driver over one run's rings. */
class CWindowsVmGuest extends CVmGuestBase<CGuestWindows, CWindowsGuestState> {
  /**
   * Host transactions held and Requests awaiting completion, from the counters IOCTL,
   * read again after an entry into the driver: a cache of what the driver's memory says
   * (keyed there), so explore's key leaves it out (`counters`, state-key.ts).
   */
  private readonly counters = { held: 0, completions: 0, stale: true };

  constructor(st: CWindowsGuestState, rings: GuestRings, sink: TraceSink, host: HostDoorbell, ctl: CGuestControl) {
    super(st, rings, sink, host, ctl);
    if (st.probed) {
      const c = this.client();
      bindClientRings(c, rings.get(st.ch)!, this.doorbell(st.ch));
    }
  }

  /** Explore's state key: the driver as its image (guest-windows-key.ts), not field by field. */
  keyers(add: (object: object, key: (k: StateKey) => void) => void): void {
    const drv = this.st.drv;
    add(drv, (k) => keyCGuestWindows(k, drv));
  }

  private client(): Channel {
    const c = this.st.drv.client();
    if (!c) throw new Error('the C Windows guest driver has no client channel');
    return c;
  }

  /** PnP binds the device's client channel to the offer: Opened, Started, PostStarted run in the driver; then the control's begin lines. */
  probe(): void {
    const ch = this.st.ch;
    const c = this.client();
    c.config.interfaceInstance = this.ctl.channelInstance(ch);
    c.signalPeer = this.doorbell(ch);
    const r = this.rings.get(ch)!;
    const status = c.connectionOpened(r.out, r.in, { restored: false });
    this.drain();
    if (status !== 0) throw new Error(`the C Windows guest driver's EvtVmbChannelOpened failed with 0x${(status >>> 0).toString(16)}`);
    this.begin();
  }

  /** One line through the command IOCTL: the NTSTATUS it completed with. */
  protected runLine(line: string): string | null {
    const st = this.st.drv.command(line);
    return st !== 0 ? `status 0x${(st >>> 0).toString(16)}` : null;
  }

  /** The trace from the bench's offset on (IOCTL_SAMPLE_READ_TRACE); past CLEAR_AFTER bytes the bench empties the buffer. */
  protected readTrace(): string {
    const bytes = this.st.drv.readTraceFrom(this.st.traceOffset);
    if (bytes.length === 0) return '';
    this.st.traceOffset += bytes.length;
    return decoder.decode(bytes);
  }

  /** Once the lines are in the run's trace: the buffer cleared when read far enough, and the counters to read again. */
  protected override afterDrain(): void {
    if (this.st.traceOffset >= CLEAR_AFTER) {
      const r = this.st.drv.command('trace-clear');
      if (r !== 0) throw new Error(`the C Windows guest driver refused trace-clear with 0x${(r >>> 0).toString(16)}`);
      this.st.traceOffset = 0;
    }
    this.counters.stale = true;
  }

  /** The counters IOCTL, once per entry into the driver (the scheduler asks nextDue often). */
  private readCounters(): void {
    const c = this.counters;
    if (!c.stale) return;
    c.stale = false;
    const row = this.st.drv.counters()[0] ?? {};
    c.held = row.held ?? 0;
    c.completions = (row.requests_sent ?? 0) - (row.completions ?? 0) - (row.cancelled ?? 0);
  }

  signal(_ch: number, what: 'interrupt' | 'writable'): void {
    const c = this.st.drv.client();
    if (!c) return;
    if (what === 'interrupt') c.interrupt = true;
    else c.writable = true;
  }

  canFlush(): boolean {
    return this.st.drv.client()?.canFlush() ?? false;
  }

  flushOne(): void {
    this.client().flushOne();
    this.drain();
  }

  canDeliver(): boolean {
    return this.st.drv.client()?.canDeliver() ?? false;
  }

  deliverOne(): void {
    this.client().deliverOne();
    this.drain();
  }

  /** The driver's hold timer while it holds a host transaction, or now when a work item is queued. */
  nextDue(): number | null {
    const drv = this.st.drv;
    // A queued work item runs at once (PASSIVE_LEVEL, from the scheduler's timer task).
    for (const o of drv.wdf.liveObjects()) if (o.kind === WDF_WORKITEM && o.queued) return drv.rt.opts.now() + this.st.away;
    // The hold timer is periodic for the channel's life: it is only due work while it holds something.
    this.readCounters();
    if (this.counters.held === 0) return null;
    const d = drv.nextTimerDue();
    return d === null ? null : d + this.st.away;
  }

  completeDue(_ch: number, now: number): boolean {
    const drv = this.st.drv;
    const n = drv.runTimers(now - this.st.away) + drv.runWorkItems();
    this.drain();
    return n > 0;
  }

  /** Requests awaiting their completion, host transactions held, and sends still in the library's queue. */
  pending(): number {
    this.readCounters();
    const c = this.st.drv.client();
    return this.counters.completions + this.counters.held + (c ? fifoLength(c.queue) : 0);
  }
}
