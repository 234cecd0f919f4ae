// REVIEW E10: the VSP twin's host objects go the way a real VSP's do, with
// VmbChannelDisable (which cancels what is still queued or awaiting its completion) and
// VmbChannelCleanup (which finds every packet freed), not with a call KMCL does not have.
import { describe, expect, it } from 'vitest';
import { hostWithTraffic } from './support/sample-host.ts';
import { Channel } from '../../../src/vmbus/channel.ts';

describe('VSP teardown (Disable + Cleanup)', () => {
  it('after a save cancels what was queued or awaiting, frees every packet, and traces no completion for it', () => {
    const { sink, vsp } = hostWithTraffic();
    const ch = vsp.channel;
    expect(ch.awaiting.size).toBeGreaterThan(0);
    expect(ch.queue.items.length - ch.queue.head).toBeGreaterThan(0);
    vsp.save();
    const before = sink.events.length;
    vsp.teardown({ discard: false });
    expect(ch.state.conn).toBe('disabled');
    expect(ch.awaiting.size).toBe(0);
    expect(ch.livePackets.size).toBe(0);
    const after = sink.events.slice(before);
    expect(after.map((e) => e.ev)).toEqual(['ch.state']);
    expect(after[0]).toMatchObject({ side: 'host', state: 'Closed' });
  });

  it('KMCL has no abandon(): the channel offers only the real calls', () => {
    expect('abandon' in Channel.prototype).toBe(false);
  });
});
