// The sample device's control on a real lab (devices/sample/control.ts): the lines its
// drivers' control interfaces take, the counters they print, sample-ctl's verbs, and the
// instance GUID rule, as the lab's code (src/run/real) uses them through DeviceControl.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import sample from '../../../devices/sample/device.ts';
import { channel, channelInstance, command, counters, sampleControl } from '../../../devices/sample/control.ts';
import { checkDeviceModule } from '../../../src/device-api/load.ts';

describe('the sample device control', () => {
  it('is the sample module\'s control, and the module passes the interface check', () => {
    expect(sample.control).toBe(sampleControl);
    expect(checkDeviceModule(sample)).toBeNull();
  });

  it('reads trace_seq and one line per channel, sent and completed by the side that sent', () => {
    const vsp = ['trace_seq=41', 'ch=3 requests_received=2 requests_completed=2 transactions_sent=5 completions=4 next_tx=9'];
    expect(counters('vsp', vsp)).toEqual({ traceSeq: 41, channels: new Map([[3, { sent: 5, completed: 4 }]]) });
    // The Windows guest driver's channel lines carry a trace_seq too: the first one counts.
    const guest = ['ch=0 requests_sent=7 completions=6 trace_seq=12', 'ch=1 requests_sent=1 completions=0 trace_seq=12'];
    expect(counters('guest', guest)).toEqual({ traceSeq: 12, channels: new Map([[0, { sent: 7, completed: 6 }], [1, { sent: 1, completed: 0 }]]) });
    expect(counters('vsp', ['sample-ctl: nothing here'])).toEqual({ traceSeq: undefined, channels: new Map() });
  });

  it('writes the channel operations as the VSP\'s commands (vsp-driver.c)', () => {
    expect(channel({ op: 'open', ch: 2, instance: channelInstance(2), ringPages: 8, loopback: true })).toBe('open 2 8d2f5c3a-71b4-4e0e-9a6d-000000000002 loopback ring-pages=8');
    expect(channel({ op: 'open', ch: 2, instance: 'x', ringPages: 4, loopback: false, forceNewChannel: true })).toBe('open 2 x ring-pages=4 force-new-channel');
    for (const op of ['save', 'detach', 'restore', 'resume', 'pause', 'close'] as const) expect(channel({ op, ch: 7 })).toBe(`${op} ch=7`);
  });

  it('sends traffic steps to the driver that sends them', () => {
    expect(command({ op: 'guest-send', channel: 1, count: 4, size: 64, mode: 'hold', hold: 30 })).toEqual({ to: 'guest', line: 'send 4 64 2 30 ch=1' });
    expect(command({ op: 'guest-send', channel: 1, count: 4, size: 64, mode: 'inline', hold: 30 })).toEqual({ to: 'guest', line: 'send 4 64 0 0 ch=1' });
    expect(command({ op: 'host-send', channel: 0, count: 2, size: 100, hold: 5 })).toEqual({ to: 'vsp', line: 'transact 2 100 5 ch=0' });
    expect(command({ op: 'notify', channel: 0, dir: 'h2g', count: 1, size: 32 })).toEqual({ to: 'vsp', line: 'notify 1 32 ch=0' });
  });

  it('gives sample-ctl\'s argument vectors, the line as one argument', () => {
    const { args } = sampleControl.tool;
    expect(args({ verb: 'command', who: 'guest', line: "send 1 2 0 0 ch=0; del 'x'" })).toEqual(['guest', 'command', "send 1 2 0 0 ch=0; del 'x'"]);
    expect(args({ verb: 'counters', who: 'vsp' })).toEqual(['vsp', 'counters']);
    expect(args({ verb: 'trace', who: 'guest', file: 'C:\\w\\client.jsonl' })).toEqual(['guest', 'trace', 'C:\\w\\client.jsonl']);
    expect(args({ verb: 'convert-etl', etl: 'a.etl', jsonl: 'a.jsonl' })).toEqual(['etl2jsonl', 'a.etl', 'a.jsonl']);
  });

  // Invariant (DeviceControl): channelInstance is one-to-one on channel numbers, and the
  // drivers read the number back from the id's last group (PROTOCOL.md "Channel numbers").
  it('gives every channel number its own instance GUID, ending in the number', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), (a, b) => {
      const ga = channelInstance(a);
      expect(ga).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(parseInt(ga.slice(-12), 16)).toBe(a);
      expect(ga === channelInstance(b)).toBe(a === b);
    }));
  });
});
