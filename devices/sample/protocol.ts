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

import { txLo, txMod, type TxId } from '../../src/vmbus/tx-id.ts';
import { fnv1a64Into, type DigestHalves } from '../../src/devices/digest.ts';
import { putU16, putU32, putU64, getU16, getU32, getU64 } from '../../src/vmbus/le-bytes.ts';

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
  /**
   * STATUS_CANCELLED: a request in flight on a channel the host rescinded ends at its
   * sender with this status, and is never sent again (PROTOCOL.md, "Rescind and re-offer").
   */
  Cancelled: 0xc0000120,
} as const;

/** Completion payload: header + u64 FNV-1a of the request payload. */
export const COMPLETION_SIZE = HEADER_SIZE + 8;

export interface MessageHeader {
  type: number;
  version: number;
  /** total message length in bytes, header included */
  length: number;
  tx: TxId;
  arg0: number;
  arg1: number;
}

/** Body byte i of transaction tx: lets the receiver check the payload end to end. */
export function bodyByte(tx: TxId, i: number): number {
  return (((typeof tx === 'number' ? tx : txLo(tx)) & 0xff) * 0x9e + i * 0x1f + 0x5a) & 0xff;
}

// Every body is a run of one sequence: byte i is (start + 0x1f * i) & 0xff, and since
// 0x1f is odd the values k * 0x1f (k = 0..255) hit every start once. So the body of tx is
// BODY_RUN[k, k + n) for the k with k * 0x1f = bodyByte(tx, 0) (mod 256): one native copy
// per message instead of a byte loop.
const BODY_RUN = Uint8Array.from({ length: 256 + MAX_MESSAGE_SIZE }, (_, k) => (k * 0x1f) & 0xff);
const RUN_START = new Uint8Array(256);
for (let k = 0; k < 256; k++) RUN_START[BODY_RUN[k]!] = k;

/** Where the body of transaction `tx` starts in BODY_RUN. */
function runStart(tx: TxId): number {
  return RUN_START[bodyByte(tx, 0)]!;
}

/**
 * The status rule: what the receiver of a Request or HostTransaction completes it with.
 * A damaged message gets DataError; otherwise every 16th transaction (tx % 16 == 15)
 * fails with InvalidDeviceState, so failure statuses travel through save/restore too.
 */
export function statusFor(tx: TxId, intact: boolean): number {
  if (!intact) return Status.DataError;
  return (typeof tx === 'number' ? tx % 16 : txMod(tx, 16)) === 15 ? Status.InvalidDeviceState : Status.Success;
}

export function encodeMessage(
  type: number,
  tx: TxId,
  length: number,
  arg0 = 0,
  arg1 = 0,
): Uint8Array {
  if (length < HEADER_SIZE || length > MAX_MESSAGE_SIZE) {
    throw new RangeError(`message length ${length} outside [${HEADER_SIZE}, ${MAX_MESSAGE_SIZE}]`);
  }
  const buf = new Uint8Array(length);
  putU16(buf, 0, type);
  putU16(buf, 2, PROTOCOL_VERSION);
  putU32(buf, 4, length);
  putU64(buf, 8, tx);
  putU32(buf, 16, arg0 >>> 0);
  putU32(buf, 20, arg1 >>> 0);
  const k = runStart(tx);
  const body = length - HEADER_SIZE;
  if (body <= 64) {
    // A short body is copied byte by byte: cheaper than the view `subarray` allocates.
    for (let i = 0; i < body; i++) buf[HEADER_SIZE + i] = BODY_RUN[k + i]!;
  } else {
    buf.set(BODY_RUN.subarray(k, k + body), HEADER_SIZE);
  }
  return buf;
}

/** Reads a header; null when the buffer is too short to hold one. */
export function decodeHeader(buf: Uint8Array): MessageHeader | null {
  if (buf.length < HEADER_SIZE) return null;
  return decodeHeaderInto(newHeader(), buf);
}

/** A header to reuse with `decodeHeaderInto`. */
export function newHeader(): MessageHeader {
  return { type: 0, version: 0, length: 0, tx: 0, arg0: 0, arg1: 0 };
}

/**
 * Reads a header into `out` (a caller's scratch, so nothing is allocated per packet) and
 * returns it; null when the buffer is too short to hold one. `out` is overwritten by the
 * next call: copy what you keep.
 */
export function decodeHeaderInto(out: MessageHeader, buf: Uint8Array): MessageHeader | null {
  if (buf.length < HEADER_SIZE) return null;
  out.type = getU16(buf, 0);
  out.version = getU16(buf, 2);
  out.length = getU32(buf, 4);
  out.tx = getU64(buf, 8);
  out.arg0 = getU32(buf, 16);
  out.arg1 = getU32(buf, 20);
  return out;
}

/**
 * Whether a received message is intact: the header's length fits the delivered bytes
 * (which may carry up to 7 bytes of ring padding) and every body byte follows the pattern.
 */
export function isIntact(buf: Uint8Array, h: MessageHeader): boolean {
  if (h.version !== PROTOCOL_VERSION) return false;
  if (h.length < HEADER_SIZE || h.length > buf.length || buf.length - h.length > 7) return false;
  const k = runStart(h.tx);
  for (let i = 0; i < h.length - HEADER_SIZE; i++) {
    if (buf[HEADER_SIZE + i] !== BODY_RUN[(k + i) & 0xff]) return false;
  }
  return true;
}

const receivedDigest: DigestHalves = { hi: 0, lo: 0 };

/**
 * The completion payload for a received message, following the status rule. `digest`
 * is the received message's digest when the caller has it already (it is the one its
 * pkt.recv event carries), else it is computed here.
 */
export function encodeCompletion(received: Uint8Array, h: MessageHeader, status: number, digest?: DigestHalves): Uint8Array {
  let d = digest;
  if (!d) {
    d = receivedDigest;
    fnv1a64Into(d, received, 0, Math.min(h.length, received.length));
  }
  const buf = new Uint8Array(COMPLETION_SIZE);
  putU16(buf, 0, MsgType.CompletionFlag | h.type);
  putU16(buf, 2, PROTOCOL_VERSION);
  putU32(buf, 4, COMPLETION_SIZE);
  putU64(buf, 8, h.tx);
  putU32(buf, 16, status >>> 0);
  putU32(buf, 20, 0);
  putU32(buf, 24, d.lo);
  putU32(buf, 28, d.hi);
  return buf;
}

/** NTSTATUS as the trace writes it: 8 hex digits. */
export function statusHex(status: number): string {
  // A run uses a handful of statuses: format each once.
  let hex = STATUS_HEX.get(status);
  if (hex === undefined) {
    hex = (status >>> 0).toString(16).padStart(8, '0');
    if (STATUS_HEX.size < 256) STATUS_HEX.set(status, hex);
  }
  return hex;
}
const STATUS_HEX = new Map<number, string>();
