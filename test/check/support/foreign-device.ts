// A trace of a device the sample model does not know, made from a real emulator trace:
// the same packet flow (every send, receive, completion, save and restore where it was),
// with other payloads, lengths, completion statuses and SaveBufs, rewritten consistently
// end to end. What a receiver got is what its sender sent, a completion carries what the
// receiver completed with, and a restore carries the SaveBuf its save wrote, so the run
// still keeps every device-independent property; only the sample protocol's rules break.
import { createHash } from 'node:crypto';
import type { TraceEvent } from '../../../src/trace/schema.ts';

const digest = (...parts: Array<string | number | bigint>): string => createHash('sha256').update(parts.join('/')).digest('hex').slice(0, 16);

/** The other device's status rule: not the sample's (which gives 00000000 or c0000184 by tx). */
export const foreignStatus = (tx: number | bigint): string => (Number(tx) % 3 === 0 ? 'c0000010' : '00000103');

export function asForeignDevice(events: readonly TraceEvent[]): TraceEvent[] {
  return events.map((e): TraceEvent => {
    switch (e.ev) {
      case 'pkt.send':
      case 'pkt.recv':
        return { ...e, len: e.len * 3 + 8, digest: digest('request', e.ch, e.dir, e.tx) };
      case 'pkt.complete':
        return { ...e, len: 24 + (Number(e.tx) % 5) * 8, status: foreignStatus(e.tx), digest: digest('response', e.ch, e.dir, e.tx) };
      case 'pkt.completion':
        return { ...e, status: foreignStatus(e.tx), digest: digest('response', e.ch, e.dir, e.tx) };
      case 'pkt.save':
        return { ...e, saveLen: e.saveLen + 40, saveDigest: digest('savebuf', e.saveDigest) };
      case 'pkt.restore':
        return { ...e, saveDigest: digest('savebuf', e.saveDigest) };
      default:
        return e;
    }
  });
}
