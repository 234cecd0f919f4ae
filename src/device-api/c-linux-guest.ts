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
// copy and binds its channels to the restored rings. Time the VM spends saved does not
// pass for the guest: its clock is the run's minus the time away, as the twins shift
// their holds.
//
// Intended differences from a twin (test/devices/wasm/c-vs-twin.test.ts lists the
// sample's, test/devices/blockq/c-guest.test.ts blockq's): it never queues a send (a full
// ring makes its thread sleep while the host runs, and `pkt.send` is traced once the
// packet is in the ring, so there is no `pkt.queued`); one interrupt reads every packet
// in the ring; its delayed work is one queue for all channels, run as the first
// channel's timer.

import type { DeviceControl, EmulatorGuest, GuestDriver, GuestRings, HostDoorbell, TrafficStep } from './device-module.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { EventBody } from '../trace/schema.ts';
import { parseJsonExact } from '../trace/json-ids.ts';
import { RestoreError } from '../vmbus/saved-state.ts';
import { replayRunsTwins } from '../devices/wasm/violations.ts';
import type { IncomingRing, OutgoingRing } from '../vmbus/ring.ts';
import { CGuestLinux, type CGuestLinuxImage, type CGuestLinuxOptions } from '../devices/wasm/c-guest-linux.ts';
import type { DriverRecipe } from '../devices/wasm/build.ts';
import { keyCGuestLinux } from './c-linux-guest-key.ts';
import type { StateKey } from '../scenario/state-key.ts';

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
  control: Pick<DeviceControl, 'command' | 'channelInstance' | 'begin'>;
  replace?: Readonly<Record<string, string>> | undefined;
}

/** A C guest's state: the loaded driver, and how far its clock is behind the run's. */
export class CLinuxGuestState {
  /** set once, right after the state is made (the driver reads its clock through the state) */
  drv!: CGuestLinux;
  /** ms the VM spent saved: the guest's clock is the run's minus this */
  away: number;
  /** the channels' ids, ascending */
  readonly channels: readonly number[];
  probed: boolean;

  constructor(away: number, channels: readonly number[], probed: boolean) {
    this.away = away;
    this.channels = [...channels].sort((a, b) => a - b);
    this.probed = probed;
  }
}

/** A saved VM's copy of the guest (plain data). `channels` as the twin's image has them: the layout's. */
interface CLinuxGuestImage {
  kind: 'c-linux';
  driver: CGuestLinuxImage;
  /** the guest's clock when the copy was taken */
  guestNow: number;
  channels: Array<{ ch: number }>;
  probed: boolean;
}

export function cLinuxGuest(o: CGuestOptions): EmulatorGuest {
  const driverOpts = (st: CLinuxGuestState): CGuestLinuxOptions => ({ recipe: o.recipe, now: () => o.now() - st.away, traceKib: TRACE_KIB, ...(o.replace ? { replace: o.replace } : {}) });
  // The driver of the last guest state a restore replaced: the next revive puts its image
  // into that instance (CGuestLinux, `spare`). One run's, so one build's.
  let spare: CGuestLinux | undefined;
  return {
    newGuestState(channels, firstTx) {
      const odd = firstTx.findIndex((t) => t !== 1);
      if (odd >= 0) throw new Error(`the C guest driver numbers transactions from 1; channel ${channels[odd]} starts at ${String(firstTx[odd])}`);
      const st = new CLinuxGuestState(0, channels, false);
      st.drv = new CGuestLinux(driverOpts(st));
      return st;
    },
    guest(state, rings, sink, host) {
      return new CLinuxVmGuest(state as CLinuxGuestState, rings, sink, host, o.control);
    },
    snapshotGuest(state, now, live): CLinuxGuestImage {
      const st = state as CLinuxGuestState;
      return { kind: 'c-linux', driver: st.drv.image(live), guestNow: now - st.away, channels: st.channels.map((ch) => ({ ch })), probed: st.probed };
    },
    reviveGuest(image, now) {
      const img = image as Partial<CLinuxGuestImage> | null;
      const bad = (what: string): never => {
        throw new RestoreError('bad-record', `the guest image ${what}`);
      };
      if (typeof img !== 'object' || img === null || img.kind !== 'c-linux') bad('is not a C Linux guest driver\'s (kind c-linux)');
      if (typeof img!.guestNow !== 'number' || !Number.isFinite(img!.guestNow) || img!.guestNow < 0 || img!.guestNow > now) bad(`clock ${String(img!.guestNow)} is not a time before now (${now})`);
      if (!Array.isArray(img!.channels) || img!.channels.length === 0 || !img!.channels.every((c) => Number.isSafeInteger(c?.ch))) bad('channels are not a list of channel ids');
      if (typeof img!.probed !== 'boolean') bad('probed is not a boolean');
      const st = new CLinuxGuestState(now - img!.guestNow!, img!.channels!.map((c) => c.ch), img!.probed!);
      st.drv = new CGuestLinux(driverOpts(st), img!.driver, spare);
      spare = undefined;
      const missing = st.probed ? st.channels.find((ch) => !st.drv.linux.channels.has(ch)) : undefined;
      if (missing !== undefined) bad(`says channel ${missing} was probed, but the driver has no such channel`);
      return st;
    },
    discardGuest(state) {
      const st = state as CLinuxGuestState;
      spare = st.drv;
      // Whatever still holds the old state fails loudly rather than drive the reused instance.
      st.drv = undefined as unknown as CGuestLinux;
    },
  };
}

/** The GuestDriver face of the C Linux driver over one run's rings. */
class CLinuxVmGuest implements GuestDriver {
  private readonly st: CLinuxGuestState;
  private readonly rings: GuestRings;
  private readonly sink: TraceSink;
  private readonly host: HostDoorbell;
  private readonly ctl: CGuestOptions['control'];
  private readonly timerCh: number;

  constructor(st: CLinuxGuestState, rings: GuestRings, sink: TraceSink, host: HostDoorbell, ctl: CGuestOptions['control']) {
    this.st = st;
    this.rings = rings;
    this.sink = sink;
    this.host = host;
    this.ctl = ctl;
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

  get state(): unknown {
    return this.st;
  }

  /** Explore's state key: the driver as its image (c-linux-guest-key.ts), not field by field. */
  keyers(add: (object: object, key: (k: StateKey) => void) => void): void {
    const drv = this.st.drv;
    add(drv, (k) => keyCGuestLinux(k, drv));
  }

  private doorbell(ch: number): (w: 'interrupt' | 'writable') => void {
    return (w) => (w === 'interrupt' ? this.host.interrupt(ch) : this.host.writable(ch));
  }

  /** The VMBus core probes the driver for each offered channel; then the control's `begin` lines to the guest, as a lab job starts. */
  probe(): void {
    const drv = this.st.drv;
    for (const ch of this.st.channels) {
      const r = drv.offer(ch, this.ctl.channelInstance(ch), this.rings.get(ch)!, this.doorbell(ch));
      this.drain();
      if (r !== 0) throw new Error(`the C guest driver's probe of channel ${ch} failed with ${r}`);
    }
    this.st.probed = true;
    for (const b of this.ctl.begin ?? []) if (b.to === 'guest') this.control(b.line);
  }

  /** One line to the control file; a refused command is an error naming it. */
  private control(line: string): void {
    const r = this.st.drv.control(line);
    this.drain();
    if (r < 0) throw new Error(`the C guest driver refused '${line}' with errno ${-r}`);
  }

  /** The trace lines the driver wrote since the last read, into the run's trace in order. */
  private drain(): void {
    const text = this.st.drv.readNew();
    if (!text) return;
    for (const line of text.split('\n')) {
      if (!line) continue;
      const { v: _v, seq: _seq, src: _src, ...body } = parseJsonExact(line) as Record<string, unknown>;
      this.sink.emit(body as unknown as EventBody);
    }
  }

  signal(ch: number, what: 'interrupt' | 'writable'): void {
    // The Linux driver does not wait for room to be signalled: it retries (sleeping).
    if (what === 'interrupt') this.st.drv.signal(ch);
  }

  send(ch: number, kind: 'request' | 'notify', count: number, size: number, mode: 'inline' | 'deferred' | 'hold', vspHold: number): void {
    const step: TrafficStep = kind === 'request'
      ? { op: 'guest-send', channel: ch, count, size, mode, hold: vspHold }
      : { op: 'notify', channel: ch, dir: 'g2h', count, size };
    this.control(this.ctl.command(step).line);
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
    const r = this.st.drv.offer(ch, this.ctl.channelInstance(ch), rings, this.doorbell(ch));
    this.drain();
    if (r !== 0) throw new Error(`the C guest driver's probe of channel ${ch} failed with ${r}`);
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

  // Replay (bench check) runs the TypeScript twins, never the C driver.
  isHeld(): boolean {
    return replayRunsTwins();
  }

  completeHeld(): boolean {
    return replayRunsTwins();
  }

  peekDelivery(): null {
    return replayRunsTwins();
  }
}
