// blockq: a second device for the bench, built only through the device module interface
// (src/device-api/device-module.ts), to show it is not shaped around the sample. It is a
// toy block queue: the guest queues requests, the host answers them out of order, with
// replies of varying size, and keeps several outstanding per channel; the host also sends
// events the guest answers the same way. PROTOCOL.md beside this file is its specification.
//
// Every message is one in-band VMBus packet whose payload starts with a 20-byte header,
// little-endian: u16 type, u16 mode, u32 length (header included), u64 tx, u32 hold (ms).

import { txLo, txMod, type TxId } from '../../src/vmbus/tx-id.ts';
import { getU16, getU32, getU64, putU16, putU32, putU64 } from '../../src/vmbus/le-bytes.ts';
import { fnv1a64Into, type DigestHalves } from '../../src/devices/digest.ts';

export const INTERFACE_TYPE_GUID = '3b8e0c55-2f1d-4a7c-b6e2-9d40a1c7f3e8';
export const HEADER_SIZE = 20;
/** Largest message; the channel's maximum packet size (a reply is never larger: REPLY_MAX). */
export const MAX_MESSAGE_SIZE = 8192;

export const MsgType = {
  /** guest -> host, wants a reply (a completion) */
  Request: 0x10,
  /** its reply: the completion's payload */
  RequestReply: 0x11,
  /** host -> guest, sent with WAIT_FOR_COMPLETION; the guest replies */
  Event: 0x20,
  EventReply: 0x21,
  /** either way, wants no reply */
  Note: 0x30,
} as const;

/** How the VSP queues a request before answering (`mode` of a Request). */
export const Mode = { inline: 0, deferred: 1, hold: 2 } as const;
export type ModeName = keyof typeof Mode;

export const Status = {
  Success: 0x00000000,
  /** the rule's deliberate failure: every 7th transaction (tx % 7 == 3) */
  InvalidDeviceRequest: 0xc0000010,
  /** the body did not follow the pattern, or the length was wrong */
  DeviceDataError: 0xc000009c,
  /** a Request the guest ends at a rescind or its own close (PROTOCOL.md "Rescind and guest close"): never on the wire */
  Cancelled: 0xc0000120,
} as const;

export interface Header {
  type: number;
  mode: number;
  length: number;
  tx: TxId;
  hold: number;
}

/** Body byte i of transaction tx (another pattern than the sample's). */
export function bodyByte(tx: TxId, i: number): number {
  return ((txLo(tx) & 0xff) * 13 + i * 7 + 0x33) & 0xff;
}

export function encodeMessage(type: number, tx: TxId, length: number, mode = 0, hold = 0): Uint8Array {
  if (length < HEADER_SIZE || length > MAX_MESSAGE_SIZE) throw new RangeError(`blockq message length ${length} outside [${HEADER_SIZE}, ${MAX_MESSAGE_SIZE}]`);
  const b = new Uint8Array(length);
  putU16(b, 0, type);
  putU16(b, 2, mode);
  putU32(b, 4, length);
  putU64(b, 8, tx);
  putU32(b, 16, hold >>> 0);
  for (let i = 0; i < length - HEADER_SIZE; i++) b[HEADER_SIZE + i] = bodyByte(tx, i);
  return b;
}

export function decodeHeader(b: Uint8Array): Header | null {
  if (b.length < HEADER_SIZE) return null;
  return { type: getU16(b, 0), mode: getU16(b, 2), length: getU32(b, 4), tx: getU64(b, 8), hold: getU32(b, 16) };
}

/** The header's length fits what arrived (up to 7 bytes of ring padding) and the body follows the pattern. */
export function isIntact(b: Uint8Array, h: Header): boolean {
  if (h.length < HEADER_SIZE || h.length > b.length || b.length - h.length > 7) return false;
  for (let i = 0; i < h.length - HEADER_SIZE; i++) if (b[HEADER_SIZE + i] !== bodyByte(h.tx, i)) return false;
  return true;
}

/** The status rule: damaged -> DeviceDataError; else tx % 7 == 3 fails with InvalidDeviceRequest. */
export function statusFor(tx: TxId, intact: boolean): number {
  if (!intact) return Status.DeviceDataError;
  return txMod(tx, 7) === 3 ? Status.InvalidDeviceRequest : Status.Success;
}

/** The trace's 8 hex digits of a status. */
export function statusHex(status: number): string {
  return (status >>> 0).toString(16).padStart(8, '0');
}

/**
 * A reply's size varies with the transaction: the 20-byte header, u32 status, u32 0, the
 * u64 digest of the message answered, then 8 * (tx % 8) bytes of filler (32 to 88 bytes).
 */
export function replySize(tx: TxId): number {
  return HEADER_SIZE + 16 + 8 * txMod(tx, 8);
}
export const REPLY_MAX = HEADER_SIZE + 16 + 8 * 7;

/** The reply to a received message `h`, with its status; `d` the digest of what arrived. */
export function encodeReply(h: Header, status: number, d: DigestHalves): Uint8Array {
  const n = replySize(h.tx);
  const b = new Uint8Array(n);
  putU16(b, 0, h.type + 1);
  putU16(b, 2, 0);
  putU32(b, 4, n);
  putU64(b, 8, h.tx);
  putU32(b, 16, 0);
  putU32(b, 20, status >>> 0);
  putU32(b, 24, d.lo);
  putU32(b, 28, d.hi);
  for (let i = 32; i < n; i++) b[i] = (i * 11 + txLo(h.tx)) & 0xff;
  return b;
}

/** The status a reply carries; DeviceDataError when it is too short to carry one. */
export function replyStatus(b: Uint8Array): number {
  return b.length >= HEADER_SIZE + 8 ? getU32(b, 20) : Status.DeviceDataError;
}

/** A reply's own length (its header's), within what arrived. */
export function replyLength(b: Uint8Array): number {
  return b.length >= HEADER_SIZE ? Math.min(getU32(b, 4), b.length) : b.length;
}

/**
 * When a request (or event) is answered, ms after it arrived: its hold, plus 0 to 3 ms by
 * tx. Requests that arrive together are answered in another order than they came.
 */
export function answerDelay(tx: TxId, hold: number): number {
  return hold + DELAY_BY_TX[txMod(tx, 4)]!;
}
/** tx 1, 2, 3, 4 arriving at once are answered as 1, 3, 4, 2. */
const DELAY_BY_TX = [2, 0, 3, 1];

/** FNV-1a of the first `len` bytes, as halves (the trace's digest). */
export function digestOf(out: DigestHalves, b: Uint8Array, len = b.length): DigestHalves {
  fnv1a64Into(out, b, 0, Math.min(len, b.length));
  return out;
}
