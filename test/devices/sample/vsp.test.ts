// The VSP twin's resume path: after a save of a VM that runs on (a checkpoint taken under
// the runningCheckpoint choice save-and-continue), VmbChannelStart on the same channel
// object. What was in flight stays the channel's, each packet with its transaction record.
import { describe, expect, it } from 'vitest';
import { hostWithTraffic } from './support/sample-host.ts';
import { fifoItems } from '../../../src/vmbus/fifo.ts';
import type { VmbPacket } from '../../../src/vmbus/packet.ts';

describe('VSP twin: resume after a save (save-and-continue)', () => {
  it('starts the same channel again with every packet and its transaction record in place, restoring nothing', () => {
    const { sink, vsp } = hostWithTraffic();
    const ch = vsp.channel;
    const awaiting: VmbPacket[] = [];
    ch.awaiting.forEachUnordered((p) => awaiting.push(p));
    const queued = fifoItems(ch.queue).map((q) => (q.kind === 'packet' ? q.packet : null));
    const records = awaiting.map((p) => p.pointer);
    expect(awaiting.length).toBeGreaterThan(0);
    expect(queued.length).toBeGreaterThan(0);

    expect(vsp.save().length).toBeGreaterThan(0);
    expect(ch.state).toEqual({ conn: 'open', flow: 'paused' });
    const before = sink.events.length;
    vsp.resume();
    expect(ch.state).toEqual({ conn: 'open', flow: 'active' });
    const after = sink.events.slice(before);
    expect(after.map((e) => [e.ev, (e as { state?: string }).state])).toEqual([['ch.state', 'Started'], ['ch.state', 'Active']]);
    const still: VmbPacket[] = [];
    ch.awaiting.forEachUnordered((p) => still.push(p));
    expect(still).toEqual(awaiting);
    expect(still.map((p) => p.pointer)).toEqual(records);
    expect(still.every((p, i) => p === awaiting[i] && p.pointer === records[i])).toBe(true);
    expect(fifoItems(ch.queue).map((q) => (q.kind === 'packet' ? q.packet : null))).toEqual(queued);
  });

  it('sends again after it: a send between the save and the resume is KMCL misuse (REVIEW E3), one after is not', () => {
    const { sink, vsp } = hostWithTraffic();
    vsp.save();
    vsp.resume();
    vsp.send('transaction', 41, 1, 64, 0);
    expect(sink.events.filter((e) => e.ev === 'kmcl.violation')).toEqual([]);
    expect(sink.events.filter((e) => e.ev === 'pkt.send').map((e) => (e as { tx: number }).tx).at(-1)).toBe(41);

    const other = hostWithTraffic();
    other.vsp.save();
    expect(() => other.vsp.send('transaction', 41, 1, 64, 0)).toThrow();
    expect(other.sink.events.filter((e) => e.ev === 'kmcl.violation')).toHaveLength(1);
  });
});
