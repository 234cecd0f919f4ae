// The KMCL rules the emulator enforces (src/vmbus/kmcl-rules.ts): each is broken on
// purpose here and must stop the call with the named violation, which the channel's
// onMisuse hook hears first (the driver's trace writes it as kmcl.violation).
import { describe, expect, it } from 'vitest';
import { KmclUsageError } from '../../src/vmbus/channel.ts';
import type { KmclViolation } from '../../src/vmbus/kmcl-rules.ts';
import { KMCL_RULES } from '../../src/vmbus/kmcl-rules.ts';
import { STATUS } from '../../src/vmbus/status.ts';
import type { Channel } from '../../src/vmbus/channel.ts';
import { holdIt, makePair, payload, send } from './support/channel-pair.ts';

/** Runs `f`, expecting it to break `rule`; returns what onMisuse heard. */
function expectViolation(ch: Channel, rule: keyof typeof KMCL_RULES, f: () => void): KmclViolation {
  const heard: KmclViolation[] = [];
  ch.onMisuse = (v) => heard.push(v);
  let caught: unknown = null;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(KmclUsageError);
  const v = (caught as KmclUsageError).violation;
  expect(v?.rule).toBe(rule);
  expect(heard).toEqual([v]);
  expect((caught as Error).message).toContain(rule);
  return v!;
}

describe('KMCL rules', () => {
  it('E2: VmbChannelStart inside a state-change callback is a violation', () => {
    const pair = makePair({ open: false, serverCallbacks: (side) => ({ postStarted: () => side.ch.start() }) });
    const v = expectViolation(pair.server.ch, 'start-pause-in-callback', () => pair.open());
    expect(v).toMatchObject({ call: 'VmbChannelStart', ch: 0, packet: 0 });
  });

  it('E2: VmbChannelPause inside EvtVmbChannelStarted is a violation', () => {
    const pair = makePair({ open: false, serverCallbacks: (side) => ({ started: () => side.ch.pause() }) });
    expect(expectViolation(pair.server.ch, 'start-pause-in-callback', () => pair.open()).call).toBe('VmbChannelPause');
  });

  it('E2: Start and Pause outside callbacks are fine', () => {
    const pair = makePair();
    pair.server.ch.pause();
    pair.server.ch.start();
    expect(pair.server.ch.isActive).toBe(true);
  });

  it('E3: a send after EvtVmbChannelSuspend is a violation naming the packet; after Start it is fine again', () => {
    const pair = makePair();
    const server = pair.server.ch;
    server.pause();
    const p = server.packetAllocate();
    const v = expectViolation(server, 'send-after-suspend', () => server.packetSend(p, payload(1), 1));
    expect(v).toMatchObject({ call: 'VmbPacketSend', packet: p.id });
    server.start();
    expect(server.packetSend(server.packetAllocate(), payload(2), 1)).toBe(STATUS.SUCCESS);
  });

  it('E3: a send from inside EvtVmbChannelSuspend is a violation', () => {
    const pair = makePair({ serverCallbacks: (side) => ({ suspend: () => void side.ch.packetSend(side.ch.packetAllocate(), payload(3), 0) }) });
    expectViolation(pair.server.ch, 'send-after-suspend', () => pair.server.ch.pause());
  });

  it('E7: freeing a packet twice is a violation naming the packet', () => {
    const pair = makePair();
    const ch = pair.server.ch;
    const p = ch.packetAllocate();
    ch.packetFree(p);
    expect(expectViolation(ch, 'free-twice', () => ch.packetFree(p))).toMatchObject({ call: 'VmbPacketFree', packet: p.id });
  });

  it('E7: a packet never freed is a leak at VmbChannelCleanup, naming the first one', () => {
    const pair = makePair({ clientProcess: holdIt });
    const ch = pair.server.ch;
    const kept = ch.packetAllocate(); // allocated, never sent or freed
    const sent = send(pair.server, 5, { wait: true, log: [] }); // own routine: the driver must free it
    pair.pump();
    pair.client.held.splice(0).forEach((pkt) => pair.client.ch.packetComplete(pkt, null));
    pair.pump();
    ch.packetFree(sent.packet);
    ch.disable();
    const v = expectViolation(ch, 'packet-leak', () => ch.cleanup());
    expect(v).toMatchObject({ call: 'VmbChannelCleanup', packet: kept.id });
    expect(v.message).toContain('1 packet(s) never freed');
  });

  it('E7: a packet freed by the default completion routine, or by the driver, is no leak', () => {
    const pair = makePair();
    const ch = pair.server.ch;
    send(pair.server, 6, { wait: true });
    const p = ch.packetAllocate();
    ch.packetFree(p);
    pair.pump();
    ch.disable();
    expect(() => ch.cleanup()).not.toThrow();
  });

  it('every rule names its source', () => {
    for (const [name, r] of Object.entries(KMCL_RULES)) {
      expect(r.source, name).toMatch(/\[(H|D)\]/);
      expect(r.rule.length, name).toBeGreaterThan(10);
    }
  });
});
