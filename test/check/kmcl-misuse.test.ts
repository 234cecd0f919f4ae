// A driver's KMCL rule break is written into its trace (kmcl.violation, with the rule,
// the call, the channel and the packet) and `bench check` names it: divergence class
// kmcl-misuse, property kmcl-rules.
import { describe, expect, it } from 'vitest';
import { EmulatedHost } from '../../src/scenario/host.ts';
import sample from '../../devices/sample/device.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { Faults } from '../../src/vmbus/faults.ts';
import { KmclUsageError } from '../../src/vmbus/channel.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { ArraySource } from '../../src/check/observed.ts';
import { checkReplayFirst, checkTrace } from '../../src/check/replay.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';

const suite = await loadScenarioPaths(['bench/scenarios']);
const source = (events: TraceEvent[]) => new ArraySource(events.map((event, i) => ({ event, file: 'real.jsonl', line: i + 1 })));

describe('KMCL misuse in a trace', () => {
  it('the VSP twin writes a rule break as kmcl.violation with rule, call, channel and packet, and the call stops', () => {
    const sink = new MemorySink('emulator');
    const channels = [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }];
    const host = new EmulatedHost('host-a', channels, { device: sample.emulator!, choices: DEFAULT_CHOICES, sink, now: () => 0, saveBufferSize: 4096, instancePrefix: 't', faults: new Faults() });
    host.attach(new GuestMemory([{ ch: 0, g2hPages: 4, h2gPages: 4 }]), () => {}, false);
    const vsp = host.vsps.get(0)!;
    vsp.channel.pause();
    expect(() => vsp.send('transaction', 1, 1, 64, 0)).toThrow(KmclUsageError);
    const v = sink.events.filter((e) => e.ev === 'kmcl.violation');
    expect(v).toEqual([expect.objectContaining({ side: 'host', ch: 0, rule: 'send-after-suspend', call: 'VmbPacketSend', packet: 1 })]);
  });

  it('bench check names it kmcl-misuse, with the rule in the message, from the full and the replay-first check', () => {
    const s = suite.find((x) => x.name === 'inflight-host-transactions')!;
    const sink = new MemorySink('hyperv');
    executeScenario(s, { seed: 2, sink });
    const clean = sink.events;
    const at = clean.findIndex((e) => e.ev === 'vm.save.begin');
    const violation = { v: 1, seq: 0, src: 'hyperv', side: 'host', ev: 'kmcl.violation', ch: 0, rule: 'send-after-suspend', call: 'VmbPacketSend', packet: 9, message: 'packet 9 sent after EvtVmbChannelSuspend' } as TraceEvent;
    const broken = [...clean.slice(0, at + 2), violation, ...clean.slice(at + 2)].map((e, i) => ({ ...e, seq: i + 1 }) as TraceEvent);
    const full = checkTrace(s, source(broken));
    expect(full.verdict).toBe('diverge');
    if (full.verdict !== 'diverge') return;
    expect(full.class).toBe('kmcl-misuse');
    expect(full.failedProperties).toContain('kmcl-rules');
    expect(full.message).toContain('send-after-suspend');
    expect(full.message).toContain('packet 9');
    expect(checkReplayFirst(s, () => source(broken))).toEqual(full);
  });
});
