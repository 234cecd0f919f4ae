// The VMBus ring's wire layout: where each field sits, in bytes.
//
// Sources: Linux include/linux/hyperv.h, openvmm's vmbus_ring crate and mu_msvm's
// VmbusPacketFormat.h. Everything is little-endian,
// and a "page" is the 4 KiB Hyper-V page.
//
// A channel has two rings, one per direction, both in guest memory. Each ring is one
// control page followed by N data pages:
//
//   ring + 0x000  u32 write index      written by the ring's writer
//   ring + 0x004  u32 read index       written by the ring's reader
//   ring + 0x008  u32 interrupt mask   written by the reader: non-zero = don't signal me
//   ring + 0x00C  u32 pending send sz  written by the writer: signal me when this much is free
//   ring + 0x010  12 x u32 reserved
//   ring + 0x040  u32 feature bits     bit 0: pending-send-size flow control supported
//   ring + 0x1000 data area, N x 4096 bytes, used circularly
//
// A packet in the data area (offsets from its start p, which is 8-byte aligned):
//
//   p + 0x00  u16 type       6 in-band, 7 transfer pages, 9 GPA direct, 0xB completion
//   p + 0x02  u16 offset8    header length in 8-byte units (>= 2); payload at p + offset8*8
//   p + 0x04  u16 len8       packet length in 8-byte units, trailer excluded
//   p + 0x06  u16 flags      bit 0: completion requested
//   p + 0x08  u64 trans_id
//   p + offset8*8            payload, zero-padded to 8 bytes
//   p + len8*8  u64 trailer  low 32 bits 0, high 32 bits = p
//
// The packet's footprint in the ring is len8*8 + 8, and the next packet starts there.

export const PAGE_SIZE = 4096;
export const CONTROL_PAGE_SIZE = PAGE_SIZE;

/** Control page fields, as indices of 32-bit words (byte offset / 4). */
export const ControlWord = {
  writeIndex: 0x00 / 4,
  readIndex: 0x04 / 4,
  interruptMask: 0x08 / 4,
  pendingSendSize: 0x0c / 4,
  featureBits: 0x40 / 4,
} as const;

export const FEATURE_SUPPORTS_PENDING_SEND_SIZE = 1;

/** Packet descriptor field offsets, in bytes from the packet start. */
export const Descriptor = {
  type: 0x00,
  offset8: 0x02,
  len8: 0x04,
  flags: 0x06,
  transIdLo: 0x08,
  transIdHi: 0x0c,
  size: 0x10,
} as const;

export const TRAILER_SIZE = 8;

export const PacketType = {
  dataInBand: 0x6,
  dataUsingTransferPages: 0x7,
  dataUsingGpaDirect: 0x9,
  completion: 0xb,
} as const;
export type PacketTypeValue = (typeof PacketType)[keyof typeof PacketType];

// Compared directly rather than through a Set: the reader asks this for every packet.
export function isKnownPacketType(t: number): boolean {
  return t === PacketType.dataInBand || t === PacketType.completion || t === PacketType.dataUsingTransferPages || t === PacketType.dataUsingGpaDirect;
}

export const PACKET_FLAG_COMPLETION_REQUESTED = 1;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes an in-band or completion packet with this payload occupies in the ring. */
export function inBandFootprint(payloadBytes: number): number {
  return Descriptor.size + align8(payloadBytes) + TRAILER_SIZE;
}

/** Bytes of one ring (control page + data) for `dataPages` data pages. */
export function ringBytes(dataPages: number): number {
  return CONTROL_PAGE_SIZE + dataPages * PAGE_SIZE;
}
