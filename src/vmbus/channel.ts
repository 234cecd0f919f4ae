// A KMCL channel endpoint: the object behind a VMBCHANNEL handle (SPEC-NOTES 2-4).
//
// One class serves both ends: the server (the VSP in the host) and the client (the
// guest's driver). Server-only calls check `isServer`. Calls return NTSTATUS and do not
// throw for the failures the documentation lists; misuse that would bugcheck a real
// system (Start before Enable, Cleanup while enabled, DeferToPassive outside
// ProcessPacket) throws KmclUsageError, because it is a bug in the calling driver.
//
// Nothing here runs on its own: the partition's scheduler asks each endpoint what it
// could do next (`canDeliver`, `canFlush`) and tells it to do one step. That keeps every
// interleaving a choice of the seeded schedule.
//
// Save/restore of the server's packet state lives in channel-save.ts, the types in
// channel-types.ts. The class is above 400 lines on purpose: it is the one VMBCHANNEL
// object, and its Init setters, lifecycle, send path and receive path all read and keep
// the same private state (queue, awaiting, outstanding, quota); split across files they
// would have to expose it.

import { nextTxId, type TxId } from './tx-id.ts';
import { KMCL_RULES, type KmclRule, type KmclViolation } from './kmcl-rules.ts';
import { IncomingRing, OutgoingRing, type PacketView } from './ring.ts';
import { PACKET_FLAG_COMPLETION_REQUESTED, PacketType, inBandFootprint } from './ring-layout.ts';
import { STATUS, type NtStatus } from './status.ts';
import type { GapChoices } from './choices.ts';
import { NO_FAULTS, type Faults } from './faults.ts';
import { TransactionTable } from './trans-table.ts';
import { fifo, fifoClear, fifoItems, fifoLength, fifoPeek, fifoPush, fifoShift, type Fifo } from './fifo.ts';
import type { IncomingPacket, VmbPacket, CompletionRoutine } from './packet.ts';
import {
  CHANNEL_INIT_FLAGS_MASK,
  KmclUsageError,
  SERVER_INIT_FLAGS_MASK,
  STATE_CALLBACKS_SIZE,
  STATE_CALLBACKS_VERSION,
  stateChangeCallbacksInit,
  type ChannelConfig,
  type ChannelState,
  type ClientInternals,
  type ProcessingCompleteCallback,
  type ProcessPacketCallback,
  type QueuedSend,
  type RestorePacketCallback,
  type SavePacketCallback,
  type StateChangeCallbacks,
} from './channel-types.ts';

export * from './channel-types.ts';
import { FORMAT_FLAGS, FORMAT_FLAG_WAIT_FOR_COMPLETION, createIncoming, createPacket } from './packet.ts';

export class Channel {
  readonly isServer: boolean;
  readonly id: number;
  readonly choices: GapChoices;
  private st: ChannelState = { conn: 'disabled', autoPauseOnEnable: false };
  /** open and active, kept beside the state: every send and delivery asks (saves two string compares). */
  private active = false;
  get state(): ChannelState {
    return this.st;
  }
  set state(s: ChannelState) {
    this.st = s;
    this.active = s.conn === 'open' && s.flow === 'active';
  }
  readonly config: ChannelConfig = {
    maxPacketSize: 0x1000,
    maxExternalData: null,
    clientContextSize: 0,
    flags: 0,
    serverFlags: 0,
    friendlyName: '',
    ringPages: { incoming: 4, outgoing: 4 },
    interfaceType: null,
    interfaceInstance: null,
    vmbusHandle: null,
    targetVtl: 0,
    mmio: null,
  };
  callbacks: StateChangeCallbacks = stateChangeCallbacksInit();
  processPacket: ProcessPacketCallback | null = null;
  processingComplete: ProcessingCompleteCallback | null = null;
  savePacket: SavePacketCallback | null = null;
  restorePacket: RestorePacketCallback | null = null;
  pointer: unknown = null;
  /** Set with VmbChannelStart; a server does not flow until its driver starts it. */
  private startRequested: boolean;

  // Rings, once the connection is open. The partition attaches them.
  outgoing: OutgoingRing | null = null;
  incoming: IncomingRing | null = null;
  /** Delivers a signal to the peer's reader (`interrupt`) or writer (`writable`). */
  signalPeer: (what: 'interrupt' | 'writable') => void = () => {};
  /**
   * Told of each incoming packet the ring stepped over (unknown type or flag, ring.ts):
   * its offset in the data area, type and flags. The driver's trace names it.
   */
  onUnacceptable: ((offset: number, type: number, flags: number) => void) | null = null;

  // Send side.
  readonly queue: Fifo<QueuedSend> = fifo();
  readonly awaiting = new TransactionTable<VmbPacket>();
  /** The next VMBus transaction id this endpoint hands out (exact u64, tx-id.ts). */
  nextTransId: TxId = 1;
  private nextPacketId = 1;
  /** The peer freed space after we advertised a pending send size. */
  writable = false;

  // Receive side.
  /** The peer signalled new data, or we must poll once (after start or restore). */
  interrupt = false;
  private draining = false;
  private batch = 0;
  readonly deferred: IncomingPacket[] = [];
  /** Packets handed to the driver and not yet completed. */
  outstanding = 0;
  quota = 0;
  quotaBlocked = false;
  failed = false;
  /** Set while ProcessPacket runs for this packet: DeferToPassive is only legal then. */
  inProcessPacket: IncomingPacket | null = null;

  readonly counters = { signalsSent: 0, packetsDelivered: 0, completionsReceived: 0, unknownCompletions: 0, skippedPackets: 0 };
  /** Platform bugs to imitate (faults.ts); none unless a run switches them on. */
  faults: Faults = NO_FAULTS;
  /**
   * Told of each KMCL rule the driver breaks (kmcl-rules.ts) before the call throws, so
   * the driver's trace can name it (kmcl.violation), as Driver Verifier names a rule break.
   */
  onMisuse: ((v: KmclViolation) => void) | null = null;
  /** State-change callbacks running now (Start and Pause are refused inside one: E2). */
  private inCallback = 0;
  /** EvtVmbChannelSuspend has run and the channel has not started again: sends are refused (E3). */
  private suspended = false;
  /** Inside EvtVmbChannelSuspend under suspendCompletions write-to-ring: completions still go to the ring (E4). */
  private completingInSuspend = false;
  /**
   * Pause (or Disable) is waiting for incoming packets the driver still held after
   * EvtVmbChannelSuspend: KMCL blocks there until they are completed, which a driver may
   * do asynchronously (REVIEW E1). The emulator cannot block, so the call returns and the
   * channel stays "pausing" until the last one is completed; nothing is delivered
   * meanwhile, and SaveBegin is refused as it would not be called yet.
   */
  private pausing = false;
  /** Packets allocated and not yet freed, by id (a leak at Cleanup names the first: E7). */
  readonly livePackets = new TransactionTable<VmbPacket>();

  constructor(isServer: boolean, id: number, choices: GapChoices) {
    this.isServer = isServer;
    this.id = id;
    this.choices = choices;
    // Client: Enable implicitly starts the channel (SPEC-NOTES 2.4).
    this.startRequested = !isServer;
  }

  /** A driver broke KMCL rule `rule` in `call`: tell onMisuse, then stop the call (a bugcheck on a real system). */
  private misuse(rule: KmclRule, call: string, why: string, packet: VmbPacket | null = null): never {
    const v: KmclViolation = { rule, call, ch: this.id, packet: packet?.id ?? 0, message: why };
    this.onMisuse?.(v);
    throw new KmclUsageError(call, `${why}: ${KMCL_RULES[rule].rule}`, v);
  }

  /** Runs a state-change callback, marking that one is running. */
  private inStateCallback<T>(f: () => T): T {
    this.inCallback++;
    try {
      return f();
    } finally {
      this.inCallback--;
    }
  }

  // ---------------------------------------------------------------- Init setters
  // Each returns STATUS_INVALID_PARAMETER_1 when the channel is not in its
  // initialisation state (Disabled), _2/_3 for a bad second/third argument.

  private initCheck(serverOnly = false, clientOnly = false): NtStatus {
    if (this.state.conn !== 'disabled') return STATUS.INVALID_PARAMETER_1;
    if (serverOnly && !this.isServer) return STATUS.INVALID_PARAMETER_1;
    if (clientOnly && this.isServer) return STATUS.INVALID_PARAMETER_1;
    return STATUS.SUCCESS;
  }

  initSetMaximumPacketSize(size: number): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    if (!Number.isInteger(size) || size <= 0) return STATUS.INVALID_PARAMETER_2;
    this.config.maxPacketSize = size;
    return STATUS.SUCCESS;
  }

  initSetMaximumExternalData(size: number, chainLength: number): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    if (!(size > 0)) return STATUS.INVALID_PARAMETER_2;
    if (!(chainLength > 0)) return STATUS.INVALID_PARAMETER_3;
    this.config.maxExternalData = { size, chain: chainLength };
    return STATUS.SUCCESS;
  }

  initSetClientContextSize(size: number): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    this.config.clientContextSize = size;
    return STATUS.SUCCESS;
  }

  initSetProcessPacketCallbacks(pp: ProcessPacketCallback | null, pc?: ProcessingCompleteCallback | null): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    if (!pp) return STATUS.INVALID_PARAMETER_2;
    this.processPacket = pp;
    this.processingComplete = pc ?? null;
    return STATUS.SUCCESS;
  }

  initSetStateChangeCallbacks(cb: StateChangeCallbacks): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    if (cb.version !== STATE_CALLBACKS_VERSION || cb.size !== STATE_CALLBACKS_SIZE) return STATUS.INVALID_PARAMETER_2;
    this.callbacks = cb;
    return STATUS.SUCCESS;
  }

  initSetFriendlyName(name: string): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    this.config.friendlyName = name;
    return STATUS.SUCCESS;
  }

  initSetFlags(flags: number): NtStatus {
    const s = this.initCheck();
    if (s !== STATUS.SUCCESS) return s;
    if ((flags & ~CHANNEL_INIT_FLAGS_MASK) !== 0) return STATUS.INVALID_PARAMETER_2;
    this.config.flags = flags;
    return STATUS.SUCCESS;
  }

  clientInitSetRingBufferPageCount(incoming: number, outgoing: number): NtStatus {
    const s = this.initCheck(false, true);
    if (s !== STATUS.SUCCESS) return s;
    if (!Number.isInteger(incoming) || incoming < 1) return STATUS.INVALID_PARAMETER_2;
    if (!Number.isInteger(outgoing) || outgoing < 1) return STATUS.INVALID_PARAMETER_3;
    this.config.ringPages = { incoming, outgoing };
    return STATUS.SUCCESS;
  }

  clientInitSetTargetPnp(interfaceType: string, interfaceInstance: string | null): NtStatus {
    const s = this.initCheck(false, true);
    if (s !== STATUS.SUCCESS) return s;
    if (!interfaceType) return STATUS.INVALID_PARAMETER_2;
    this.config.interfaceType = interfaceType;
    this.config.interfaceInstance = interfaceInstance;
    return STATUS.SUCCESS;
  }

  serverInitSetTargetInterfaceId(interfaceType: string, interfaceInstance: string): NtStatus {
    const s = this.initCheck(true);
    if (s !== STATUS.SUCCESS) return s;
    if (!interfaceType) return STATUS.INVALID_PARAMETER_2;
    if (!interfaceInstance) return STATUS.INVALID_PARAMETER_3;
    this.config.interfaceType = interfaceType;
    this.config.interfaceInstance = interfaceInstance;
    return STATUS.SUCCESS;
  }

  serverInitSetFlags(flags: number): NtStatus {
    const s = this.initCheck(true);
    if (s !== STATUS.SUCCESS) return s;
    if ((flags & ~SERVER_INIT_FLAGS_MASK) !== 0) return STATUS.INVALID_PARAMETER_2;
    this.config.serverFlags = flags;
    return STATUS.SUCCESS;
  }

  serverInitSetMmioMegabytes(megabytes: number, optional: number): NtStatus {
    const s = this.initCheck(true);
    if (s !== STATUS.SUCCESS) return s;
    if (megabytes === 0 && optional === 0) return STATUS.INVALID_PARAMETER;
    this.config.mmio = { megabytes, optional };
    return STATUS.SUCCESS;
  }

  serverInitSetTargetVtl(vtl: number): NtStatus {
    const s = this.initCheck(true);
    if (s !== STATUS.SUCCESS) return s;
    if (!Number.isInteger(vtl) || vtl < 0 || vtl > 2) return STATUS.INVALID_PARAMETER_2;
    this.config.targetVtl = vtl;
    return STATUS.SUCCESS;
  }

  serverInitSetVmbusHandle(handle: unknown): NtStatus {
    const s = this.initCheck(true);
    if (s !== STATUS.SUCCESS) return s;
    if (handle === null || handle === undefined) return STATUS.INVALID_PARAMETER_2;
    this.config.vmbusHandle = handle;
    return STATUS.SUCCESS;
  }

  serverInitSetSaveRestorePacketCallbacks(save: SavePacketCallback | null, restore: RestorePacketCallback | null): NtStatus {
    const s = this.initCheck(true);
    if (s !== STATUS.SUCCESS) return s;
    if (!save) return STATUS.INVALID_PARAMETER_2;
    if (!restore) return STATUS.INVALID_PARAMETER_3;
    this.savePacket = save;
    this.restorePacket = restore;
    return STATUS.SUCCESS;
  }

  setTransactionQuota(quota: number): void {
    if (!(quota > 0)) this.misuse('bad-quota', 'VmbChannelSetTransactionQuota', `quota ${quota}`);
    // Lowering the quota only stops dequeuing; raising it does not restart a blocked
    // queue: only a completion does (SPEC-NOTES 3).
    this.quota = quota;
    if (this.quotaReached()) this.quotaBlocked = true;
  }

  // ---------------------------------------------------------------- lifecycle

  /** VmbChannelEnable: offer (server) or accept/wait (client). Does not wait for the peer. */
  enable(): NtStatus {
    if (this.state.conn !== 'disabled') this.misuse('wrong-state', 'VmbChannelEnable', `channel is ${this.state.conn}, not disabled`);
    if (!this.processPacket) return STATUS.INVALID_PARAMETER_1;
    if (!this.config.interfaceType) return STATUS.INVALID_PARAMETER_1;
    // A client starts on Enable, each time (SPEC-NOTES 2.4); a server waits for Start.
    if (!this.isServer) this.startRequested = true;
    if (this.state.autoPauseOnEnable) this.startRequested = false;
    this.state = { conn: 'enabled' };
    return STATUS.SUCCESS;
  }

  /** Called by the partition when the connection opens. Runs Opened, then starts the flow if requested. */
  connectionOpened(out: OutgoingRing, inc: IncomingRing, opts: { restored: boolean }): NtStatus {
    if (this.state.conn !== 'enabled' && this.state.conn !== 'closed') {
      throw new KmclUsageError('open', `channel is ${this.state.conn}`);
    }
    this.outgoing = out;
    this.incoming = inc;
    inc.onUnacceptable = (offset, type, flags) => {
      this.counters.skippedPackets++;
      this.onUnacceptable?.(offset, type, flags);
    };
    inc.inclusiveThreshold = this.choices.pendingSendThreshold === 'greater-or-equal';
    const skipOpened = opts.restored && this.choices.restoreCallbacks === 'started-only';
    const opened = this.callbacks.opened;
    if (!skipOpened && opened) {
      const st = this.inStateCallback(() => opened(this));
      if ((st | 0) < 0) {
        // The documentation only says the channel goes back to a no-traffic state (gap).
        this.outgoing = null;
        this.incoming = null;
        this.state = { conn: 'enabled' };
        return st;
      }
    }
    this.state = { conn: 'open', flow: 'paused' };
    if (this.startRequested) this.runStart();
    return STATUS.SUCCESS;
  }

  /** VmbChannelStart. Never from inside a state-change callback. */
  start(): void {
    if (this.inCallback > 0) this.misuse('start-pause-in-callback', 'VmbChannelStart', 'called from inside a state-change callback');
    if (this.state.conn === 'disabled') this.misuse('wrong-state', 'VmbChannelStart', 'channel is not enabled');
    this.startRequested = true;
    if (this.state.conn === 'open' && this.state.flow === 'paused') this.runStart();
  }

  private runStart(): void {
    // Started may queue sends but must not wait for packets: the incoming queue is off.
    this.suspended = false;
    const started = this.callbacks.started;
    if (started) this.inStateCallback(() => started(this));
    this.state = { conn: 'open', flow: 'active' };
    // Poll once: data may have arrived while we were not listening (after a restore
    // the signal that announced it went to the old host objects).
    this.interrupt = true;
    this.writable = true;
    const postStarted = this.callbacks.postStarted;
    if (postStarted) this.inStateCallback(() => postStarted(this));
  }

  /**
   * VmbChannelPause. On a disabled channel it only arms "pause when enabled". On an
   * active one: deferred packets are redelivered first, then Suspend runs and must leave
   * no incoming packet outstanding (KMCL would block until there is none).
   */
  pause(): void {
    if (this.inCallback > 0) this.misuse('start-pause-in-callback', 'VmbChannelPause', 'called from inside a state-change callback');
    if (this.state.conn === 'disabled') {
      this.state = { conn: 'disabled', autoPauseOnEnable: true };
      return;
    }
    this.startRequested = false;
    this.stopFlow();
  }

  /**
   * Pause's work, also the first step of Disable and of a close by the other end (neither
   * is a Pause call of the driver's: E2 does not apply, and the driver's wish to run stays).
   */
  private stopFlow(): void {
    const st = this.state;
    if (st.conn !== 'open' || st.flow !== 'active') return;
    while (this.deferred.length > 0) this.deliverOne();
    this.state = { conn: 'open', flow: 'paused' };
    this.suspended = true;
    const suspend = this.callbacks.suspend;
    if (suspend) {
      // The flow is paused (no delivery, no new send); whether the completions the driver
      // makes now reach the ring is the choice suspendCompletions (REVIEW E4).
      this.completingInSuspend = this.choices.suspendCompletions === 'write-to-ring';
      try {
        this.inStateCallback(() => suspend(this));
      } finally {
        this.completingInSuspend = false;
      }
    }
    // KMCL blocks until the driver has completed them: the call finishes with the last one.
    if (this.outstanding !== 0) this.pausing = true;
  }

  /** VmbChannelDisable: close (client) or revoke the offer (server), cancelling what is in flight. */
  disable(): void {
    if (this.state.conn === 'disabled') {
      // Restored but never enabled (its VSP gave up on it, e.g. a restore that failed at
      // its end): Disable still cancels what the restore put back [I], so that Cleanup
      // finds every packet returned to its driver. Nothing else to undo.
      this.cancelAll();
      return;
    }
    // A disabled server waits for VmbChannelStart again once enabled (as Pause left it).
    this.startRequested = false;
    if (this.state.conn === 'open') {
      if (this.state.flow === 'active') this.stopFlow();
      const closed = this.callbacks.closed;
      if (closed) this.inStateCallback(() => closed(this));
    }
    this.cancelAll();
    this.outgoing = null;
    this.incoming = null;
    this.state = { conn: 'disabled', autoPauseOnEnable: false };
  }

  /**
   * The other end closed the connection (REVIEW E8; SPEC-NOTES 2.5): on a server, the
   * guest closed the channel; on a client, the host rescinded the offer. Called by the
   * partition, not by the driver. A running channel is suspended first (the driver must
   * then complete what it holds), then EvtVmbChannelClosed runs. A server ends Closed: its
   * sends are queued but not transmitted, transactions still awaiting a completion are
   * the VSP's to retire (the guest may never complete them), and the guest may open the
   * channel again. A client ends Disabled and must call VmbChannelEnable to reconnect.
   */
  peerClosed(): void {
    const st = this.state;
    if (st.conn !== 'open') return;
    if (st.flow === 'active') this.stopFlow();
    const closed = this.callbacks.closed;
    if (closed) this.inStateCallback(() => closed(this));
    this.outgoing = null;
    this.incoming = null;
    this.draining = false;
    if (this.isServer) {
      this.state = { conn: 'closed' };
      // Closed, sends may be queued again (they are written once the guest reopens).
      this.suspended = false;
    } else {
      this.cancelAll();
      this.state = { conn: 'disabled', autoPauseOnEnable: false };
    }
  }

  /**
   * A server the guest closed (peerClosed) hands its VSP back what it had outstanding, for
   * the VSP to retire (REVIEW D6: on a guest close the header has the VSP retire its
   * outstanding transactions itself; how is not documented [I]): every packet still queued
   * or awaiting a completion goes to its completion routine with the cancel status, and
   * the completions queued for the guest's requests are dropped (the guest ended those
   * requests when it closed). Sends after this are queued for the guest's next open.
   */
  retireOutstanding(): void {
    if (!this.isServer || this.state.conn !== 'closed') throw new KmclUsageError('retire', `channel is ${this.state.conn}, not closed by its guest`);
    this.cancelAll();
  }

  /** VmbChannelCleanup: the channel must be disabled. */
  cleanup(): void {
    if (this.state.conn !== 'disabled') this.misuse('wrong-state', 'VmbChannelCleanup', `channel is ${this.state.conn}; disable it first`);
    if (this.livePackets.size > 0) {
      const first = this.livePackets.values()[0]!;
      this.misuse('packet-leak', 'VmbChannelCleanup', `${this.livePackets.size} packet(s) never freed, the first packet ${first.id}`, first);
    }
  }

  private cancelAll(): void {
    const status = this.choices.cancelStatus === 'cancelled' ? STATUS.CANCELLED : STATUS.DEVICE_REMOVED;
    const cancelled: VmbPacket[] = [];
    for (const q of fifoItems(this.queue)) if (q.kind === 'packet') cancelled.push(q.packet);
    fifoClear(this.queue);
    // By ascending id: the order they were sent in. Pushed straight from the table (not
    // through values(), a second copy): every save point of explore tears a host down.
    this.awaiting.forEach((p) => cancelled.push(p));
    this.awaiting.clear();
    for (const p of cancelled) this.finishPacket(p, status, null);
  }

  get isActive(): boolean {
    return this.active;
  }

  /** A Pause (or Disable) still waiting for the driver to complete packets it held (E1). */
  get isPausing(): boolean {
    return this.pausing;
  }

  /** Between the first and the last packet of a drain (interrupts masked meanwhile). */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * The private part of a client endpoint's state, for a guest-memory image of its driver
   * (src/devices/wasm/kmcl-client-image.ts): a VM's guest KMCL objects are guest memory,
   * saved with the VM and found where they were on restore. Between calls only (no
   * callback running), so the in-callback markers are not part of it.
   */
  clientInternals(): ClientInternals {
    return { state: this.st, startRequested: this.startRequested, nextPacketId: this.nextPacketId, draining: this.draining, batch: this.batch, suspended: this.suspended, pausing: this.pausing };
  }

  /** Puts back what clientInternals took (a revived client endpoint). */
  setClientInternals(s: ClientInternals): void {
    if (this.isServer) throw new KmclUsageError('revive', 'a server endpoint is restored from its saved stream, not from a guest image');
    this.state = s.state;
    this.startRequested = s.startRequested;
    this.nextPacketId = s.nextPacketId;
    this.draining = s.draining;
    this.batch = s.batch;
    this.suspended = s.suspended;
    this.pausing = s.pausing;
  }

  // ---------------------------------------------------------------- send side

  /** VmbPacketAllocate: a packet object owned by this channel. */
  packetAllocate(): VmbPacket {
    const p = createPacket(this, this.nextPacketId++);
    this.livePackets.set(p.id, p);
    return p;
  }

  /** VmbPacketFree. */
  packetFree(p: VmbPacket): void {
    if (p.state === 'freed') this.misuse('free-twice', 'VmbPacketFree', `packet ${p.id} was freed already`, p);
    if (p.state === 'queued' || p.state === 'awaiting') this.misuse('free-in-flight', 'VmbPacketFree', `packet ${p.id} is ${p.state}`, p);
    p.state = 'freed';
    this.livePackets.delete(p.id);
  }

  packetSetCompletionRoutine(p: VmbPacket, routine: CompletionRoutine): void {
    p.completionRoutine = routine;
  }

  /**
   * VmbPacketSend. The payload is copied. When the ring has no room, or earlier packets
   * are still queued, KMCL keeps the packet and writes it later: the caller sees success.
   */
  packetSend(p: VmbPacket, buffer: Uint8Array, flags: number): NtStatus {
    if (p.channel !== this) return STATUS.INVALID_PARAMETER_1;
    if (p.state === 'queued' || p.state === 'awaiting' || p.state === 'freed') {
      this.misuse('send-busy-packet', 'VmbPacketSend', `packet ${p.id} is ${p.state}`, p);
    }
    if (this.suspended) this.misuse('send-after-suspend', 'VmbPacketSend', `packet ${p.id} sent after EvtVmbChannelSuspend`, p);
    if (buffer.length > this.config.maxPacketSize) return STATUS.INVALID_PARAMETER_3;
    if ((flags & ~FORMAT_FLAGS) !== 0) return STATUS.INVALID_PARAMETER_5;
    p.wantCompletion = (flags & FORMAT_FLAG_WAIT_FOR_COMPLETION) !== 0;
    p.transId = this.nextTransId;
    // ++ would stall at 2^53 (2^53 + 1 rounds back to it): nextTxId turns to a bigint there.
    this.nextTransId = typeof this.nextTransId === 'number' && this.nextTransId < Number.MAX_SAFE_INTEGER ? this.nextTransId + 1 : nextTxId(this.nextTransId);
    // The common case writes straight from the caller's buffer into the ring: the ring
    // is then the copy, and the library keeps none (saves a copy and a queue entry per
    // packet). Only a packet the library queues keeps a copy of its payload.
    // (Cleared first: a completion routine run by writePacket may send this packet again.)
    p.payload = null;
    if (this.canWriteNow() && this.writePacket(p, buffer)) return STATUS.SUCCESS;
    p.payload = buffer.slice();
    this.queueEntry({ kind: 'packet', packet: p });
    return STATUS.SUCCESS;
  }

  /** Inside Suspend, under write-to-ring, a completion may still go to the ring (behind nothing queued). */
  private canCompleteInSuspend(): boolean {
    const retiring = this.completingInSuspend || (this.pausing && this.choices.suspendCompletions === 'write-to-ring');
    return retiring && this.outgoing !== null && (fifoLength(this.queue) === 0 || this.choices.sendOrdering === 'ring-first');
  }

  /** Whether a send may go to the ring now rather than behind the library queue. */
  private canWriteNow(): boolean {
    return this.active && this.outgoing !== null && (fifoLength(this.queue) === 0 || this.choices.sendOrdering === 'ring-first');
  }

  /** Sends a completion for the peer's transaction `transId`: to the ring if it can, else queued. */
  private sendCompletion(transId: TxId, payload: Uint8Array): void {
    if ((this.canWriteNow() || this.canCompleteInSuspend()) && this.writeCompletion(transId, payload)) return;
    // Copied when it waits: the caller's buffer is its own again once this returns (the
    // C drivers' shim hands a view of the driver's memory).
    this.queueEntry({ kind: 'completion', transId, payload: payload.slice() });
  }

  /** Queues an entry in the library (the ring is full, or earlier entries wait). */
  private queueEntry(entry: QueuedSend): void {
    if (entry.kind === 'packet') entry.packet.state = 'queued';
    fifoPush(this.queue, entry);
    if (this.outgoing && fifoLength(this.queue) === 1) this.advertiseBlocked(entry);
  }

  /** Writes one queued entry into the ring and publishes it. False when it does not fit. */
  private writeEntry(entry: QueuedSend): boolean {
    if (entry.kind === 'completion') return this.writeCompletion(entry.transId, entry.payload);
    return this.writePacket(entry.packet, entry.packet.payload!);
  }

  private writeCompletion(transId: TxId, payload: Uint8Array): boolean {
    const out = this.outgoing!;
    if (!out.tryWrite(PacketType.completion, 0, transId, payload)) return false;
    if (out.commit()) this.sendSignal('interrupt');
    return true;
  }

  /** Writes packet `p` with `payload` into the ring and publishes it. False when it does not fit. */
  private writePacket(p: VmbPacket, payload: Uint8Array): boolean {
    const out = this.outgoing!;
    const flags = p.wantCompletion ? PACKET_FLAG_COMPLETION_REQUESTED : 0;
    if (this.isServer && this.faults.armed('unknown-packet-type')) this.writeUnknownPacket(out);
    if (!out.tryWrite(PacketType.dataInBand, flags, p.transId, payload)) return false;
    if (out.commit()) this.sendSignal('interrupt');
    if (p.wantCompletion) {
      p.state = 'awaiting';
      // The message is in the ring now: nothing reads a copy again (a save keeps only
      // queued packets' payloads), so none is held until the completion.
      p.payload = null;
      this.awaiting.set(p.transId, p);
    } else {
      // Without WAIT_FOR_COMPLETION the routine runs once the message is in the ring.
      this.finishPacket(p, STATUS.SUCCESS, null);
    }
    return true;
  }

  /** Fault unknown-packet-type: a well-framed packet of type 0xA (CANCEL_REQUEST), which no reader accepts. */
  private writeUnknownPacket(out: OutgoingRing): void {
    if (!out.tryWrite(0xa, 0, 0, new Uint8Array(8))) return;
    this.faults.fire('unknown-packet-type');
    if (out.commit()) this.sendSignal('interrupt');
  }

  private advertiseBlocked(head: QueuedSend): void {
    const len = head.kind === 'completion' ? head.payload.length : head.packet.payload!.length;
    const out = this.outgoing!;
    const need = inBandFootprint(len);
    // The writer needs raw free > footprint (8 bytes stay unused). A reader that signals
    // at free > P is told P = footprint; one that signals at free >= P must be told
    // footprint + 8, or it would wake us 8 bytes short and never again.
    out.setPendingSendSize(this.choices.pendingSendThreshold === 'greater-or-equal' ? need + 8 : need);
    this.writable = false;
    // The reader may have freed space before it could see our pending size: re-check.
    if (out.free() >= need) this.writable = true;
  }

  private sendSignal(what: 'interrupt' | 'writable'): void {
    this.counters.signalsSent++;
    this.signalPeer(what);
  }

  /** Whether a flush step could write the head of the library queue now. */
  canFlush(): boolean {
    return this.writable && fifoLength(this.queue) > 0 && this.active && this.outgoing !== null;
  }

  /** Writes queued entries, oldest first, until the ring is full or the queue is empty. */
  flushOne(): void {
    const head = fifoPeek(this.queue);
    if (!head) return;
    if (!this.writeEntry(head)) {
      this.advertiseBlocked(head);
      return;
    }
    fifoShift(this.queue);
    if (fifoLength(this.queue) === 0) {
      this.outgoing!.setPendingSendSize(0);
    }
  }

  private finishPacket(p: VmbPacket, status: NtStatus, response: Uint8Array | null): void {
    p.state = 'completed';
    const routine = p.completionRoutine;
    if (routine === null) {
      // The default completion routine frees the packet (SPEC-NOTES 4.1).
      p.state = 'freed';
      this.livePackets.delete(p.id);
      return;
    }
    routine(p, status, response);
  }

  // ---------------------------------------------------------------- receive side

  /** Whether a delivery step would deliver something now. */
  canDeliver(): boolean {
    if (!this.active || this.failed || this.incoming === null) return false;
    // A deferred packet is already handed out: redelivering it takes nothing new from
    // the ring, so the quota does not hold it back (else quota 1 + a deferral deadlocks).
    if (this.deferred.length > 0) return true;
    if (this.quotaBlocked || this.quotaReached()) return false;
    if (!this.interrupt && !this.draining) return false;
    return !this.incoming.isEmpty();
  }

  private quotaReached(): boolean {
    if (this.quota === 0) return false;
    const held = this.outstanding + (this.choices.quotaCountsDeferred ? 0 : -this.deferred.length);
    return held >= this.quota;
  }

  /** Delivers one packet: a deferred one first (at passive), else the next from the ring. */
  deliverOne(): void {
    if (this.deferred.length > 0) {
      this.invokeProcessPacket(this.deferred.shift()!);
      return;
    }
    const inc = this.incoming!;
    if (!this.draining) {
      this.draining = true;
      this.interrupt = false;
      inc.setInterruptMask(true);
    }
    const v = inc.peek();
    if (v === null) {
      // peek may have stepped over packets it cannot accept: give their space back.
      if (inc.commit()) this.sendSignal('writable');
      this.endDrain();
      return;
    }
    this.consume(v);
    if (inc.isEmpty()) this.endDrain();
  }

  private endDrain(): void {
    const inc = this.incoming!;
    this.draining = false;
    inc.setInterruptMask(false);
    if (this.batch > 0) {
      const n = this.batch;
      this.batch = 0;
      this.processingComplete?.(this, n);
    }
    // Re-check after clearing the mask: a writer that saw it set did not signal.
    if (!inc.isEmpty()) this.interrupt = true;
  }

  private consume(v: PacketView): void {
    const inc = this.incoming!;
    const payload = inc.payload(v);
    const type = v.type;
    const transId = v.transId;
    const flags = v.flags;
    inc.advance(v);
    if (inc.commit()) this.sendSignal('writable');
    if (type === PacketType.completion) {
      this.receiveCompletion(transId, payload);
      return;
    }
    this.counters.packetsDelivered++;
    this.batch++;
    const pkt = createIncoming(this, transId, (flags & PACKET_FLAG_COMPLETION_REQUESTED) !== 0, payload);
    this.outstanding++;
    this.invokeProcessPacket(pkt);
    if (this.quotaReached()) this.quotaBlocked = true;
  }

  private invokeProcessPacket(pkt: IncomingPacket): void {
    pkt.state = 'delivered';
    this.inProcessPacket = pkt;
    try {
      // BufferLength is the ring's 8-byte-padded length: the exact length is not on the
      // wire, and the protocol carries its own (SPEC-NOTES 13.3).
      this.processPacket!(this, pkt, pkt.payload, 0);
    } finally {
      this.inProcessPacket = null;
    }
  }

  private receiveCompletion(transId: TxId, payload: Uint8Array): void {
    if (this.isServer && this.awaiting.size >= 2 && this.faults.armed('reorder-completions')) {
      // Hand the completion to another waiting packet than the one it names.
      const other = this.awaiting.ids().find((id) => id !== transId);
      if (other !== undefined && this.awaiting.has(transId)) {
        this.faults.fire('reorder-completions');
        transId = other;
      }
    }
    const p = this.awaiting.get(transId);
    if (!p) {
      // Undocumented (SPEC-NOTES 13.2): we drop it and count it; the checker sees the
      // sender's completion missing.
      this.counters.unknownCompletions++;
      return;
    }
    this.awaiting.delete(transId);
    this.counters.completionsReceived++;
    this.finishPacket(p, STATUS.SUCCESS, payload);
  }

  /** VmbChannelPacketComplete: sends a completion only if the sender asked for one. */
  packetComplete(pkt: IncomingPacket, response: Uint8Array | null): void {
    if (pkt.channel !== this) this.misuse('retire-twice', 'VmbChannelPacketComplete', 'the packet belongs to another channel');
    if (pkt.state !== 'delivered') this.misuse('retire-twice', 'VmbChannelPacketComplete', `the incoming packet is ${pkt.state}`);
    pkt.state = 'completed';
    this.retire();
    if (!pkt.wantCompletion) return this.endPauseIfDone();
    const payload = response ?? new Uint8Array(0);
    if (!(this.isServer && payload.length >= 20 && this.faults.armed('wrong-status') && this.writeWrongStatus(pkt.transId, payload))) {
      this.sendCompletion(pkt.transId, payload);
    }
    this.endPauseIfDone();
  }

  /**
   * Fault wrong-status: the completion goes to the ring now with its status changed
   * (payload byte 16, the sample protocol's status). Only into the ring of an open
   * channel: a completion that waits in the library (a full ring, a closed or rescinded
   * channel) may never reach the guest, and then the fault would have changed nothing.
   * False (nothing written, the fault still armed) when it cannot go to the ring now. One
   * written and then thrown away unread is the executor's to report (Faults.changeGone).
   */
  private writeWrongStatus(transId: TxId, payload: Uint8Array): boolean {
    if (!(this.canWriteNow() || this.canCompleteInSuspend())) return false;
    const changed = payload.slice();
    changed[16] = changed[16]! ^ 0x01;
    if (!this.writeCompletion(transId, changed)) return false;
    this.faults.changeWritten(this.outgoing!.mem.byteOffset, transId);
    return true;
  }

  /** The last packet held after Suspend is retired: the waiting Pause returns (E1). */
  private endPauseIfDone(): void {
    if (this.pausing && this.outstanding === 0) this.pausing = false;
  }

  /** VmbChannelPacketDeferToPassive: only inside ProcessPacket; the packet comes back later. */
  packetDeferToPassive(pkt: IncomingPacket): void {
    if (this.inProcessPacket !== pkt) {
      this.misuse('defer-outside-process-packet', 'VmbChannelPacketDeferToPassive', 'called outside EvtVmbChannelProcessPacket for that packet');
    }
    pkt.state = 'deferred';
    pkt.deferrals++;
    this.deferred.push(pkt);
  }

  /** VmbChannelPacketFail: a fatal protocol error; the incoming queue stops. */
  packetFail(pkt: IncomingPacket): void {
    if (pkt.state !== 'delivered') this.misuse('retire-twice', 'VmbChannelPacketFail', `the incoming packet is ${pkt.state}`);
    pkt.state = 'failed';
    this.retire();
    this.failed = true;
    if (pkt.wantCompletion && this.choices.packetFailCompletion === 'status-unsuccessful') {
      this.sendCompletion(pkt.transId, new Uint8Array(0));
    }
    this.endPauseIfDone();
  }

  private retire(): void {
    this.outstanding--;
    // Invariant: a queue blocked by the quota restarts only on a completion.
    if (this.quotaBlocked && !this.quotaReached()) this.quotaBlocked = false;
  }
}
