// The KMCL client and server tables for a C driver on the emulator: every entry of
// KMCL_CLIENT_INTERFACE_V1 / KMCL_SERVER_INTERFACE_V1 the sample drivers call, over the
// emulator's own Channel (src/vmbus/channel.ts, channel-save.ts), used as is.
//
// Handles: VMBCHANNEL, VMBPACKET and VMBPACKETCOMPLETION are numbers the driver only
// passes back. Packet data is copied between the rings' shared memory and the driver's
// linear memory: a received packet into a shim buffer that lives until the driver
// completes it; a sent one out of the driver's buffer when VmbPacketSend is called.
// Callbacks go through the module's function table at the IRQL irql.ts gives them.
//
// Checks made here, at the shim boundary (beside the emulator's own KmclUsageError):
// PASSIVE-only calls (irql.ts), a send on a channel its driver paused (E3, D2), a
// packet freed twice or never (E7), a server-only call from a client (D7), a channel
// never cleaned up, a state change called from inside a state-change callback (E2).

import { Channel, STATE_CALLBACKS_SIZE, STATE_CALLBACKS_VERSION, stateChangeCallbacksInit } from '../../vmbus/channel.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import type { Faults } from '../../vmbus/faults.ts';
import type { IncomingPacket, VmbPacket } from '../../vmbus/packet.ts';
import { STATUS, type NtStatus } from '../../vmbus/status.ts';
import { DISPATCH_LEVEL, KMCL_PASSIVE_ONLY, PASSIVE_LEVEL } from './irql.ts';
import type { DriverRuntime, ImportFn, ImportTable } from './runtime.ts';
import { violation } from './violations.ts';
import { restorePacket, saveImports, savePacket } from './kmcl-save.ts';

/** sizeof(VMB_CHANNEL_STATE_CHANGE_CALLBACKS) in wasm32: two ULONGs and five 4-byte pointers. */
const WASM_STATE_CALLBACKS_SIZE = 28;
export const SHIM_TAG = 0x6c636d4b; // 'Kmcl'

export interface ChannelRec {
  handle: number;
  ch: Channel;
  pointer: number;
  processPacket: number;
  processingComplete: number;
  states: { opened: number; closed: number; suspend: number; started: number; postStarted: number };
  save: number;
  restore: number;
  /** Pause was called and Start not since: sends must have stopped (E3). */
  pausedByDriver: boolean;
  /** what the last save's SaveContinue calls handed out, in order (the VM's saved state) */
  saveOutputs: Uint8Array[];
  inStateCallback: boolean;
  cleaned: boolean;
  /** EvtVmbChannelRestorePacket calls KMCL has made on this object (restoreRefusals) */
  restorePacketCalls: number;
}

export interface PacketRec {
  handle: number;
  p: VmbPacket;
  chan: ChannelRec;
  pointer: number;
  routine: number;
  freed: boolean;
}

export interface IncomingRec {
  handle: number;
  pkt: IncomingPacket;
  chan: ChannelRec;
  buffer: number;
  /** completed or failed: no longer the driver's */
  retired: boolean;
  /** in KmclShim.incoming (kept past the ProcessPacket call it came in) */
  kept: boolean;
}

/** The shim's own tables and counters (KmclShim.imageTables), for kmcl-client-image.ts. */
export interface KmclImageTables {
  channels: Map<number, ChannelRec>;
  byChannel: Map<Channel, ChannelRec>;
  packets: Map<number, PacketRec>;
  incoming: Map<number, IncomingRec>;
  incomingOf: Map<IncomingPacket, IncomingRec>;
  kernelHandles: Set<number>;
  counters: { nextChannelId: number; neededWord: number; packetRestores: number; interfaceRefs: number };
}

export interface KmclHooks {
  /** a channel was enabled: a server offered it, or a client is ready for the offer */
  enabled?(rec: ChannelRec): void;
  /** a channel was disabled by its driver */
  disabled?(rec: ChannelRec): void;
}

export interface KmclShimOptions {
  choices: GapChoices;
  hooks?: KmclHooks;
  /**
   * Faults a Driver-Verifier-style run injects at the shim (like its low-resources
   * simulation), for answers a careful driver must survive:
   * - 'save-begin-fails': VmbChannelSaveBegin returns STATUS_INSUFFICIENT_RESOURCES;
   * - 'save-continue-no-progress': VmbChannelSaveContinue returns STATUS_BUFFER_OVERFLOW
   *   with 0 bytes filled (the page says some data was written; a driver must still
   *   not spin when none was);
   * - 'second-packet-restore-fails': the second VmbPacketRestore of a restore returns
   *   STATUS_INSUFFICIENT_RESOURCES, so the restore fails after one packet came back;
   * - 'cancel-in-send': a packet sent with WAIT_FOR_COMPLETION completes as cancelled
   *   before VmbPacketSend returns, as it may when the channel goes away meanwhile (the
   *   completion routine "may run before VmbPacketSend returns").
   */
  faults?: ReadonlyArray<'save-begin-fails' | 'save-continue-no-progress' | 'second-packet-restore-fails' | 'cancel-in-send'>;
  /**
   * The run's platform bugs (`--fault`, src/vmbus/faults.ts), given to every channel
   * object from its allocation: a restore runs before the bench sees the new object, and
   * a fault that acts in RestoreFromBuffer must already be there.
   */
  platformFaults?: Faults | undefined;
}

export class KmclShim {
  /** (read by kmcl-save.ts too) */
  readonly rt: DriverRuntime;
  /** (read by kmcl-save.ts too; set anew by `reset`) */
  opts: KmclShimOptions;
  readonly channels = new Map<number, ChannelRec>();
  private readonly byChannel = new Map<Channel, ChannelRec>();
  private readonly packets = new Map<number, PacketRec>();
  /**
   * The incoming packets in the driver's hands by VMBPACKETCOMPLETION handle, but for the
   * one being handed to EvtVmbChannelProcessPacket now (`inHand`): most are completed
   * inside that call, and a Map that fills and empties a packet at a time costs more than
   * the rest of the shim's receive path. A packet still held when the call returns joins.
   * Invariant: the driver's incoming packets are exactly `incoming`'s and an unretired `inHand`.
   */
  private readonly incoming = new Map<number, IncomingRec>();
  private inHand: IncomingRec | null = null;
  /**
   * The packets the driver deferred to PASSIVE_LEVEL, which KMCL hands it again (a Map,
   * emptied as packets retire: a WeakMap's entries cost the collector much more).
   * Invariant: holds exactly the driver's incoming packets with pkt.deferrals > 0.
   */
  private readonly incomingOf = new Map<IncomingPacket, IncomingRec>();
  private readonly kernelHandles = new Set<number>();
  private nextChannelId = 1;
  /** VmbPacketRestore calls so far (the second-packet-restore-fails fault) */
  packetRestores = 0;
  interfaceRefs = 0;
  /**
   * The bench's stand-in for a VSP that cannot use its own saved records (a scenario's
   * `restore` with `fail`): for a server channel of this interface instance (lower case),
   * KMCL's call of the driver's EvtVmbChannelRestorePacket number N and after answers
   * STATUS_INVALID_PARAMETER without calling the driver, as the twins' restore callback is
   * made to fail (src/scenario/execute.ts, refuseSecondPacket). Not a KMCL behaviour: the
   * bench arms it around one restore and disarms it after.
   */
  readonly restoreRefusals = new Map<string, number>();

  constructor(rt: DriverRuntime, opts: KmclShimOptions) {
    this.rt = rt;
    this.opts = opts;
  }

  chan(h: number, call: string): ChannelRec {
    const r = this.channels.get(h >>> 0);
    if (!r) throw violation('kmcl.bad-handle', call, `VMBCHANNEL 0x${(h >>> 0).toString(16)}`, 'not a live channel (cleaned up, or never allocated)');
    return r;
  }

  /**
   * The packet object `packet` found last. A packet's calls come in runs (a restore:
   * Allocate, Restore, SetPointer, SetCompletionRoutine; a save: GetPointer twice), so
   * most lookups are answered here rather than by the table, a Map of every packet object
   * the channels made, freed ones included.
   * Invariant: null, or the entry of `packets` under its own handle: it is cleared
   * wherever entries leave the table or the table is handed out (imageTables).
   */
  private lastPacket: PacketRec | null = null;

  packet(h: number, call: string): PacketRec {
    const last = this.lastPacket;
    const r = last !== null && last.handle === h >>> 0 ? last : (this.lastPacket = this.packets.get(h >>> 0) ?? null);
    if (!r) throw violation('kmcl.bad-handle', call, `VMBPACKET 0x${(h >>> 0).toString(16)}`, 'not a packet object');
    if (r.freed) throw violation('pool.double-free', call, `VMBPACKET 0x${r.handle.toString(16)}`, 'the packet was already freed (use after VmbPacketFree)');
    return r;
  }

  private completion(h: number, call: string): IncomingRec {
    const cur = this.inHand;
    const r = cur !== null && cur.handle === h >>> 0 && !cur.retired ? cur : this.incoming.get(h >>> 0);
    if (!r) throw violation('kmcl.bad-handle', call, `VMBPACKETCOMPLETION 0x${(h >>> 0).toString(16)}`, 'not a packet in the driver\'s hands (completed already?)');
    return r;
  }

  serverOnly(r: ChannelRec, call: string): void {
    if (!r.ch.isServer) throw violation('kmcl.server-only', call, `VMBCHANNEL 0x${r.handle.toString(16)}`, 'documented for server endpoints; this channel is a client');
  }

  private notInStateCallback(r: ChannelRec, call: string): void {
    if (r.inStateCallback) throw violation('kmcl.misuse', call, `VMBCHANNEL 0x${r.handle.toString(16)}`, 'may not be called from inside a state-change callback');
  }

  /** A state-change callback of the driver, at PASSIVE_LEVEL. */
  private stateCallback(r: ChannelRec, fn: number, name: string): number {
    r.inStateCallback = true;
    try {
      return this.rt.callback(fn, name, PASSIVE_LEVEL, r.handle) >>> 0;
    } finally {
      r.inStateCallback = false;
    }
  }

  private wireCallbacks(r: ChannelRec): void {
    const ch = r.ch;
    const s = r.states;
    const cbs = stateChangeCallbacksInit();
    if (s.opened) cbs.opened = () => this.stateCallback(r, s.opened, 'EvtVmbChannelOpened');
    if (s.closed) cbs.closed = () => void this.stateCallback(r, s.closed, 'EvtVmbChannelClosed');
    if (s.suspend) cbs.suspend = () => void this.stateCallback(r, s.suspend, 'EvtVmbChannelSuspend');
    if (s.started) cbs.started = () => void this.stateCallback(r, s.started, 'EvtVmbChannelStarted');
    if (s.postStarted) cbs.postStarted = () => void this.stateCallback(r, s.postStarted, 'EvtVmbChannelPostStarted');
    ch.callbacks = cbs;
  }

  private onPacket(r: ChannelRec, pkt: IncomingPacket, payload: Uint8Array, flags: number): void {
    // Only a packet the driver deferred comes back (KMCL hands out each packet once
    // otherwise): only those are looked up.
    let inc = pkt.deferrals > 0 ? this.incomingOf.get(pkt) : undefined;
    if (!inc) {
      const buffer = this.rt.pool.allocCopy(payload, SHIM_TAG);
      inc = { handle: this.rt.handle(3), pkt, chan: r, buffer, retired: false, kept: false };
    }
    // A packet in hand when another comes in (a nested delivery) goes into the table first.
    const outer = this.inHand;
    if (outer !== null) this.keep(outer);
    this.inHand = inc;
    // A redelivery after DeferToPassive runs at PASSIVE_LEVEL; a first delivery at DISPATCH.
    const level = pkt.deferrals > 0 ? PASSIVE_LEVEL : DISPATCH_LEVEL;
    try {
      this.rt.callback(r.processPacket, 'EvtVmbChannelProcessPacket', level, r.handle, inc.handle, inc.buffer, payload.length, flags);
    } finally {
      this.inHand = outer;
      this.keep(inc);
    }
  }

  /** A packet the driver still holds after the call it came in: into the table of handles. */
  private keep(inc: IncomingRec): void {
    if (inc.retired || inc.kept) return;
    inc.kept = true;
    this.incoming.set(inc.handle, inc);
  }

  private retireIncoming(inc: IncomingRec, call: string): void {
    inc.retired = true;
    if (inc.kept) this.incoming.delete(inc.handle);
    if (inc.pkt.deferrals > 0) this.incomingOf.delete(inc.pkt);
    this.rt.pool.free(inc.buffer, SHIM_TAG, call);
  }

  private onCompletion(pr: PacketRec, status: NtStatus, response: Uint8Array | null): void {
    if (!pr.routine) {
      // The default routine frees the packet (SPEC-NOTES 4.1).
      pr.freed = true;
      pr.p.state = 'freed';
      return;
    }
    const len = response?.length ?? 0;
    const buf = len > 0 ? this.rt.pool.allocCopy(response!, SHIM_TAG) : 0;
    this.rt.callback(pr.routine, 'EvtVmbPacketCompletionRoutine', DISPATCH_LEVEL, pr.handle, status, buf, len);
    if (buf) this.rt.pool.free(buf, SHIM_TAG, 'EvtVmbPacketCompletionRoutine');
  }

  private neededWord = 0;

  /**
   * Every packet object's completion routine: one function, its packet object found
   * through the packet's pointer (set with it, here and by a revive), rather than a
   * closure made per packet (VmbPacketAllocate runs for every packet restored at every
   * save point of an explore).
   */
  private readonly routine = (p: VmbPacket, st: NtStatus, resp: Uint8Array | null): void => this.onCompletion(p.pointer as PacketRec, st, resp);

  /**
   * The ULONG EvtVmbChannelSavePacket writes BytesNeeded into: one pool block kept for
   * the driver's life rather than two allocations per saved packet, its guards checked
   * after each call (kmcl-save.ts).
   */
  bytesNeededWord(): number {
    if (this.neededWord === 0) this.neededWord = this.rt.pool.alloc(4, SHIM_TAG, 'shim');
    return this.neededWord;
  }

  recOf(ch: Channel): ChannelRec | undefined {
    return this.byChannel.get(ch);
  }

  /** The packet object of a VMBPACKET handle, freed or not (for explore's state key, shim-key.ts). */
  packetOf(h: number): PacketRec | undefined {
    return this.packets.get(h >>> 0);
  }

  /** The incoming packet of a VMBPACKETCOMPLETION handle still in the driver's hands (shim-key.ts). */
  completionOf(h: number): IncomingPacket | undefined {
    const cur = this.inHand;
    if (cur !== null && cur.handle === h >>> 0 && !cur.retired) return cur.pkt;
    return this.incoming.get(h >>> 0)?.pkt;
  }

  /** How many packet objects are allocated and not freed, and how many incoming packets the driver holds (shim-key.ts). */
  outstanding(): { packets: number; incoming: number; kernelHandles: number } {
    let packets = 0;
    for (const p of this.packets.values()) if (!p.freed) packets++;
    const inHand = this.inHand !== null && !this.inHand.retired && !this.inHand.kept ? 1 : 0;
    return { packets, incoming: this.incoming.size + inHand, kernelHandles: this.kernelHandles.size };
  }

  imports(): ImportTable {
    const rt = this.rt;
    const m = () => rt.mem;
    const passive = (name: string, fn: ImportFn): ImportFn => {
      if (!KMCL_PASSIVE_ONLY.has(name)) return fn;
      // Fixed parameters, not a rest array, and the object's text made only for a report:
      // SaveContinue, RestoreFromBuffer and the rest run at every save point of an explore.
      // No PASSIVE-only entry the shim models takes more than five.
      return (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => {
        if (rt.irql.level > PASSIVE_LEVEL) rt.irql.requirePassive(name, `VMBCHANNEL 0x${((a as number) >>> 0).toString(16)}`);
        return fn(a, b, c, d, e);
      };
    };
    const t: Record<string, ImportFn> = {
      QueryInterface: (_fdo: number, _server: number) => {
        rt.irql.requirePassive('WdfFdoQueryForInterface', 'KMCL');
        this.interfaceRefs++;
        return STATUS.SUCCESS;
      },
      InterfaceReference: () => void this.interfaceRefs++,
      InterfaceDereference: () => void this.interfaceRefs--,

      VmbChannelAllocate: (_pdo: number, isServer: number, out: number) => {
        const ch = new Channel((isServer & 0xff) !== 0, this.nextChannelId++, this.opts.choices);
        if (this.opts.platformFaults) ch.faults = this.opts.platformFaults;
        const r: ChannelRec = {
          handle: rt.handle(1), ch, pointer: 0, processPacket: 0, processingComplete: 0,
          states: { opened: 0, closed: 0, suspend: 0, started: 0, postStarted: 0 }, save: 0, restore: 0,
          pausedByDriver: false, saveOutputs: [], inStateCallback: false, cleaned: false, restorePacketCalls: 0,
        };
        this.channels.set(r.handle, r);
        this.byChannel.set(ch, r);
        m().setU32(out, r.handle);
        return STATUS.SUCCESS;
      },
      VmbChannelCleanup: (h: number) => {
        const r = this.chan(h, 'VmbChannelCleanup');
        r.ch.cleanup();
        // The table holds every packet object of the run (freed ones too, for the
        // double-free check) and is walked at every save point's teardown: no array made
        // of it unless one leaked. A leak leaves the table as it was, for the report.
        let left: PacketRec[] | null = null;
        for (const p of this.packets.values()) if (p.chan === r && !p.freed) (left ??= []).push(p);
        if (left !== null) {
          throw violation('kmcl.packet-leak', 'VmbChannelCleanup', `VMBCHANNEL 0x${r.handle.toString(16)}`, `${left.length} packet object(s) allocated on this channel were never freed (VmbPacketFree): ${left.map((p) => `0x${p.handle.toString(16)}`).join(', ')}`);
        }
        for (const [k, p] of this.packets) if (p.chan === r) this.packets.delete(k);
        this.lastPacket = null;
        r.cleaned = true;
        this.channels.delete(r.handle);
        this.byChannel.delete(r.ch);
      },
      VmbChannelEnable: (h: number) => {
        const r = this.chan(h, 'VmbChannelEnable');
        this.wireCallbacks(r);
        const st = r.ch.enable();
        if (st === STATUS.SUCCESS) this.opts.hooks?.enabled?.(r);
        return st;
      },
      VmbChannelDisable: (h: number) => {
        const r = this.chan(h, 'VmbChannelDisable');
        this.notInStateCallback(r, 'VmbChannelDisable');
        r.ch.disable();
        r.pausedByDriver = false;
        this.opts.hooks?.disabled?.(r);
      },
      VmbChannelStart: (h: number) => {
        const r = this.chan(h, 'VmbChannelStart');
        this.notInStateCallback(r, 'VmbChannelStart');
        r.pausedByDriver = false;
        r.ch.start();
      },
      VmbChannelPause: (h: number) => {
        const r = this.chan(h, 'VmbChannelPause');
        this.notInStateCallback(r, 'VmbChannelPause');
        r.pausedByDriver = true;
        r.ch.pause();
      },
      VmbChannelGetPointer: (h: number) => this.chan(h, 'VmbChannelGetPointer').pointer,
      VmbChannelSetPointer: (h: number, p: number) => void (this.chan(h, 'VmbChannelSetPointer').pointer = p >>> 0),
      VmbChannelInitSetMaximumPacketSize: (h: number, n: number) => this.chan(h, 'VmbChannelInitSetMaximumPacketSize').ch.initSetMaximumPacketSize(n >>> 0),
      VmbChannelInitSetFlags: (h: number, f: number) => this.chan(h, 'VmbChannelInitSetFlags').ch.initSetFlags(f >>> 0),
      VmbChannelInitSetClientContextSize: (h: number, n: number) => this.chan(h, 'VmbChannelInitSetClientContextSize').ch.initSetClientContextSize(n >>> 0),
      VmbChannelInitSetProcessPacketCallbacks: (h: number, pp: number, pc: number) => {
        const r = this.chan(h, 'VmbChannelInitSetProcessPacketCallbacks');
        const st = r.ch.initSetProcessPacketCallbacks(
          pp ? (_c, pkt, buf, flags) => this.onPacket(r, pkt, buf, flags) : null,
          pc ? (_c, n) => void rt.callback(pc, 'EvtVmbChannelProcessingComplete', DISPATCH_LEVEL, r.handle, n) : null,
        );
        if (st === STATUS.SUCCESS) {
          r.processPacket = pp >>> 0;
          r.processingComplete = pc >>> 0;
        }
        return st;
      },
      VmbChannelInitSetStateChangeCallbacks: (h: number, at: number) => {
        const r = this.chan(h, 'VmbChannelInitSetStateChangeCallbacks');
        const version = m().u32(at);
        const size = m().u32(at + 4);
        // The emulator checks the x64 size; the wasm32 structure is smaller, same members.
        const st = r.ch.initSetStateChangeCallbacks({
          ...stateChangeCallbacksInit(),
          version,
          size: version === STATE_CALLBACKS_VERSION && size === WASM_STATE_CALLBACKS_SIZE ? STATE_CALLBACKS_SIZE : size,
        });
        if (st === STATUS.SUCCESS) {
          r.states = { opened: m().u32(at + 8), closed: m().u32(at + 12), suspend: m().u32(at + 16), started: m().u32(at + 20), postStarted: m().u32(at + 24) };
        }
        return st;
      },
      VmbServerChannelInitSetTargetInterfaceId: (h: number, typeAt: number, instAt: number) => {
        const r = this.chan(h, 'VmbServerChannelInitSetTargetInterfaceId');
        this.serverOnly(r, 'VmbServerChannelInitSetTargetInterfaceId');
        return r.ch.serverInitSetTargetInterfaceId(m().guid(typeAt), m().guid(instAt));
      },
      VmbClientChannelInitSetTargetPnp: (h: number, typeAt: number, instAt: number, _pnpFailure: number) => {
        const r = this.chan(h, 'VmbClientChannelInitSetTargetPnp');
        return r.ch.clientInitSetTargetPnp(typeAt ? m().guid(typeAt) : '', instAt ? m().guid(instAt) : null);
      },
      VmbClientChannelInitSetRingBufferPageCount: (h: number, incoming: number, outgoing: number) =>
        this.chan(h, 'VmbClientChannelInitSetRingBufferPageCount').ch.clientInitSetRingBufferPageCount(incoming >>> 0, outgoing >>> 0),
      VmbChannelGetInterfaceInstance: (h: number, out: number) => {
        const r = this.chan(h, 'VmbChannelGetInterfaceInstance');
        m().setGuid(out, r.ch.config.interfaceInstance ?? '00000000-0000-0000-0000-000000000000');
      },
      VmbServerChannelInitSetFlags: (h: number, f: number) => this.chan(h, 'VmbServerChannelInitSetFlags').ch.serverInitSetFlags(f >>> 0),
      VmbServerChannelInitSetVmbusHandle: (h: number, handle: number) => this.chan(h, 'VmbServerChannelInitSetVmbusHandle').ch.serverInitSetVmbusHandle(handle ? handle >>> 0 : null),
      VmbServerChannelInitSetSaveRestorePacketCallbacks: (h: number, save: number, restore: number) => {
        const r = this.chan(h, 'VmbServerChannelInitSetSaveRestorePacketCallbacks');
        const st = r.ch.serverInitSetSaveRestorePacketCallbacks(
          save ? (_c, p, buf, out) => savePacket(this, r, p, buf, out) : null,
          restore ? (_c, lib, sv) => restorePacket(this, r, lib, sv) : null,
        );
        if (st === STATUS.SUCCESS) {
          r.save = save >>> 0;
          r.restore = restore >>> 0;
        }
        return st;
      },
      VmbConvertVmbusHandleToKernelHandle: (_h: number, out: number) => {
        const k = rt.handle(6);
        this.kernelHandles.add(k);
        m().setU32(out, k);
        return STATUS.SUCCESS;
      },

      VmbPacketAllocate: (h: number) => {
        const r = this.chan(h, 'VmbPacketAllocate');
        const p = r.ch.packetAllocate();
        const pr: PacketRec = { handle: rt.handle(2), p, chan: r, pointer: 0, routine: 0, freed: false };
        p.pointer = pr;
        p.completionRoutine = this.routine;
        this.packets.set(pr.handle, pr);
        this.lastPacket = pr;
        return pr.handle;
      },
      VmbPacketFree: (h: number) => {
        const pr = this.packet(h, 'VmbPacketFree');
        pr.chan.ch.packetFree(pr.p);
        pr.freed = true;
      },
      VmbPacketGetPointer: (h: number) => this.packet(h, 'VmbPacketGetPointer').pointer,
      VmbPacketSetPointer: (h: number, p: number) => void (this.packet(h, 'VmbPacketSetPointer').pointer = p >>> 0),
      VmbPacketGetChannel: (h: number) => this.packet(h, 'VmbPacketGetChannel').chan.handle,
      VmbPacketSetCompletionRoutine: (h: number, fn: number) => void (this.packet(h, 'VmbPacketSetCompletionRoutine').routine = fn >>> 0),
      VmbPacketSend: (h: number, buf: number, len: number, mdl: number, flags: number) => {
        const pr = this.packet(h, 'VmbPacketSend');
        if (mdl) throw new Error('VmbPacketSend with an external MDL: not modelled by the shim');
        if (pr.chan.pausedByDriver) {
          throw violation('kmcl.send-after-suspend', 'VmbPacketSend', `VMBCHANNEL 0x${pr.chan.handle.toString(16)}`, 'the driver paused this channel (EvtVmbChannelSuspend ran) and has not started it again; sending must stop once suspended, or the packet misses the save');
        }
        const st = pr.chan.ch.packetSend(pr.p, m().read(buf, len), flags >>> 0);
        if (st === STATUS.SUCCESS && pr.p.state === 'awaiting' && this.opts.faults?.includes('cancel-in-send')) {
          // As if the channel were torn down on another processor while VmbPacketSend
          // returned: the completion routine runs, cancelled, before the caller goes on.
          pr.chan.ch.awaiting.delete(pr.p.transId);
          pr.p.state = 'completed';
          this.onCompletion(pr, STATUS.CANCELLED, null);
        }
        return st;
      },
      VmbChannelPacketComplete: (c: number, buf: number, len: number) => {
        const inc = this.completion(c, 'VmbChannelPacketComplete');
        // A view, not a copy: the channel writes it into the ring now or copies it to wait.
        inc.chan.ch.packetComplete(inc.pkt, buf && len ? m().view(buf, len) : null);
        this.retireIncoming(inc, 'VmbChannelPacketComplete');
      },
      VmbChannelPacketDeferToPassive: (c: number) => {
        const inc = this.completion(c, 'VmbChannelPacketDeferToPassive');
        inc.chan.ch.packetDeferToPassive(inc.pkt);
        this.incomingOf.set(inc.pkt, inc);
      },
      VmbChannelPacketFail: (c: number) => {
        const inc = this.completion(c, 'VmbChannelPacketFail');
        this.serverOnly(inc.chan, 'VmbChannelPacketFail');
        inc.chan.ch.packetFail(inc.pkt);
        this.retireIncoming(inc, 'VmbChannelPacketFail');
      },

    };
    Object.assign(t, saveImports(this));
    // The entries the sample drivers never call (unless defined above): a clear error
    // rather than a silent answer.
    for (const name of [
      'VmbChannelCreateGpadlFromBuffer', 'VmbChannelCreateGpadlFromMdl', 'VmbChannelDeleteGpadl', 'VmbChannelGetInterfaceInstance',
      'VmbChannelGetMmioSpace', 'VmbChannelInitSetFriendlyName', 'VmbChannelInitSetMaximumExternalData', 'VmbChannelPacketGetExternalData',
      'VmbChannelSendSynchronousRequest', 'VmbChannelSetIncomingProcessingAtPassive', 'VmbChannelSetInterruptLatency',
      'VmbChannelSetTransactionQuota', 'VmbChannelSizeofPacket', 'VmbClientChannelInitSetRingBufferPageCount',
      'VmbClientChannelInitSetTargetPnp', 'VmbPacketInitialize', 'VmbPacketSendWithExternalMdl', 'VmbPacketSendWithExternalPfns',
      'VmbChannelMapGpadl', 'VmbChannelUnmapGpadl', 'VmbServerChannelInitSetMmioMegabytes', 'VmbServerChannelInitSetTargetVtl',
    ]) {
      t[name] ??= () => {
        throw new Error(`${name}: not modelled by the kernel shim yet (src/devices/wasm/kmcl-shim.ts)`);
      };
    }
    for (const name of Object.keys(t)) t[name] = passive(name, t[name]!);
    return { kmcl: t, env: { ZwClose: (h: number) => this.zwClose(h) } };
  }

  private zwClose(h: number): number {
    this.rt.irql.requirePassive('ZwClose', `handle 0x${(h >>> 0).toString(16)}`);
    if (!this.kernelHandles.delete(h >>> 0)) throw violation('kmcl.bad-handle', 'ZwClose', `handle 0x${(h >>> 0).toString(16)}`, 'not an open kernel handle (closed twice?)');
    return STATUS.SUCCESS;
  }

  /**
   * The shim's tables and counters, for a guest driver's memory image
   * (kmcl-client-image.ts reads and refills them; nothing else should).
   */
  imageTables(): KmclImageTables {
    this.lastPacket = null;
    return {
      channels: this.channels, byChannel: this.byChannel, packets: this.packets, incoming: this.incoming, incomingOf: this.incomingOf, kernelHandles: this.kernelHandles,
      counters: { nextChannelId: this.nextChannelId, neededWord: this.neededWord, packetRestores: this.packetRestores, interfaceRefs: this.interfaceRefs },
    };
  }

  /**
   * Empties the tables and counters as a new shim's are, with `opts` from here on (a
   * reused runtime, DriverRuntime.reuse), for restoreKmclClient to fill. Between entries only.
   */
  reset(opts: KmclShimOptions): void {
    this.opts = opts;
    this.channels.clear();
    this.byChannel.clear();
    this.packets.clear();
    this.lastPacket = null;
    this.incoming.clear();
    this.inHand = null;
    this.incomingOf.clear();
    this.kernelHandles.clear();
    this.restoreRefusals.clear();
    this.setImageCounters({ nextChannelId: 1, neededWord: 0, packetRestores: 0, interfaceRefs: 0 });
  }

  /** Puts back the counters imageTables gave (a revived guest driver). */
  setImageCounters(c: KmclImageTables['counters']): void {
    this.nextChannelId = c.nextChannelId;
    this.neededWord = c.neededWord;
    this.packetRestores = c.packetRestores;
    this.interfaceRefs = c.interfaceRefs;
  }

  /**
   * A revived channel's and its packets' links to the driver's functions: the same
   * closures VmbChannelInitSet*Callbacks, VmbChannelEnable and VmbPacketAllocate made.
   */
  rewire(r: ChannelRec): void {
    if (r.states.opened || r.states.closed || r.states.suspend || r.states.started || r.states.postStarted) this.wireCallbacks(r);
    const pc = r.processingComplete;
    if (r.processPacket) r.ch.processPacket = (_c, pkt, buf, flags) => this.onPacket(r, pkt, buf, flags);
    r.ch.processingComplete = pc ? (_c, n) => void this.rt.callback(pc, 'EvtVmbChannelProcessingComplete', DISPATCH_LEVEL, r.handle, n) : null;
    if (this.opts.platformFaults) r.ch.faults = this.opts.platformFaults;
    for (const pr of this.packets.values()) if (pr.chan === r) pr.p.completionRoutine = this.routine;
  }

  /** At unload: channels never cleaned up, packets never freed, the interface still referenced. */
  checkUnload(): void {
    for (const r of this.channels.values()) {
      throw violation('kmcl.channel-leak', 'EvtDriverUnload', `VMBCHANNEL 0x${r.handle.toString(16)}`, 'allocated and never cleaned up (VmbChannelCleanup)');
    }
    const left = [...this.packets.values()].filter((p) => !p.freed);
    if (left.length > 0) throw violation('kmcl.packet-leak', 'EvtDriverUnload', left.map((p) => `VMBPACKET 0x${p.handle.toString(16)}`).join(', '), `${left.length} packet object(s) never freed`);
  }
}
