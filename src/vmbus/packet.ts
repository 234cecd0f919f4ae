// Packet objects: VMBPACKET (outgoing, owned by the sender) and VMBPACKETCOMPLETION
// (an incoming packet as handed to the receiver). SPEC-NOTES 3 and 4.1.
//
// Both are plain records so that the guest's side can be copied into a memory image
// (a saved or checkpointed guest), and a channel's side can be saved packet by packet.

import type { TxId } from './tx-id.ts';
import type { Channel } from './channel.ts';
import type { NtStatus } from './status.ts';

export const FORMAT_FLAG_WAIT_FOR_COMPLETION = 0x1;
export const FORMAT_FLAG_FORCE_MDL_LENGTH = 0x2;
export const FORMAT_FLAG_PAGED_BUFFER = 0x4;
/** VMBUS_CHANNEL_FORMAT_FLAGS: every defined send flag. */
export const FORMAT_FLAGS = 0x7;

/**
 * idle: allocated (or completed and reusable); queued: inside the library, the ring was
 * full; awaiting: in the ring, waiting for the peer's completion; completed: its routine
 * ran; freed: VmbPacketFree was called.
 */
export type PacketState = 'idle' | 'queued' | 'awaiting' | 'completed' | 'freed';

export type CompletionRoutine = (packet: VmbPacket, status: NtStatus, response: Uint8Array | null) => void;

export interface VmbPacket {
  readonly id: number;
  readonly channel: Channel;
  state: PacketState;
  transId: TxId;
  wantCompletion: boolean;
  payload: Uint8Array | null;
  /** VmbPacketSetPointer / GetPointer: one driver value per packet. */
  pointer: unknown;
  /** null = the default routine, which frees the packet. */
  completionRoutine: CompletionRoutine | null;
}

export function createPacket(channel: Channel, id: number): VmbPacket {
  return { id, channel, state: 'idle', transId: 0, wantCompletion: false, payload: null, pointer: null, completionRoutine: null };
}

/** The default completion routine frees the packet (SPEC-NOTES 4.1). */
export const defaultCompletionRoutine: CompletionRoutine = (packet) => {
  packet.state = 'freed';
};

/** delivered: the driver holds it; deferred: back on the parse queue; completed or failed: retired. */
export type IncomingState = 'delivered' | 'deferred' | 'completed' | 'failed';

export interface IncomingPacket {
  readonly channel: Channel;
  readonly transId: TxId;
  readonly wantCompletion: boolean;
  readonly payload: Uint8Array;
  state: IncomingState;
  deferrals: number;
}

export function createIncoming(channel: Channel, transId: TxId, wantCompletion: boolean, payload: Uint8Array): IncomingPacket {
  return { channel, transId, wantCompletion, payload, state: 'delivered', deferrals: 0 };
}
