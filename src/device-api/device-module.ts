// The device module interface: what the bench needs to know of a device (a VSP in the
// host and its driver in the guest) to test it. A scenario or a lab file names a module by
// path (`device: ./devices/my-device/device.ts`); the module's default export is a
// DeviceModule. The core imports no device: the sample device (devices/sample) is one
// module among others, loaded by path like any user's (load.ts).
//
// A module says:
//  - how the scenario's traffic steps reach the device: on the emulator, through its
//    TypeScript twins (`emulator`); on a real lab, through its control interface, as
//    command lines for the VSP's and the guest driver's control channels (`control`);
//  - which packets want completions (`completions`);
//  - its rule for completion statuses (`statusRule`), or `opaque`: then only the
//    device-independent properties are checked (src/check/properties-only.ts), and every
//    report says the payload and status rules were not.
//
// The twins' payloads are the device's payload rule: `bench check` replays a real trace
// on them and compares every digest. A module without twins can still be checked, opaque.

import type { TxId } from '../vmbus/tx-id.ts';
import type { Channel } from '../vmbus/channel.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { Faults } from '../vmbus/faults.ts';
import type { IncomingRing, OutgoingRing } from '../vmbus/ring.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { StateKey } from '../scenario/state-key.ts';
import type { KmclShimOptions } from '../devices/wasm/kmcl-shim.ts';

/** Answers a C Windows driver's KMCL gives as a Driver-Verifier-style run injects them (KmclShimOptions.faults). */
export type KmclFaults = NonNullable<KmclShimOptions['faults']>;

/**
 * A test's removal race for a C Windows guest (ExecuteOptions.cGuestRemovalRace): at each
 * host rescind, KMCL suspends and closes the rescinded client first, then the control tool's
 * guest-send of `count` Requests of `size` bytes reaches the channel's device, then PnP
 * removes the device. `answered` is told the line and the NTSTATUS the command completed with.
 */
export interface RemovalRace {
  count: number;
  size: number;
  answered?: ((ch: number, line: string, status: number) => void) | undefined;
}

/** A traffic step of a scenario, as a device receives it (scenario/model.ts, StepSchema). */
export type TrafficStep =
  | { op: 'guest-send'; channel: number; count: number; size: number; mode: 'inline' | 'deferred' | 'hold'; hold: number }
  | { op: 'host-send'; channel: number; count: number; size: number; hold: number }
  | { op: 'notify'; channel: number; dir: 'g2h' | 'h2g'; count: number; size: number };

/**
 * A device's rule for the status its receiver completes a transaction with, as the trace's
 * 8 hex digits; `payloadIntact`: the receiver got the bytes the sender sent.
 */
export type StatusRule = (tx: TxId, payloadIntact: boolean) => string;

export interface DeviceModule {
  /** names the device in messages and reports: letters, digits, dot, dash, underscore */
  name: string;
  /** the message sizes (bytes, the device's own header included) a traffic step may ask for */
  messageSize: { min: number; max: number };
  /**
   * Which packets want a completion: a guest request, a host transaction. Notifies never
   * do. A scenario that holds a packet which wants none is refused (exit 2).
   */
  completions: { guestSend: boolean; hostSend: boolean };
  /** the status rule, or 'opaque': only the device-independent properties are checked */
  statusRule: StatusRule | 'opaque';
  /** the emulator's side: the TypeScript twins (absent: the device runs on real labs only) */
  emulator?: EmulatorDevice | undefined;
  /**
   * the real lab's side: traffic steps, channel operations and counters through the
   * drivers' control interfaces. A real lab refuses a device without it, or whose
   * control has no `tool` (exit 2: `noLabControl`).
   */
  control?: DeviceControl | undefined;
}

// ------------------------------------------------------------------ the real lab's side

/**
 * A channel operation, as a line for the VSP's control interface: a loopback job's VM
 * operations become these (src/run/real/loopback-lab.ts), and the probe uses them.
 * `open` offers channel `ch` with `instance` (DeviceControl.channelInstance) and
 * `ringPages` host-to-guest ring pages, as a loopback offer (its client in the host) or
 * for a VM; `forceNewChannel`: the offer asks for VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL.
 * `save` pauses and saves (SaveBegin/Continue/End) and keeps the server object; `detach`
 * then lets it go, as a saved VM's host side does; `restore` makes a new server object
 * from the save, not yet offered; `resume` offers (after a restore) and starts it;
 * `pause` stops it without saving; `close` disables and cleans it up; `discard` lets it
 * go when its VM went away unsaved (a checkpoint applied over it), tracing nothing of it;
 * `rescind` revokes the offer (the transactions in flight end cancelled), after which
 * `open` offers the channel's new instance. The emulator's C adapters send these same
 * lines, so a lab job and the bench's scenarios speak to a VSP alike.
 */
export type ChannelOp =
  | { op: 'open'; ch: number; instance: string; ringPages: number; loopback: boolean; forceNewChannel?: boolean | undefined }
  | { op: 'save' | 'detach' | 'restore' | 'resume' | 'pause' | 'close' | 'discard' | 'rescind'; ch: number };

/** A driver's counters as its control tool prints them. */
export interface DriverCounters {
  /** the seq of the last trace event the driver wrote (the bench marks its own events with it); undefined: the output has none */
  traceSeq: number | undefined;
  /** per channel: `sent`, the transactions wanting a completion this driver sent; `completed`, how many of them got one */
  channels: Map<number, { sent: number; completed: number }>;
}

/**
 * A verb of the device's control tool, a program on Windows (the host; a Windows guest):
 * `command` one line to a driver's control interface; `counters` its counters (parsed by
 * DeviceControl.counters); `trace` the driver's own trace buffer written to `file` as
 * JSON Lines; `convert-etl` an ETW capture of the VSP package's provider (trace.format
 * etw, captured by the bench with logman) converted to JSON Lines. Exit code 0: done.
 */
export type ToolVerb =
  | { verb: 'command'; who: 'vsp' | 'guest'; line: string }
  | { verb: 'counters'; who: 'vsp' | 'guest' }
  | { verb: 'trace'; who: 'guest'; file: string }
  | { verb: 'convert-etl'; etl: string; jsonl: string };

/**
 * On a real lab: how the bench drives the device's drivers. `guest` is the guest driver
 * (in a VM, or a loopback job's client in the host); `vsp` the host's VSP.
 * Invariant: channelInstance is one-to-one on channel numbers (0..0xffff), so a VM's
 * channels never share an instance id.
 */
export interface DeviceControl {
  /** which control interface a traffic step goes to, and the line it sends */
  command(step: TrafficStep): { to: 'vsp' | 'guest'; line: string };
  /** the instance GUID the VSP offers channel `ch` with (the guest driver binds it) */
  channelInstance(ch: number): string;
  /** a channel operation as a line for the VSP's control interface */
  channel(op: ChannelOp): string;
  /** a driver's counters from the lines its control tool printed */
  counters(who: 'vsp' | 'guest', lines: readonly string[]): DriverCounters;
  /**
   * The control tool on Windows: `program` is where the lab installs it (the CLI's
   * BENCH_CONTROL_TOOL overrides it), `args` the arguments of each verb. Values reach
   * the host as data (one quoting function), never spliced into a command line.
   * Absent: the device has no such tool (a device for the emulator only), so a real
   * lab, whose host side reaches the VSP only through it, refuses the device (exit 2);
   * the emulator's C drivers and a Linux guest's control file need none.
   */
  tool?: { program: string; args(v: ToolVerb): string[] } | undefined;
  /**
   * A Linux guest driver's control file (debugfs): each line is one write to it, as root
   * when its package says sudo. `fullRing`: what the driver's send does when the ring has no
   * room, as bench check must model it (src/check/replay.ts GuestSends): `wait` (the
   * default: vmbus_sendpacket fails with -EAGAIN and has no queue, so the driver sleeps
   * until the host reads, as the sample's and blockq's do) or `queue` (a driver that keeps
   * its own queue and returns).
   */
  linuxGuest?: { controlFile: string; fullRing?: 'wait' | 'queue' | undefined } | undefined;
  /** How many channels one loopback job's client (the guest driver in the host) serves; absent: any number; 0: the device has no loopback client */
  loopbackChannels?: number | undefined;
  /**
   * How many channels the device's Windows guest driver serves in one VM; absent: any
   * number (the sample's: one PnP device per channel offer). A real lab plans a VM job
   * with a Windows guest and more channels not applicable (src/lab/vm-steps.ts).
   */
  windowsGuestChannels?: number | undefined;
  /** Lines sent once the channels are open, before the first step (settings the scenario's steps rely on) */
  begin?: ReadonlyArray<{ to: 'vsp' | 'guest'; line: string }> | undefined;
  /**
   * How a VM's guest OS lets go of a channel's device and takes it back, for a scenario's
   * `guest-close`, `guest-open` and a `rescind` with `reopen: false` on a real lab. This is
   * the OS's way for any VMBus device, not a line of the driver's: the device is named by
   * its instance GUID (channelInstance). Linux unbinds it from the driver and binds it
   * again (/sys/bus/vmbus/drivers/<linuxDriver>/unbind, bind), and the vmbus core runs the
   * driver's remove (it closes the channel) and probe (it opens it); a held new offer is
   * the bus's drivers_autoprobe set to 0 until the bind. Windows disables and enables the
   * PnP device (Disable-PnpDevice, Enable-PnpDevice), which unloads and starts the
   * driver's device; `windowsPnp` also says the driver's trace outlives its device (a
   * Windows guest's rescind removes the device too, so a rescind needs it there). A
   * guest OS without an entry here: those steps are refused on a real lab (exit 2, before
   * any host is contacted). On Linux a rescind the guest reopens needs nothing here: the
   * vmbus core removes and probes the device by itself.
   */
  guestUnbind?: { linuxDriver?: string | undefined; windowsPnp?: boolean | undefined } | undefined;
}

/** A device's control with its tool: what a real lab's host side drives. */
export type ToolControl = DeviceControl & { tool: NonNullable<DeviceControl['tool']> };

/** Whether a real lab can drive the device's host side: it has a control, and the control a tool. */
export function hasTool(c: DeviceControl | undefined): c is ToolControl {
  return c?.tool !== undefined;
}

/** Why a real lab cannot drive the device, in parentheses after "has no control interface ...", or null when it can. */
export function noLabControl(m: Pick<DeviceModule, 'control'>): string | null {
  if (!m.control) return ' (its module has no "control")';
  if (!m.control.tool) return ' (its control has no "tool": no program reaches its VSP from user mode on a host)';
  return null;
}

// ------------------------------------------------------------------ the emulator's side

/** What a host VSP twin is given: one channel of one VM, on one emulated host. */
export interface HostVspOptions {
  ch: number;
  /** the channel's instance id, unique within the VM */
  instance: string;
  choices: GapChoices;
  sink: TraceSink;
  /** the emulator's clock, ms */
  now: () => number;
  /** bytes per VmbChannelSaveContinue call */
  saveBufferSize: number;
  /** incoming transaction quota; undefined: none */
  quota?: number | undefined;
  /** platform bugs the run imitates: hand them to the channel (`channel.faults = faults`) */
  faults: Faults;
  /** the channel's first descriptor transaction id (`channel.nextTransId`), when the scenario sets one */
  firstTransId?: TxId | undefined;
}

/** What a twin's delivery would write first (trace validation asks before delivering). */
export interface DeliveryPeek {
  ev: 'pkt.recv' | 'pkt.complete' | 'pkt.completion';
  tx: TxId;
  dir: 'g2h' | 'h2g';
}

/** The host VSP twin of one channel: a KMCL server channel (src/vmbus/channel.ts) and the VSP around it. */
export interface HostVsp {
  readonly channel: Channel;
  /** VmbChannelEnable and start: the channel is offered */
  enable(): void;
  /** a host-send (`transaction`) or h2g notify step: `count` messages with tx numbers from `firstTx` */
  send(kind: 'transaction' | 'notify', firstTx: TxId, count: number, size: number, guestHold: number): void;
  /** when the next held request is due (emulator ms), null when none is held */
  nextDue(): number | null;
  /** completes the earliest held request if due; false if none is */
  completeDue(now: number): boolean;
  /** replay: whether the request of `tx` is held */
  isHeld(tx: TxId): boolean;
  /** replay: completes the held request of `tx` now (a real trace decides when) */
  completeHeld(tx: TxId): boolean;
  /** replay: the first event the next delivery would write */
  peekDelivery(): DeliveryPeek | null;
  /** pause, then SaveBegin / SaveContinue* / SaveEnd: the filled buffers */
  save(): Uint8Array[];
  /**
   * After a save of a VM that goes on running (a checkpoint under runningCheckpoint
   * save-and-continue): VmbChannelStart on the same channel object; nothing is restored
   */
  resume(): void;
  /** RestoreFromBuffer with each saved buffer, in order, before the channel is enabled */
  restore(buffers: readonly Uint8Array[]): void;
  /** Disable + Cleanup; `discard`: the VM goes with it, nothing completed now is traced */
  teardown(opts: { discard: boolean }): void;
  /**
   * Optional: the device control's `begin` lines to the VSP (DeviceControl.begin, `to:
   * 'vsp'`), once per VSP driver, as a lab job sends them: the executor calls it on every
   * channel's face once the scenario's channels are open, before the first step. A C VSP's
   * face has it (c-host-channel.ts); a twin takes no control lines.
   */
  begin?(): void;
  /**
   * Optional: the host rescinds this channel instance (the bench has written `ch.rescind`;
   * lab/drivers/PROTOCOL.md "Rescind and re-offer"). The VSP ends what it still owns: the
   * packets a failed restore left it (freed), and through VmbChannelDisable every
   * transaction queued or awaiting its completion, each one that wanted a completion
   * traced as `pkt.cancel` with the status its completion routine got; then
   * VmbChannelCleanup. The re-offer is a new object. A device without it cannot run a
   * rescind, a failing restore or forceNewChannel (refused, exit 2).
   */
  rescind?(): void;
  /**
   * Optional (with retireClosed): the guest closed this channel (`guest-close`;
   * lab/drivers/PROTOCOL.md "Guest close"): the partition's close of a server channel
   * (Channel.peerClosed: Suspend, then Closed). A device without both cannot run a guest
   * close (refused, exit 2).
   */
  guestClosed?(): void;
  /**
   * Optional (with guestClosed): after the guest ended its own requests, the VSP retires
   * what it had outstanding on the closed channel, each transaction that wanted a
   * completion traced as `pkt.cancel`; the object stays, for the guest to open again.
   */
  retireClosed?(): void;
  /**
   * Optional, for a VSP whose restore-packet callback the bench cannot wrap (a C driver's
   * lives inside its module): its next restore refuses its saved state from the second
   * packet on, as a scenario's `restore` with `fail` makes a twin's callback do.
   */
  refuseRestoreFromSecondPacket?(): void;
  /**
   * Optional: keys a packet's context (VmbPacketGetPointer) for explore's state key, faster
   * than the generic walk. Must key every field that decides what the VSP does next.
   */
  keyContext?(k: StateKey, pointer: unknown): void;
  /**
   * Optional, for explore's state key: keyers of its own for objects the generic walk
   * must not take field by field (by the object), as GuestDriver.keyers. A VSP whose
   * state is not plain objects (a C driver's linear memory) registers itself here.
   */
  keyers?(add: (object: object, key: (k: StateKey) => void) => void): void;
}

/** Signals from the guest driver to the host side of one channel. */
export interface HostDoorbell {
  interrupt(ch: number): void;
  writable(ch: number): void;
  /**
   * The guest's thread sleeps inside a call (a C driver waiting for ring space): the host
   * side runs one piece of its ready work meanwhile, as another processor would, or with
   * none ready the run's clock moves on a millisecond. False when there is no host (the VM
   * is saved). (The twins never sleep: they queue.)
   */
  runHost?(): boolean;
}

/** A channel's two rings as the guest sees them, in guest memory. */
export type GuestRings = Map<number, { out: OutgoingRing; in: IncomingRing }>;

/**
 * The running guest driver twin. Its state (`state`) is plain data, because it is guest
 * memory: a saved VM, a checkpoint or a migration carries it, and applying a checkpoint
 * puts an older copy back.
 */
export interface GuestDriver {
  readonly state: unknown;
  /** the host signalled the channel */
  signal(ch: number, what: 'interrupt' | 'writable'): void;
  /** a guest-send (`request`) or g2h notify step */
  send(ch: number, kind: 'request' | 'notify', count: number, size: number, mode: 'inline' | 'deferred' | 'hold', vspHold: number): void;
  canFlush(ch: number): boolean;
  flushOne(ch: number): void;
  /**
   * Optional: how many of channel `ch`'s sends wait in the driver's queue behind a full
   * ring. bench check's model of a guest whose send waits for room (a Linux driver's) runs
   * a send step until none does; without it, such a check is refused.
   */
  queued?(ch: number): number;
  /**
   * Optional: the driver gives up the sends waiting in its queue on channel `ch` (bench
   * check's model of a Linux driver whose send timed out: it traced `pkt.timeout` for the
   * first and never tried the rest). They never reach the ring, their transactions are not
   * awaited, and their ids are not used: the channel's next send takes the first of them,
   * as the Linux driver's does. Without it, a traced give-up is refused.
   */
  abandonQueued?(ch: number): void;
  canDeliver(ch: number): boolean;
  deliverOne(ch: number, now: number): void;
  nextDue(ch: number): number | null;
  completeDue(ch: number, now: number): boolean;
  isHeld(ch: number, tx: TxId): boolean;
  completeHeld(ch: number, tx: TxId): boolean;
  peekDelivery(ch: number): DeliveryPeek | null;
  /** transactions awaiting a completion, held or queued: work that must still finish */
  pending(): number;
  /**
   * Optional (with reopen): the host rescinded channel `ch`. The driver closes it (guest
   * `ch.state` Closed), reads nothing more from its rings, and ends what it had in flight
   * under its protocol's rule (each request that wanted a completion and got none:
   * `pkt.cancel`, never resent). The bench calls it for the guest's own close too (scenario
   * op `guest-close`, after the host channel's Closed), which asks the same of the driver;
   * `cause` says which (absent: the host's rescind), for a guest whose OS ends the two
   * differently (the C Windows guest's removal race, RemovalRace).
   */
  rescind?(ch: number, cause?: 'host' | 'guest'): void;
  /** Optional (with rescind): the driver opens the channel's new instance on `rings` (Opened, Active). */
  reopen?(ch: number, rings: { out: OutgoingRing; in: IncomingRing }): void;
  /** Optional (with rescind): the driver has channel `ch` closed, no new instance opened (its state says, as guest memory does) */
  isClosed?(ch: number): boolean;
  /**
   * Optional: the driver opens the channels the host has just offered itself, tracing
   * their states (a C driver's probe). Absent: the bench traces `Opened` and `Active`
   * for it, as the twins open a channel without code of their own.
   */
  probe?(): void;
  /**
   * Optional, for explore's state key: fast keyers for large collections in `state`
   * (by the collection object), and how each channel's ring reader waits (readerWake in
   * src/scenario/run-key.ts): the object holding its `draining` and `interrupt` fields.
   */
  keyers?(add: (collection: object, key: (k: StateKey) => void) => void): void;
  ringReaders?(): Iterable<{ ch: number; holder: object; draining: boolean; interrupt: boolean }>;
}

/** The guest side of an emulator device: how its guest driver is made, saved and revived. */
export type EmulatorGuest = Pick<EmulatorDevice, 'newGuestState' | 'guest' | 'snapshotGuest' | 'reviveGuest' | 'discardGuest'> & {
  /**
   * Optional (a C guest): what of scenario `s` this guest cannot run, as the field to name
   * (and the step's index, for a step) and why; null when it runs all of it. The bench
   * refuses the scenario with exit 2 before anything runs.
   */
  refuses?(s: { channels: ReadonlyArray<{ id: number; forceNewChannel?: boolean | undefined }>; steps: ReadonlyArray<{ op: string }> }): { field: string; step?: number; reason: string } | null;
};

export interface EmulatorDevice {
  /** the host VSP twin of one channel */
  hostVsp(opts: HostVspOptions): HostVsp;
  /** a new guest driver's state; `firstTx[i]`: channel i's first tx and descriptor transaction id */
  newGuestState(channels: readonly number[], firstTx: readonly TxId[]): unknown;
  /** the guest driver over its state and its rings */
  guest(state: unknown, rings: GuestRings, sink: TraceSink, host: HostDoorbell): GuestDriver;
  /**
   * The guest's state as a saved VM holds it, at time `now` (plain data, structured-clonable).
   * `live`: the caller encodes it before the guest runs again (the executor's save, whose
   * encodeSavedVm copies it into the blob), so its bytes may be live views of the guest's
   * own memory rather than copies.
   */
  snapshotGuest(state: unknown, now: number, live?: boolean): unknown;
  /**
   * Back from a saved image at time `now`. A malformed image throws a RestoreError
   * (src/vmbus/saved-state.ts), so a bad blob is refused with the VM as it was.
   */
  reviveGuest(image: unknown, now: number): unknown;
  /**
   * Optional: the run will not use this guest state again (a restore replaced it with a
   * revived one). Its resources may go to the next revive (a C guest's instance, reset
   * in place rather than instantiated anew); the state itself must not be used after.
   */
  discardGuest?(state: unknown): void;
  /**
   * Optional: the host VSP built from C for WebAssembly (`devices: c`), one driver per host
   * name that outlives the VM's host objects. Returns the VSP of one channel.
   */
  cHost?(hostName: string, opts: HostVspOptions & { h2gPages: number; drivers: Map<string, unknown>; replace?: Readonly<Record<string, string>> | undefined; forceNewChannel: boolean }): HostVsp;
  /**
   * Optional (with cHost), for explore's walk: keys one of cHost's drivers, everything
   * that decides what it does next and nothing that only names (addresses, handles).
   * Without it, explore runs every `devices: c` schedule from the start.
   */
  keyDriver?(k: StateKey, driver: unknown): void;
  /**
   * Optional: the guest driver built from C for WebAssembly (`devices: c-linux`,
   * `c-windows`), in place of the twin's guest side for one run. Its state is the driver
   * itself (its linear memory and the shim's tables); `snapshotGuest` copies it whole and
   * `reviveGuest` builds the driver again from a copy. `now`: the run's clock; `choices`:
   * the run's documented-gap choices (a guest's KMCL client follows them; absent: the defaults). A device
   * without a C guest for `os` throws an InputError naming it.
   */
  cGuest?(os: 'linux' | 'windows', opts: { now: () => number; choices?: GapChoices | undefined; replace?: Readonly<Record<string, string>> | undefined; kmclFaults?: KmclFaults | undefined; removalRace?: RemovalRace | undefined }): EmulatorGuest;
}

/**
 * What a twin throws when a KMCL call it makes fails (a restore from a bad saved stream,
 * say). The emulator turns one thrown by a restore into a refused blob (RestoreError).
 */
export class DeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceError';
  }
}

/**
 * The control's `begin` lines to one driver, in their order: what a lab job sends it once
 * the channels are open (src/run/real/real-job.ts), and what the emulator's C VSP gets at
 * the same point (its host face, c-host-channel.ts).
 */
export function beginLines(control: Pick<DeviceControl, 'begin'>, to: 'vsp' | 'guest'): string[] {
  return (control.begin ?? []).filter((b) => b.to === to).map((b) => b.line);
}
