// What every C guest driver as an emulated VM's guest shares, whatever kernel it is built
// for: the C Linux guest (c-linux-guest.ts, driven through its debugfs control file) and
// the sample's C Windows guest (devices/sample/c/guest-windows-vm.ts, driven through its
// IOCTLs) are two faces over this base, each keeping only how it is driven and what its
// driver's image holds.
//
// Shared here:
//  - the guest's state: its loaded driver, how far the guest's clock is behind the run's
//    (time the VM spends saved does not pass for the guest, as the twins shift their holds),
//    its channels and whether they are probed;
//  - the saved VM's copy of it (`CGuestImage`) and the checks a revive makes of one before
//    anything is built (a malformed image is a RestoreError, the VM left as it was);
//  - a restore's reuse of the replaced guest's driver instance (`discardGuest`, then the
//    next revive puts its image there when the face's driver can take it);
//  - the VM face's plumbing (CVmGuestBase): the trace drain after every entry into the
//    driver, the command language's lines, the control's `begin` lines after the probe.

import type { DeviceControl, EmulatorGuest, GuestDriver, GuestRings, HostDoorbell, TrafficStep } from './device-module.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { EventBody } from '../trace/schema.ts';
import type { TxId } from '../vmbus/tx-id.ts';
import { parseJsonExact } from '../trace/json-ids.ts';
import { RestoreError } from '../vmbus/saved-state.ts';
import { CDriverFace } from './c-driver-face.ts';

/**
 * Where a guest state's driver is: being built (the driver reads its clock through the
 * state, so the state comes first), loaded, or handed to a later revive (`discardGuest`).
 */
type DriverSlot<D> = { kind: 'loading' } | { kind: 'loaded'; drv: D } | { kind: 'discarded' };

/** A C guest's state: the loaded driver, how far its clock is behind the run's, its channels. */
export class CGuestState<D> {
  private slot: DriverSlot<D> = { kind: 'loading' };
  /** ms the VM spent saved: the guest's clock is the run's minus this */
  readonly away: number;
  /** the channels' ids, ascending */
  readonly channels: readonly number[];
  /** the VMBus core (Linux) or PnP (Windows) has probed the driver for every channel */
  probed: boolean;

  constructor(away: number, channels: readonly number[], probed: boolean) {
    this.away = away;
    this.channels = [...channels].sort((a, b) => a - b);
    this.probed = probed;
  }

  /** The loaded driver. Invariant: a discarded state's driver is another guest's now; using it is a bench bug, so this throws. */
  get drv(): D {
    const s = this.slot;
    if (s.kind === 'loaded') return s.drv;
    throw new Error(s.kind === 'loading' ? 'a C guest state was used before its driver was loaded' : 'a C guest state was used after a restore replaced it (discardGuest): its driver went to the revived guest');
  }

  /** Puts the driver in, once. */
  load(drv: D): void {
    if (this.slot.kind !== 'loading') throw new Error(`a C guest state's driver is set once (it is ${this.slot.kind})`);
    this.slot = { kind: 'loaded', drv };
  }

  /** Hands the driver out for reuse; the state is spent. */
  discard(): D | undefined {
    const s = this.slot;
    this.slot = { kind: 'discarded' };
    return s.kind === 'loaded' ? s.drv : undefined;
  }
}

/** A saved VM's copy of a C guest (plain data). `channels` as the twin's image has them: the layout's. */
export interface CGuestImage<I> {
  kind: string;
  driver: I;
  /** the guest's clock when the copy was taken */
  guestNow: number;
  channels: Array<{ ch: number }>;
  probed: boolean;
}

/** The device's control language, as a lab job's (DeviceControl): what a C guest face drives its driver with. */
export type CGuestControl = Pick<DeviceControl, 'command' | 'channelInstance' | 'begin'>;

/** What one C guest face gives the base: its driver's building, image and VM face. */
export interface CGuestSpec<D, S extends CGuestState<D>, I> {
  /** the image's kind (`c-linux`, `c-windows`) */
  kind: string;
  /** the driver as errors name it ("C Linux guest driver") */
  title: string;
  /** the run's clock (ms) */
  now: () => number;
  /** at most this many channels per VM (the face's `refuses` says so before a run) */
  maxChannels?: number;
  /** a state; `img`: the image it is revived from, already checked (the base's checks and `check`) */
  state(away: number, channels: readonly number[], probed: boolean, img?: Readonly<Record<string, unknown>>): S;
  /** a new driver, loaded as the guest boots; `now`: the guest's clock */
  load(now: () => number): D;
  /**
   * The driver from an image, into `spare`'s instance when it can take it (a driver of
   * the same build that a restore replaced) or into a new one. A malformed image is a
   * RestoreError, and nothing runs.
   */
  revive(now: () => number, image: unknown, spare: D | undefined): D;
  /** the driver as a saved VM holds it (`live`: views of its memory, copied before it runs again) */
  image(drv: D, live: boolean): I;
  /** the face's own fields of the image, beside the base's */
  extra?(st: S): Record<string, unknown>;
  /** checks the face's own fields of an image (after the base's); `bad` throws the RestoreError */
  check?(img: Readonly<Record<string, unknown>>, bad: (what: string) => never): void;
  /** checks a revived state against its loaded driver */
  checkRevived?(st: S, bad: (what: string) => never): void;
  /** the VM face over a state */
  face(st: S, rings: GuestRings, sink: TraceSink, host: HostDoorbell): GuestDriver;
}

/** A channel id as a scenario's (src/scenario/model.ts: 0 to 255), which the device's instance GUIDs are made from. */
function isChannelId(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255;
}

/** The RestoreError of a malformed guest image: the VM stays as it was. */
function bad(what: string): never {
  throw new RestoreError('bad-record', `the guest image ${what}`);
}

/** The EmulatorGuest of a C guest face. */
export function cGuestSide<D, S extends CGuestState<D>, I>(spec: CGuestSpec<D, S, I>): EmulatorGuest {
  // The driver reads the guest's clock through its state: the run's minus the time away.
  const guestClock = (st: S) => () => spec.now() - st.away;
  const max = spec.maxChannels ?? Infinity;
  // The driver of the last guest state a restore replaced: the next revive may put its
  // image into that instance. One run's, so one build's.
  let spare: D | undefined;
  return {
    newGuestState(channels: readonly number[], firstTx: readonly TxId[]) {
      if (channels.length > max) throw new Error(`the ${spec.title} serves at most ${max} channel(s); ${channels.length} given (refuses() says so first)`);
      const odd = firstTx.findIndex((t) => t !== 1);
      if (odd >= 0) throw new Error(`the C guest driver numbers transactions from 1; channel ${channels[odd]} starts at ${String(firstTx[odd])}`);
      const st = spec.state(0, channels, false);
      st.load(spec.load(guestClock(st)));
      return st;
    },
    guest(state, rings, sink, host) {
      return spec.face(state as S, rings, sink, host);
    },
    snapshotGuest(state, now, live): CGuestImage<I> {
      const st = state as S;
      return { kind: spec.kind, driver: spec.image(st.drv, live ?? false), guestNow: now - st.away, channels: st.channels.map((ch) => ({ ch })), probed: st.probed, ...spec.extra?.(st) };
    },
    reviveGuest(image, now) {
      // Invariant: every field is checked before anything is built, so a bad image leaves the VM (and the spare) as they were.
      const img = image as (Partial<CGuestImage<I>> & Record<string, unknown>) | null;
      if (typeof img !== 'object' || img === null || img.kind !== spec.kind) return bad(`is not a ${spec.title}'s (kind ${spec.kind})`);
      if (typeof img.guestNow !== 'number' || !Number.isFinite(img.guestNow) || img.guestNow < 0 || img.guestNow > now) return bad(`clock ${String(img.guestNow)} is not a time before now (${now})`);
      if (!Array.isArray(img.channels) || img.channels.length === 0 || img.channels.length > max || !img.channels.every((c) => isChannelId(c?.ch)) || new Set(img.channels.map((c) => c.ch)).size !== img.channels.length) {
        return bad(max === Infinity ? 'channels are not a list of distinct channel ids' : `channels are not a list of 1 to ${max} distinct channel ids`);
      }
      if (typeof img.probed !== 'boolean') return bad('probed is not a boolean');
      spec.check?.(img, bad);
      const st = spec.state(now - img.guestNow, img.channels.map((c) => c.ch), img.probed, img);
      st.load(spec.revive(guestClock(st), img.driver, spare));
      spare = undefined;
      spec.checkRevived?.(st, bad);
      return st;
    },
    discardGuest(state) {
      spare = (state as S).discard();
    },
  };
}

/**
 * The lines of a driver's trace (its JSON Lines), into the run's trace in order, without
 * the driver's own v/seq/src. Returns how many were sends given up (`pkt.timeout`).
 */
export function emitDriverTrace(sink: TraceSink, text: string): number {
  let gaveUp = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const { v: _v, seq: _seq, src: _src, ...body } = parseJsonExact(line) as Record<string, unknown>;
    if (body['ev'] === 'pkt.timeout') gaveUp++;
    sink.emit(body as unknown as EventBody);
  }
  return gaveUp;
}

/** Linux's EAGAIN: what a Linux driver's send returns when it gave up on a full ring. */
const EAGAIN = 11;

/**
 * The GuestDriver face of a C guest driver over one run's rings: what the faces share.
 * Invariant: the driver's trace reaches the run's trace after every entry into the driver
 * (`drain`), before the scheduler does anything else, so events are in the order they happened.
 */
export abstract class CVmGuestBase<D, S extends CGuestState<D>> extends CDriverFace implements GuestDriver {
  protected readonly st: S;
  protected readonly rings: GuestRings;
  protected readonly sink: TraceSink;
  protected readonly host: HostDoorbell;
  protected readonly ctl: CGuestControl;

  constructor(st: S, rings: GuestRings, sink: TraceSink, host: HostDoorbell, ctl: CGuestControl) {
    super();
    this.st = st;
    this.rings = rings;
    this.sink = sink;
    this.host = host;
    this.ctl = ctl;
  }

  get state(): unknown {
    return this.st;
  }

  /** How channel `ch`'s driver side signals the host. */
  protected doorbell(ch: number): (w: 'interrupt' | 'writable') => void {
    return (w) => (w === 'interrupt' ? this.host.interrupt(ch) : this.host.writable(ch));
  }

  /** The trace text the driver wrote since the last read ('' if none), read as the lab reads it. */
  protected abstract readTrace(): string;

  /** One line of the command language into the driver: null when it took it, else how it refused (`errno 22`). */
  protected abstract runLine(line: string): string | null;

  /** After every drain (the trace read or not): the face's own bookkeeping. */
  protected afterDrain(): void {}

  /** The trace lines the driver wrote since the last read, into the run's trace in order. */
  protected drain(): void {
    const text = this.readTrace();
    if (text) this.gaveUp += emitDriverTrace(this.sink, text);
    this.afterDrain();
  }

  /** Sends the driver traced as given up (`pkt.timeout`) so far, in this face. */
  private gaveUp = 0;

  /**
   * One line of the command language; a refused command is an error naming it, unless
   * `excused` takes the refusal (read after the driver's trace is drained).
   */
  protected command(line: string, excused: (refused: string) => boolean = () => false): void {
    const refused = this.runLine(line);
    this.drain();
    if (refused !== null && !excused(refused)) throw new Error(`the C guest driver refused '${line}' with ${refused}`);
  }

  /** The control's `begin` lines for the guest, once the channels are probed (as a lab job starts). */
  protected begin(): void {
    this.st.probed = true;
    for (const b of this.ctl.begin ?? []) if (b.to === 'guest') this.command(b.line);
  }

  /** The command language's line for a guest send, as the lab's control tool sends it. */
  protected sendLine(ch: number, kind: 'request' | 'notify', count: number, size: number, mode: 'inline' | 'deferred' | 'hold', vspHold: number): string {
    const step: TrafficStep = kind === 'request'
      ? { op: 'guest-send', channel: ch, count, size, mode, hold: vspHold }
      : { op: 'notify', channel: ch, dir: 'g2h', count, size };
    return this.ctl.command(step).line;
  }

  send(ch: number, kind: 'request' | 'notify', count: number, size: number, mode: 'inline' | 'deferred' | 'hold', vspHold: number): void {
    const before = this.gaveUp;
    // A Linux driver whose ring stayed full for its send timeout gives up: it traces
    // pkt.timeout and its control write fails with -EAGAIN; the step's other packets are
    // never sent. That is the driver's documented behaviour, which bench check models,
    // not a refused command. Any other refusal is an error naming it.
    this.command(this.sendLine(ch, kind, count, size, mode, vspHold), (refused) => refused === `errno ${EAGAIN}` && this.gaveUp > before);
  }

  abstract signal(ch: number, what: 'interrupt' | 'writable'): void;
  abstract canFlush(ch: number): boolean;
  abstract flushOne(ch: number): void;
  abstract canDeliver(ch: number): boolean;
  abstract deliverOne(ch: number, now: number): void;
  abstract nextDue(ch: number): number | null;
  abstract completeDue(ch: number, now: number): boolean;
  abstract pending(): number;
}
