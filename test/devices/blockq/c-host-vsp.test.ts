// blockq's C VSP host face (devices/blockq/c/host-vsp.ts) is every C VSP's
// (src/device-api/c-host-channel.ts, whose test drives it with blockq's control too);
// what is blockq's is its control, which refuses what its VSP has no command for.

import { describe, expect, it } from 'vitest';
import { channel, channelInstance } from '../../../devices/blockq/control.ts';

describe('blockq\'s control', () => {
  it('refuses the channel operations its VSP has no command for, rather than make a line the VSP refuses', () => {
    expect(() => channel({ op: 'pause', ch: 1 })).toThrow(/no `pause`/);
    expect(channel({ op: 'rescind', ch: 1 })).toBe('rescind ch=1');
    expect(() => channel({ op: 'open', ch: 1, instance: channelInstance(1), ringPages: 4, loopback: true, forceNewChannel: true })).toThrow(/force-new-channel/);
    expect(channel({ op: 'open', ch: 1, instance: channelInstance(1), ringPages: 4, loopback: true })).toBe(`open 1 ${channelInstance(1)} loopback ring-pages=4`);
  });
});
