// The saved VM: a separate, versioned record (STYLE.md 5). Only save and restore touch
// live objects; nothing else reads these types.
//
// Envelope (all little-endian):
//   +0  8 bytes  magic "VMBSAVE\0"
//   +8  u32      format version (3; versions 1 and 2 are still read)
//   +12 u32      CRC-32 of the body
//   +16 u32      body length
//   +20 body     v8-serialized SavedVmV1
//
// Restore takes unknown bytes and checks magic, version, length and checksum before it
// decodes anything, then checks the record's shape. A truncated, corrupted or
// wrong-version blob is refused with a RestoreError naming what is wrong, and nothing is
// built from it. Fields added later must be optional with a meaningful default.

import { crc32 } from 'node:zlib';
import { DefaultSerializer, deserialize } from 'node:v8';
import { ringBytes } from './ring-layout.ts';
import { isTxId } from './tx-id.ts';

export const SAVED_VM_MAGIC = 'VMBSAVE\0';
/**
 * The envelope and record are the same in every version; what changed is the guest's
 * image (`guest`, opaque here; devices/sample/guest-image.ts): version 1 held the live state,
 * version 2 its image in columns, version 3 (written now) the columns' numbers in one
 * typed array. Each version's blobs stay readable.
 */
export const SAVED_VM_VERSION = 3;
const READABLE_VERSIONS: readonly number[] = [1, 2, 3];
const HEADER = 20;

export type RestoreErrorCode = 'truncated' | 'bad-magic' | 'bad-version' | 'bad-checksum' | 'bad-record';

export class RestoreError extends Error {
  readonly code: RestoreErrorCode;
  constructor(code: RestoreErrorCode, message: string) {
    super(`cannot restore saved VM (${code}): ${message}`);
    this.name = 'RestoreError';
    this.code = code;
  }
}

export interface SavedChannelV1 {
  ch: number;
  /** the buffers VmbChannelSaveContinue filled, in order; each holds whole chunks */
  kmclBuffers: Uint8Array[];
}

export interface SavedVmV1 {
  v: 1;
  kind: 'vm';
  /** the channels' ring layout, so memory can be rebuilt */
  layout: Array<{ ch: number; g2hPages: number; h2gPages: number }>;
  /** guest memory: every ring, byte for byte */
  memory: Uint8Array;
  /** the guest's kernel state (its driver's records), opaque to this module */
  guest: unknown;
  /** the host side, per server channel */
  channels: SavedChannelV1[];
  /** the bench's own counters that live outside the VM (host-side tx numbering) */
  bench: { nextHostTx: Record<string, number | bigint> };
}

/**
 * Node's serializer with a shorter path for plain Uint8Arrays (the memory image, the KMCL
 * buffers, the guest's payloads): the bytes written are the ones DefaultSerializer writes
 * (view type 1, length, raw bytes), without its type search and extra view per array.
 */
class BlobSerializer extends DefaultSerializer {
  _writeHostObject(view: NodeJS.ArrayBufferView): void {
    if (view.constructor !== Uint8Array) {
      (DefaultSerializer.prototype as unknown as { _writeHostObject(v: unknown): void })._writeHostObject.call(this, view);
      return;
    }
    this.writeUint32(1);
    this.writeUint32(view.byteLength);
    this.writeRawBytes(view);
  }
}

/**
 * `vm.memory` may be a live view of guest memory: it is read here, once, and the blob
 * holds the copy (saves copying the image before serialising it).
 */
export function encodeSavedVm(vm: SavedVmV1, opts: { seal?: boolean } = {}): Uint8Array {
  // The header is written first, as raw bytes, and filled in once the body is there:
  // the envelope and the body are then one buffer (saves copying the body).
  const ser = new BlobSerializer();
  ser.writeRawBytes(new Uint8Array(HEADER));
  ser.writeHeader();
  ser.writeValue(vm);
  const buf = ser.releaseBuffer();
  // A view of the Buffer's own memory when it is exactly the blob (it is, today), so
  // that code reading `blob.buffer` or sending the blob to another thread sees only it.
  const exact = buf.byteOffset === 0 && buf.buffer.byteLength === buf.byteLength;
  const out = exact ? new Uint8Array(buf.buffer, 0, buf.byteLength) : new Uint8Array(buf);
  const body = out.subarray(HEADER);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < 8; i++) out[i] = SAVED_VM_MAGIC.charCodeAt(i);
  dv.setUint32(8, SAVED_VM_VERSION, true);
  dv.setUint32(16, body.length, true);
  if (opts.seal !== false) sealSavedVm(out);
  return out;
}

/**
 * Writes a blob's checksum. encodeSavedVm does, unless told `seal: false` by a caller
 * that keeps the blob to itself and restores it with `ownBlob` (a run's own saves): the
 * pass over the whole blob was a twentieth of each of explore's save points. Such a blob
 * must be sealed before anything else sees it, or it is refused as damaged.
 */
export function sealSavedVm(blob: Uint8Array): void {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  dv.setUint32(12, crc32(blob.subarray(HEADER)), true);
}

/**
 * `opts.ownBlob`: the caller made this very blob with encodeSavedVm and nothing else has
 * held it since (a save and restore inside one run). Its checksum is then not checked
 * (it may not even be written: see sealSavedVm): that pass over the whole blob was a
 * twentieth of each of explore's save points, and it guards against damage in storage or
 * transit, which such a blob never went through. Everything else is checked as for any
 * blob.
 */
export function decodeSavedVm(blob: unknown, opts: { ownBlob?: boolean } = {}): SavedVmV1 {
  if (!(blob instanceof Uint8Array)) throw new RestoreError('bad-record', 'the saved state is not a byte buffer');
  if (blob.length < HEADER) throw new RestoreError('truncated', `${blob.length} bytes, shorter than the ${HEADER}-byte header`);
  for (let i = 0; i < 8; i++) {
    if (blob[i] !== SAVED_VM_MAGIC.charCodeAt(i)) throw new RestoreError('bad-magic', 'this is not a saved VM from the bench');
  }
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const version = dv.getUint32(8, true);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new RestoreError('bad-version', `format version ${version}; this bench reads versions ${READABLE_VERSIONS.slice(0, -1).join(', ')} and ${READABLE_VERSIONS.at(-1)}`);
  }
  const len = dv.getUint32(16, true);
  if (blob.length - HEADER < len) throw new RestoreError('truncated', `body is ${blob.length - HEADER} of ${len} bytes`);
  if (blob.length - HEADER > len) throw new RestoreError('bad-record', `${blob.length - HEADER - len} unexpected bytes after the body`);
  const body = blob.subarray(HEADER);
  if (!opts.ownBlob && crc32(body) !== dv.getUint32(12, true)) throw new RestoreError('bad-checksum', 'the body does not match its CRC-32');
  let rec: unknown;
  try {
    rec = deserialize(body);
  } catch (e) {
    throw new RestoreError('bad-record', `the body does not decode: ${(e as Error).message}`);
  }
  return checkShape(rec);
}

function checkShape(rec: unknown): SavedVmV1 {
  const bad = (what: string): never => {
    throw new RestoreError('bad-record', what);
  };
  if (typeof rec !== 'object' || rec === null) bad('the record is not an object');
  const r = rec as Record<string, unknown>;
  if (r.v !== 1) bad(`record version ${String(r.v)}`);
  if (r.kind !== 'vm') bad(`record kind ${String(r.kind)}, expected vm`);
  if (!(r.memory instanceof Uint8Array)) bad('memory is missing');
  if (!Array.isArray(r.layout)) bad('layout is missing');
  let size = 0;
  const ids = new Set<number>();
  const isId = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  for (const l of r.layout as unknown[]) {
    const ll = l as Record<string, unknown>;
    const pages = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 4096;
    if (!isId(ll?.ch) || !pages(ll.g2hPages) || !pages(ll.h2gPages)) bad('a layout entry is malformed');
    if (ids.has(ll.ch as number)) bad(`the layout holds channel ${String(ll.ch)} twice`);
    ids.add(ll.ch as number);
    size += ringBytes(ll.g2hPages as number) + ringBytes(ll.h2gPages as number);
  }
  if ((r.memory as Uint8Array).length !== size) {
    bad(`guest memory is ${(r.memory as Uint8Array).length} bytes, its layout needs ${size}`);
  }
  if (!Array.isArray(r.channels)) bad('channels are missing');
  const saved = new Set<number>();
  for (const c of r.channels as unknown[]) {
    const cc = c as Record<string, unknown>;
    if (!isId(cc?.ch) || !Array.isArray(cc.kmclBuffers) || !cc.kmclBuffers.every((b) => b instanceof Uint8Array)) {
      bad('a channel record is malformed');
    }
    // Invariant: the host side saves only channels whose rings the layout holds, each once.
    if (!ids.has(cc.ch as number)) bad(`a channel record is for channel ${String(cc.ch)}, which the layout does not hold`);
    if (saved.has(cc.ch as number)) bad(`channel ${String(cc.ch)} is saved twice`);
    saved.add(cc.ch as number);
  }
  if (saved.size !== ids.size) bad(`${ids.size - saved.size} channel(s) of the layout have no saved host side`);
  // The guest's image is opaque here (devices/sample/guest-image.ts checks it), but its channels
  // must be the layout's too: a guest channel without rings has nothing to attach to, and
  // a channel the guest lacks has nobody to read it.
  const guestChannels = (r.guest as { channels?: unknown } | null)?.channels;
  if (Array.isArray(guestChannels)) {
    const inGuest = new Set<unknown>();
    for (const g of guestChannels) {
      const ch = (g as { ch?: unknown } | null)?.ch;
      if (isId(ch) && !ids.has(ch as number)) bad(`the guest image holds channel ${String(ch)}, which the layout does not hold`);
      inGuest.add(ch);
    }
    for (const ch of ids) if (!inGuest.has(ch)) bad(`the guest image has no channel ${ch} of the layout`);
  }
  const b = r.bench as Record<string, unknown> | undefined;
  if (typeof b !== 'object' || b === null || typeof b.nextHostTx !== 'object' || b.nextHostTx === null) bad('bench counters are missing');
  // Transaction counters are u64s (vmbus/tx-id.ts), wrapping as a u64 does.
  for (const v of Object.values(b!.nextHostTx as object)) if (!isTxId(v)) bad('a bench counter is not a transaction id (a u64)');
  return r as unknown as SavedVmV1;
}
