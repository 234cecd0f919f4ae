// The sample VSP twin at a rescind (lab/drivers/PROTOCOL.md, "Rescind and re-offer"): what
// KMCL cancels is traced as ended, once each; the packets of a restore that failed are
// freed (REVIEW D3: a VSP that forgets them leaks them, and Cleanup names the leak); and
// the host puts a new object in the channel's place, offered anew.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { sampleHost as host, savedTransactions } from './support/sample-host.ts';
import { DeviceError } from '../../../src/device-api/device-module.ts';
import { STATUS } from '../../../src/vmbus/status.ts';
import { SERVER_INIT_FLAG_FORCE_NEW_CHANNEL } from '../../../src/vmbus/channel-types.ts';

type Ev = { ev: string; side: string; tx?: number; status?: string; state?: string };

describe('the sample VSP at a rescind', () => {
  it('cancels each transaction queued or awaiting, traces each end once with KMCL\'s cancel status, and frees every packet', () => {
    for (const [cancelStatus, hex] of [['cancelled', 'c0000120'], ['device-removed', 'c00002b6']] as const) {
      const { sink, h, memory } = host({ choices: { ...DEFAULT_CHOICES, cancelStatus } });
      h.attach(memory, () => {}, false);
      const old = h.vsps.get(0)!;
      // 40 transactions of 200 bytes: some in the one-page ring awaiting, the rest queued.
      old.send('transaction', 1, 40, 200, 1000);
      old.send('notify', 41, 2, 64, 0);
      expect(old.channel.awaiting.size).toBeGreaterThan(0);
      const before = sink.events.length;
      h.rescind(0);
      const after = sink.events.slice(before) as Ev[];
      expect(after[0]).toMatchObject({ side: 'host', ev: 'ch.rescind' });
      const cancels = after.filter((e) => e.ev === 'pkt.cancel');
      // Every HostTransaction once; the notifies wanted no completion.
      expect(cancels.map((e) => e.tx!).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(new Set(cancels.map((e) => e.status))).toEqual(new Set([hex]));
      expect(old.channel.state.conn).toBe('disabled');
      expect(old.channel.livePackets.size).toBe(0);
      // A new object, not yet offered; it goes on from the old one's transaction ids.
      const fresh = h.vsps.get(0)!;
      expect(fresh).not.toBe(old);
      expect(fresh.channel.state.conn).toBe('disabled');
      expect(fresh.channel.nextTransId).toBe(old.channel.nextTransId);
      h.offer(0);
      h.open(0, memory, () => {});
      const offered = (sink.events.slice(before + after.length) as Ev[]).map((e) => e.ev === 'ch.state' ? e.state : e.ev);
      expect(offered).toEqual(['ch.offer', 'Enabled', 'Opened', 'Started', 'Active']);
    }
  });

  it('frees the packets of a restore that failed, traces their end, and Cleanup finds no leak', () => {
    // A save with transactions awaiting, then a restore whose RestorePacket fails on the
    // second packet: KMCL takes the first back, and the VSP must free it (REVIEW D3).
    const buffers = savedTransactions(3);
    const b = host();
    const vsp = b.h.vsps.get(0)!;
    const callback = vsp.channel.restorePacket!;
    let calls = 0;
    vsp.channel.restorePacket = (c, lib, save) => (++calls >= 2 ? STATUS.INVALID_PARAMETER : callback(c, lib, save));
    expect(() => vsp.restore(buffers)).toThrow(DeviceError);
    expect(vsp.channel.livePackets.size).toBe(1);
    const before = b.sink.events.length;
    b.h.rescind(0);
    const after = b.sink.events.slice(before) as Ev[];
    expect(after.map((e) => e.ev)).toEqual(['ch.rescind', 'pkt.cancel']);
    expect(after[1]).toMatchObject({ tx: 1, status: 'c0000120' });
    expect(vsp.channel.livePackets.size).toBe(0);
  });

  it('a restore that succeeded but is given up (the host falls back anyway) ends the restored transactions through Disable', () => {
    const buffers = savedTransactions(3);
    const b = host();
    const vsp = b.h.vsps.get(0)!;
    vsp.restore(buffers);
    expect(vsp.channel.awaiting.size).toBe(3);
    const before = b.sink.events.length;
    // Never enabled: Disable still cancels what the restore put back.
    b.h.rescind(0);
    const after = b.sink.events.slice(before) as Ev[];
    expect(after.filter((e) => e.ev === 'pkt.cancel').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(vsp.channel.livePackets.size).toBe(0);
  });

  it('forceNewChannel sets VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL on the server channel before Enable, and the new object too', () => {
    const { h, memory } = host({ forceNewChannel: true });
    expect(h.vsps.get(0)!.channel.config.serverFlags & SERVER_INIT_FLAG_FORCE_NEW_CHANNEL).toBe(SERVER_INIT_FLAG_FORCE_NEW_CHANNEL);
    h.attach(memory, () => {}, false);
    h.rescind(0);
    expect(h.vsps.get(0)!.channel.config.serverFlags & SERVER_INIT_FLAG_FORCE_NEW_CHANNEL).toBe(SERVER_INIT_FLAG_FORCE_NEW_CHANNEL);
    expect(host().h.vsps.get(0)!.channel.config.serverFlags & SERVER_INIT_FLAG_FORCE_NEW_CHANNEL).toBe(0);
  });
});
