// The types around a KMCL channel endpoint: its state, callbacks, configuration and
// queued sends, and the error for driver misuse a real system would bugcheck on.

import type { TxId } from './tx-id.ts';
import type { KmclViolation } from './kmcl-rules.ts';
import type { Channel } from './channel.ts';
import type { IncomingPacket, VmbPacket } from './packet.ts';
import type { NtStatus } from './status.ts';

export class KmclUsageError extends Error {
  /** the rule broken, when the channel named it (kmcl-rules.ts) */
  readonly violation: KmclViolation | null;
  constructor(call: string, why: string, violation: KmclViolation | null = null) {
    super(violation ? `${call}: ${why} (KMCL rule ${violation.rule})` : `${call}: ${why}`);
    this.name = 'KmclUsageError';
    this.violation = violation;
  }
}

/** Connection x flow (SPEC-NOTES 2.1). Flow only means something while open. */
export type ChannelState =
  | { conn: 'disabled'; autoPauseOnEnable: boolean }
  | { conn: 'enabled' }
  | { conn: 'open'; flow: 'paused' | 'active' }
  | { conn: 'closed' };

export const STATE_CALLBACKS_VERSION = 1;
/** sizeof(VMB_CHANNEL_STATE_CHANGE_CALLBACKS) on x64: two ULONGs and five pointers. */
export const STATE_CALLBACKS_SIZE = 48;

export interface StateChangeCallbacks {
  version: number;
  size: number;
  opened?: (ch: Channel) => NtStatus;
  closed?: (ch: Channel) => void;
  suspend?: (ch: Channel) => void;
  started?: (ch: Channel) => void;
  postStarted?: (ch: Channel) => void;
}

/** VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT: zero-filled, Version and Size set. */
export function stateChangeCallbacksInit(): StateChangeCallbacks {
  return { version: STATE_CALLBACKS_VERSION, size: STATE_CALLBACKS_SIZE };
}

export type ProcessPacketCallback = (ch: Channel, pkt: IncomingPacket, buffer: Uint8Array, flags: number) => void;
export type ProcessingCompleteCallback = (ch: Channel, packetsProcessed: number) => void;
export type SavePacketCallback = (
  ch: Channel,
  packet: VmbPacket,
  saveBuf: Uint8Array | null,
  out: { bytesNeeded: number },
) => NtStatus;
export type RestorePacketCallback = (ch: Channel, libBuf: Uint8Array, saveBuf: Uint8Array) => NtStatus;

export const SERVER_INIT_FLAGS_MASK = 0x1f;
/**
 * VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL [H]: after the VM is saved and
 * restored, the channel is offered anew and the old instance abandoned (the guest sees a
 * rescind, then a new offer) instead of carrying on (REVIEW section 2, item 1).
 */
export const SERVER_INIT_FLAG_FORCE_NEW_CHANNEL = 0x8;
export const CHANNEL_INIT_FLAGS_MASK = 0x1;

export interface ChannelConfig {
  maxPacketSize: number;
  maxExternalData: { size: number; chain: number } | null;
  clientContextSize: number;
  flags: number;
  serverFlags: number;
  friendlyName: string;
  ringPages: { incoming: number; outgoing: number };
  interfaceType: string | null;
  interfaceInstance: string | null;
  vmbusHandle: unknown;
  targetVtl: number;
  mmio: { megabytes: number; optional: number } | null;
}

/** An outgoing entry in the library's queue: a packet, or a completion for the peer. */
export type QueuedSend =
  | { kind: 'packet'; packet: VmbPacket }
  | { kind: 'completion'; transId: TxId; payload: Uint8Array };

/** A client endpoint's private state (Channel.clientInternals), as a guest-memory image holds it. */
export interface ClientInternals {
  state: ChannelState;
  startRequested: boolean;
  nextPacketId: number;
  draining: boolean;
  batch: number;
  suspended: boolean;
  pausing: boolean;
}
