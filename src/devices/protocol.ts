// The sample device protocol: wire messages, the status rule and the body pattern.
//
// lab/drivers/PROTOCOL.md is the specification; this file is its TypeScript
// implementation and the single source of the constants. The C drivers carry the same
// values in lab/drivers/common/sample-protocol.h, and test/devices/protocol-constants.test.ts
// fails when the two disagree.
//
// Every message is one in-band VMBus packet whose payload starts with a 24-byte header
// (all little-endian). The ring only knows lengths in 8-byte units, so the exact length
// travels in the header.

import { digestHex } from './digest.ts';

export const PROTOCOL_VERSION = 1;

/** Interface type GUID the VSP offers and the guest driver matches. */
export const INTERFACE_TYPE_GUID = '8d2f5c3a-71b4-4e0e-9a6d-2c1f0b7e5a91';

export const HEADER_SIZE = 24;
/** Largest message (header + body) the protocol sends; the channel's max packet size. */
export const MAX_MESSAGE_SIZE = 16384;
/** Default ring sizes in 4 KiB data pages, per direction. */
export const DEFAULT_RING_PAGES = 4;

export const MsgType = {
  /** guest -> host, completion requested. arg0 = completion mode, arg1 = VSP hold (ms). */
  Request: 1,
  /** host -> guest, sent with WAIT_FOR_COMPLETION. arg0 = guest hold (ms). */
  HostTransaction: 2,
  /** either direction, no completion requested. */
  Notify: 3,
  /** completion payload of a Request / HostTransaction: type = 0x80 | original type. */
  CompletionFlag: 0x80,
} as const;

/** How the VSP completes a guest request (arg0 of a Request). */
export const CompletionMode = {
  /** VmbChannelPacketComplete inside EvtVmbChannelProcessPacket. */
  Inline: 0,
  /** VmbChannelPacketDeferToPassive once, then complete on redelivery. */
  Deferred: 1,
  /** complete after arg1 milliseconds. */
  Hold: 2,
} as const;
export type CompletionModeValue = 0 | 1 | 2;

export const Status = {
  Success: 0x00000000,
  /** the body did not match the protocol's pattern or the header's length was wrong */
  DataError: 0xc000003e,
  /** the status rule's deliberate failure (see statusFor) */
  InvalidDeviceState: 0xc0000184,
} as const;

/** Completion payload: header + u64 FNV-1a of the request payload. */
export const COMPLETION_SIZE = HEADER_SIZE + 8;

export interface MessageHeader {
  type: number;
  version: number;
  /** total message length in bytes, header included */
  length: number;
  tx: number;
  arg0: number;
  arg1: number;
}

/** Body byte i of transaction tx: lets the receiver check the payload end to end. */
export function bodyByte(tx: number, i: number): number {
  return ((tx & 0xff) * 0x9e + i * 0x1f + 0x5a) & 0xff;
}

/**
 * The status rule: what the receiver of a Request or HostTransaction completes it with.
 * A damaged message gets DataError; otherwise every 16th transaction (tx % 16 == 15)
 * fails with InvalidDeviceState, so failure statuses travel through save/restore too.
 */
export function statusFor(tx: number, intact: boolean): number {
  if (!intact) return Status.DataError;
  return tx % 16 === 15 ? Status.InvalidDeviceState : Status.Success;
}

export function encodeMessage(
  type: number,
  tx: number,
  length: number,
  arg0 = 0,
  arg1 = 0,
): Uint8Array {
  if (length < HEADER_SIZE || length > MAX_MESSAGE_SIZE) {
    throw new RangeError(`message length ${length} outside [${HEADER_SIZE}, ${MAX_MESSAGE_SIZE}]`);
  }
  const buf = new Uint8Array(length);
  const dv = new DataView(buf.buffer);
  dv.setUint16(0, type, true);
  dv.setUint16(2, PROTOCOL_VERSION, true);
  dv.setUint32(4, length, true);
  dv.setUint32(8, tx >>> 0, true);
  dv.setUint32(12, Math.floor(tx / 0x100000000), true);
  dv.setUint32(16, arg0 >>> 0, true);
  dv.setUint32(20, arg1 >>> 0, true);
  for (let i = 0; i < length - HEADER_SIZE; i++) buf[HEADER_SIZE + i] = bodyByte(tx, i);
  return buf;
}

/** Reads a header; null when the buffer is too short to hold one. */
export function decodeHeader(buf: Uint8Array): MessageHeader | null {
  if (buf.length < HEADER_SIZE) return null;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    type: dv.getUint16(0, true),
    version: dv.getUint16(2, true),
    length: dv.getUint32(4, true),
    tx: dv.getUint32(8, true) + dv.getUint32(12, true) * 0x100000000,
    arg0: dv.getUint32(16, true),
    arg1: dv.getUint32(20, true),
  };
}

/**
 * Whether a received message is intact: the header's length fits the delivered bytes
 * (which may carry up to 7 bytes of ring padding) and every body byte follows the pattern.
 */
export function isIntact(buf: Uint8Array, h: MessageHeader): boolean {
  if (h.version !== PROTOCOL_VERSION) return false;
  if (h.length < HEADER_SIZE || h.length > buf.length || buf.length - h.length > 7) return false;
  for (let i = 0; i < h.length - HEADER_SIZE; i++) {
    if (buf[HEADER_SIZE + i] !== bodyByte(h.tx, i)) return false;
  }
  return true;
}

/** The completion payload for a received message, following the status rule. */
export function encodeCompletion(received: Uint8Array, h: MessageHeader, status: number): Uint8Array {
  const buf = new Uint8Array(COMPLETION_SIZE);
  const dv = new DataView(buf.buffer);
  dv.setUint16(0, MsgType.CompletionFlag | h.type, true);
  dv.setUint16(2, PROTOCOL_VERSION, true);
  dv.setUint32(4, COMPLETION_SIZE, true);
  dv.setUint32(8, h.tx >>> 0, true);
  dv.setUint32(12, Math.floor(h.tx / 0x100000000), true);
  dv.setUint32(16, status >>> 0, true);
  dv.setUint32(20, 0, true);
  const digest = digestHex(received, 0, Math.min(h.length, received.length));
  dv.setUint32(24, parseInt(digest.slice(8), 16), true);
  dv.setUint32(28, parseInt(digest.slice(0, 8), 16), true);
  return buf;
}

/** NTSTATUS as the trace writes it: 8 hex digits. */
export function statusHex(status: number): string {
  return (status >>> 0).toString(16).padStart(8, '0');
}
