// The checks a decoded guest image passes before anything is built from it.
//
// A saved VM's checksum says the bytes arrived as they were sealed, not that whoever
// sealed them wrote a sound image (another program, an older bench with a bug, a blob
// edited and sealed again). A NaN `due` or `takenAt` made the restored guest wait for ever;
// a channel list that is not a list threw a TypeError from deep inside the restore. So
// every field is checked here first, for each image version guest-image.ts reads, and a
// bad one is a RestoreError ('bad-record') naming it.
import { RestoreError } from '../../src/vmbus/saved-state.ts';
import { isKnownPacketType, PACKET_FLAG_COMPLETION_REQUESTED } from '../../src/vmbus/ring-layout.ts';
import { isTxId } from '../../src/vmbus/tx-id.ts';

const PER_QUEUED = 4;
const PER_HELD = 5;
const PER_AWAITED = 2;

type Rec = Record<string, unknown>;

function bad(what: string): never {
  throw new RestoreError('bad-record', `the guest image ${what}`);
}

const isObject = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** NTSTATUS values: unsigned 32-bit. */
const isU32 = (v: unknown): boolean => isCount(v) && (v as number) <= 0xffffffff;
/** Transaction ids and txs are u64s (vmbus/tx-id.ts): a safe integer, or a bigint from 2^53 on. */
const isTransId = isTxId;
/** A queued write goes into the ring as it is: its type and flags must be ones a reader accepts. */
const isWrite = (flags: unknown, type: unknown): boolean =>
  (flags === 0 || flags === PACKET_FLAG_COMPLETION_REQUESTED) && typeof type === 'number' && isKnownPacketType(type);

function count(c: Rec, field: string, where: string): number {
  if (!isCount(c[field])) bad(`${where}: ${field} is not a non-negative integer`);
  return c[field] as number;
}

/** Checks `image` (any version) and returns the channel ids it holds. */
export function checkGuestImage(image: unknown): number[] {
  if (!isObject(image)) bad('is not a record');
  if (typeof image.takenAt !== 'number' || !Number.isFinite(image.takenAt)) bad('has no finite takenAt');
  if (!Array.isArray(image.channels)) bad('has no list of channels');
  const version = image.image;
  if (version !== undefined && version !== 2 && version !== 3) bad(`has an unknown version ${String(version)}`);
  const ids: number[] = [];
  (image.channels as unknown[]).forEach((c, i) => {
    if (!isObject(c)) bad(`channel ${i} is not a record`);
    const where = `channel ${i}`;
    const ch = count(c, 'ch', where);
    if (ids.includes(ch)) bad(`holds channel ${ch} twice`);
    ids.push(ch);
    if (!isTxId(c.nextTx)) bad(`${where}: nextTx is not a transaction id (a u64)`);
    if (!isTxId(c.nextTransId)) bad(`${where}: nextTransId is not a transaction id (a u64)`);
    if (typeof c.writable !== 'boolean') bad(`${where}: writable is not true or false`);
    if (c.closed !== undefined && c.closed !== true) bad(`${where}: closed is neither absent nor true`);
    if (version === 3) checkV3(c, where);
    else if (version === 2) checkV2(c, where);
    else checkV1(c, where);
  });
  return ids;
}

function checkV3(c: Rec, where: string): void {
  const queued = count(c, 'queued', where);
  const held = count(c, 'held', where);
  const awaited = count(c, 'awaited', where);
  const { numbers, bytes } = c;
  if (!(numbers instanceof Float64Array)) bad(`${where}: numbers are missing`);
  if (!(bytes instanceof Uint8Array)) bad(`${where}: bytes are missing`);
  if (numbers.length !== queued * PER_QUEUED + held * PER_HELD + awaited * PER_AWAITED) {
    bad(`${where}: does not hold the ${queued} queued, ${held} held and ${awaited} awaited entries it counts`);
  }
  // Ids from 2^53 on stand in `big` by their index in `numbers`, which holds NaN there
  // (guest-image.ts); guest-image.ts checks each entry's value when it puts it back.
  const bigAt = new Set<number>();
  if (c.big !== undefined) {
    if (!Array.isArray(c.big)) bad(`${where}: the list of 64-bit ids is malformed`);
    for (const e of c.big as unknown[]) if (Array.isArray(e) && isCount(e[0])) bigAt.add(e[0] as number);
  }
  const idAt = (k: number): boolean => bigAt.has(k) || isCount(numbers[k]);
  let n = 0;
  let size = 0;
  for (let i = 0; i < queued; i++, n += PER_QUEUED) {
    if (!isWrite(numbers[n], numbers[n + 1]) || !idAt(n + 2)) bad(`${where}: queued write ${i} has a bad flag, type or transaction id`);
    size += length(numbers[n + 3], `${where}: queued write ${i}`);
  }
  for (let i = 0; i < held; i++, n += PER_HELD) {
    if (!idAt(n) || !idAt(n + 1)) bad(`${where}: held transaction ${i} has a bad transaction id or tx`);
    if (!Number.isFinite(numbers[n + 2])) bad(`${where}: held transaction ${i} has no finite due time`);
    if (!isU32(numbers[n + 3])) bad(`${where}: held transaction ${i} has a bad status`);
    size += length(numbers[n + 4], `${where}: held transaction ${i}`);
  }
  for (let i = 0; n < numbers.length; i++, n += PER_AWAITED) {
    if (!idAt(n) || !idAt(n + 1)) bad(`${where}: awaited request ${i} has a bad transaction id or tx`);
  }
  if (size > bytes.length) bad(`${where}: has payloads past its ${bytes.length} bytes`);
}

function checkV2(c: Rec, where: string): void {
  const q = c.queue as Rec | undefined;
  const h = c.held as Rec | undefined;
  if (!isObject(q) || !isObject(h)) bad(`${where}: queue or held columns are missing`);
  if (!(c.bytes instanceof Uint8Array)) bad(`${where}: bytes are missing`);
  const columns = (o: Rec, names: string[], what: string): number => {
    const cols = names.map((n) => o[n]);
    if (!cols.every((col) => Array.isArray(col) && col.length === (cols[0] as unknown[]).length)) bad(`${where}: the ${what} columns differ in length`);
    return (cols[0] as unknown[]).length;
  };
  let size = 0;
  const nq = columns(q, ['flags', 'type', 'transId', 'len'], 'queue');
  for (let i = 0; i < nq; i++) {
    if (!isWrite((q.flags as unknown[])[i], (q.type as unknown[])[i]) || !isTransId((q.transId as unknown[])[i])) bad(`${where}: queued write ${i} has a bad flag, type or transaction id`);
    size += length((q.len as unknown[])[i], `${where}: queued write ${i}`);
  }
  const nh = columns(h, ['transId', 'tx', 'due', 'status', 'len'], 'held');
  for (let i = 0; i < nh; i++) {
    if (!isTransId((h.transId as unknown[])[i]) || !isTransId((h.tx as unknown[])[i]) || !isU32((h.status as unknown[])[i])) bad(`${where}: held transaction ${i} has a bad id, tx or status`);
    if (!Number.isFinite((h.due as unknown[])[i])) bad(`${where}: held transaction ${i} has no finite due time`);
    size += length((h.len as unknown[])[i], `${where}: held transaction ${i}`);
  }
  checkAwaitingMap(c.awaiting, where);
  if (size > (c.bytes as Uint8Array).length) bad(`${where}: has payloads past its ${(c.bytes as Uint8Array).length} bytes`);
}

/** Version 1: the live state itself, fifos and all. */
function checkV1(c: Rec, where: string): void {
  const fifoItems = (f: unknown, what: string): Rec[] => {
    if (!isObject(f) || !Array.isArray(f.items) || !isCount(f.head) || (f.head as number) > f.items.length) bad(`${where}: the ${what} is malformed`);
    const items = (f.items as unknown[]).slice(f.head as number);
    if (!items.every(isObject)) bad(`${where}: an entry of the ${what} is not a record`);
    return items as Rec[];
  };
  fifoItems(c.queue, 'queue').forEach((w, i) => {
    if (!isWrite(w.flags, w.type) || !isTransId(w.transId) || !(w.payload instanceof Uint8Array)) bad(`${where}: queued write ${i} is malformed`);
  });
  fifoItems(c.held, 'held list').forEach((t, i) => {
    if (!isTransId(t.transId) || !isTransId(t.tx) || !isU32(t.status) || !(t.response instanceof Uint8Array)) bad(`${where}: held transaction ${i} is malformed`);
    if (typeof t.due !== 'number' || !Number.isFinite(t.due)) bad(`${where}: held transaction ${i} has no finite due time`);
  });
  checkAwaitingMap(c.awaiting, where);
}

function length(v: unknown, where: string): number {
  if (!isCount(v)) bad(`${where}: its length is not a non-negative integer`);
  return v as number;
}

function checkAwaitingMap(m: unknown, where: string): void {
  if (!(m instanceof Map)) bad(`${where}: the awaited requests are missing`);
  for (const [k, v] of m) if (!isTransId(k) || !isTransId(v)) bad(`${where}: an awaited request has a bad transaction id or tx`);
}
