// Reading a message's tx straight out of the ring, without copying the payload: the
// trace validator asks this of every packet waiting to be delivered at every step.
import type { TxId } from '../../src/vmbus/tx-id.ts';
import type { IncomingRing, PacketView } from '../../src/vmbus/ring.ts';
import { u64FromHalves } from '../../src/vmbus/le-bytes.ts';

/** The protocol tx (header offset 8, u64) of the packet `v` points at; 0 if too short. */
export function peekTx(inc: IncomingRing, v: PacketView): TxId {
  if (v.payloadLen < 16) return 0;
  return u64FromHalves(inc.mem.u32(v.payloadAt + 8), inc.mem.u32(v.payloadAt + 12));
}
