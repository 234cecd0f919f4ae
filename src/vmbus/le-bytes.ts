// Little-endian fields read and written straight on a byte array. A DataView per small
// record (a message header, a SaveBuf, a LibBuf) cost more than the record's own work,
// and these run several times per packet.

export function putU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
}

export function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

export function getU16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

export function getU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
