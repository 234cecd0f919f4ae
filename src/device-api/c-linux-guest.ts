// A device's C Linux guest driver (src/devices/wasm/c-guest-linux.ts) as the guest of an
// emulated VM (`devices: c-linux`): the guest side the scenario executor drives, in place
// of the device's TypeScript twin. Generic: the device gives its module's recipe and its
// DeviceControl's command language (the sample's devices/sample/device.ts, blockq's
// devices/blockq/device.ts).
//
// The bench drives it as a lab job drives the real module over SSH:
//  - each traffic step becomes a line of the device's command language, made by the
//    device's own `control.command` (the one a lab job sends), written to the debugfs
//    `control` file; the control's `begin` lines go there once the channels are probed;
//  - the trace is the driver's own, read from the debugfs `trace` file after every entry
//    into the driver (one open file, read on from where it stopped) and written into the
//    run's trace in the order the driver wrote it;
//  - what is still in flight is read from the debugfs `counters` file.
// The VMBus core's part is the shim's: the probe of each offered channel (instance GUID
// from `control.channelInstance`), the channel callback when the host signals (it reads
// everything in the ring, as Linux's does), delayed work from the run's clock, and on a
// rescind (or the guest's own close) the removal of the device; a new instance probes it
// again.
//
// What a module must offer for this (the contract; the sample's and blockq's do):
//  - debugfs files `control` (one command per write, -errno when refused), `trace` (the
//    trace library's JSON Lines) and `counters` (one `ch=N name=value ...` line per
//    channel with `requests_sent`, `completions` and `held`: what is in flight);
//  - the command `trace-clear`, which empties the trace buffer (seq goes on);
//  - transactions numbered from 1 on each channel.
//
// Guest memory: the state is the driver itself (module memory and the shim's tables).
// A save copies it whole (CGuestLinux.image), a restore builds the driver again from the
// copy, in the instance of the guest it replaces (c-guest-base.ts), and binds its channels
// to the restored rings. The state, the image's checks, the guest's clock and the trace
// drain are the C guest base's (c-guest-base.ts); what is here is how the module is
// driven and read.
//
// Intended differences from a twin (test/devices/wasm/c-vs-twin.test.ts lists the
// sample's, test/devices/blockq/c-guest.test.ts blockq's): it never queues a send (a full
// ring makes its thread sleep while the host runs, and `pkt.send` is traced once the
// packet is in the ring, so there is no `pkt.queued`); one interrupt reads every packet
// in the ring; its delayed work is one queue for all channels, run as the first
// channel's timer.

import type { EmulatorGuest, GuestRings, HostDoorbell } from './device-module.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { IncomingRing, OutgoingRing } from '../vmbus/ring.ts';
import { CGuestLinux, type CGuestLinuxImage } from '../devices/wasm/c-guest-linux.ts';
import type { DriverRecipe } from '../devices/wasm/build.ts';
import { keyCGuestLinux } from './c-linux-guest-key.ts';
import type { StateKey } from '../scenario/state-key.ts';
import { CGuestState, CVmGuestBase, cGuestSide, type CGuestControl } from './c-guest-base.ts';

/** The trace buffer the bench loads the module with (insmod trace_kib=...); readNew empties it long before it fills. */
const TRACE_KIB = 256;

export interface CGuestOptions {
  /** the run's clock (ms) */
  now: () => number;
  /** how the device's Linux module builds (world `linux`) */
  recipe: DriverRecipe;
  /**
   * the device's control language: `command`, a traffic step as the line its guest
   * driver's control file takes; `channelInstance`, the instance GUID each channel is
   * offered with; `begin`, the lines a lab job sends first (those to the guest go to the
   * control file once the channels are probed)
   */
  control: CGuestControl;
  replace?: Readonly<Record<string, string>> | undefined;
}

/** A C Linux guest's state: the base's (the loaded module, its clock, its channels). */
export type CLinuxGuestState = CGuestState<CGuestLinux>;

export function cLinuxGuest(o: CGuestOptions): EmulatorGuest {
  const driverOpts = (now: () => number) => ({ recipe: o.recipe, now, traceKib: TRACE_KIB, ...(o.replace ? { replace: o.replace } : {}) });
  return cGuestSide<CGuestLinux, CLinuxGuestState, CGuestLinuxImage>({
    kind: 'c-linux',
    title: 'C Linux guest driver',
    now: o.now,
    state: (away, channels, probed) => new CGuestState(away, channels, probed),
    load: (now) => new CGuestLinux(driverOpts(now)),
    // The image goes into the replaced guest's instance when it fits (CGuestLinux, `spare`).
    revive: (now, image, spare) => new CGuestLinux(driverOpts(now), image, spare),
    image: (drv, live) => drv.image(live),
    checkRevived(st, bad) {
      const missing = st.probed ? st.channels.find((ch) => !st.drv.linux.channels.has(ch)) : undefined;
      if (missing !== undefined) bad(`says channel ${missing} was probed, but the driver has no such channel`);
    },
    face: (st, rings, sink, host) => new CLinuxVmGuest(st, rings, sink, host, o.control),
  });
}

/** The GuestDriver face of the C Linux driver over one run's rings. */
class CLinuxVmGuest extends CVmGuestBase<CGuestLinux, CLinuxGuestState> {
  private readonly timerCh: number;

  constructor(st: CLinuxGuestState, rings: GuestRings, sink: TraceSink, host: HostDoorbell, ctl: CGuestControl) {
    super(st, rings, sink, host, ctl);
    this.timerCh = st.channels[0]!;
    const drv = st.drv;
    // While the driver's thread sleeps (a full ring), the host runs; if it has nothing to
    // do, the driver's retry loop ends in its own timeout or as a hang (HANG_CALLS). What
    // the driver traced so far goes into the run's trace first (the bench reads the trace
    // file meanwhile, as a reader may while a writer sleeps), so the host's events for
    // these packets come after their sends.
    drv.linux.onSleep = () => {
      this.drain();
      this.host.runHost?.();
    };
    if (st.probed) for (const ch of st.channels) drv.bind(ch, rings.get(ch)!, this.doorbell(ch));
  }

  /** Explore's state key: the driver as its image (c-linux-guest-key.ts), not field by field. */
  keyers(add: (object: object, key: (k: StateKey) => void) => void): void {
    const drv = this.st.drv;
    add(drv, (k) => keyCGuestLinux(k, drv));
  }

  /** The VMBus core probes the driver for each offered channel; then the control's `begin` lines to the guest, as a lab job starts. */
  probe(): void {
    for (const ch of this.st.channels) this.offer(ch, this.rings.get(ch)!);
    this.begin();
  }

  /** The VMBus core's probe of channel `ch` on these rings. */
  private offer(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void {
    const r = this.st.drv.offer(ch, this.ctl.channelInstance(ch), rings, this.doorbell(ch));
    this.drain();
    if (r !== 0) throw new Error(`the C guest driver's probe of channel ${ch} failed with ${r}`);
  }

  /** One line to the debugfs control file: -errno when refused. */
  protected runLine(line: string): string | null {
    const r = this.st.drv.control(line);
    return r < 0 ? `errno ${-r}` : null;
  }

  /** The trace file, read on from where the bench's open file stopped. */
  protected readTrace(): string {
    return this.st.drv.readNew();
  }

  signal(ch: number, what: 'interrupt' | 'writable'): void {
    // The Linux driver does not wait for room to be signalled: it retries (sleeping).
    if (what === 'interrupt') this.st.drv.signal(ch);
  }

  canFlush(): boolean {
    return false;
  }

  flushOne(): void {}

  canDeliver(ch: number): boolean {
    return this.st.drv.interrupted(ch);
  }

  deliverOne(ch: number): void {
    this.st.drv.runInterruptOf(ch);
    this.drain();
  }

  nextDue(ch: number): number | null {
    if (ch !== this.timerCh) return null;
    const d = this.st.drv.nextWorkDue();
    return d === null ? null : d + this.st.away;
  }

  completeDue(ch: number, now: number): boolean {
    if (ch !== this.timerCh) return false;
    const n = this.st.drv.runWork(now - this.st.away);
    this.drain();
    return n > 0;
  }

  /**
   * The host rescinded channel `ch` (or the guest closes it, scenario `guest-close`): the
   * VMBus core removes the device, and the driver's remove closes the channel and ends
   * what it had in flight (PROTOCOL.md "Rescind and re-offer"). Closed already: nothing.
   */
  rescind(ch: number): void {
    this.st.drv.remove(ch);
    this.drain();
  }

  /** The new instance of channel `ch` is offered on fresh rings: the VMBus core probes the driver for it. */
  reopen(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void {
    this.rings.set(ch, rings);
    this.offer(ch, rings);
  }

  /** The driver has no device for channel `ch`: removed, not probed again (its memory says). */
  isClosed(ch: number): boolean {
    return this.st.probed && !this.st.drv.hasDevice(ch);
  }

  /** Requests awaiting their completion and HostTransactions held, from the counters file. */
  pending(): number {
    let n = 0;
    for (const line of this.st.drv.read('counters').split('\n')) {
      const f = Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
      if (f.ch === undefined) continue;
      n += (f.requests_sent ?? 0) - (f.completions ?? 0) + (f.held ?? 0);
    }
    return n;
  }
}
