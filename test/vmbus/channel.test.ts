// KMCL channel endpoints (src/vmbus/channel.ts): one test per documented rule of the
// channel lifecycle, packet processing and sending (the KMCL DDI reference pages). A server (VSP) and a client (VSC)
// channel are connected over emulated guest memory and pumped step by step.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Channel,
  KmclUsageError,
  STATE_CALLBACKS_SIZE,
  stateChangeCallbacksInit,
  type StateChangeCallbacks,
} from '../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { channelSaveBegin } from '../../src/vmbus/channel-save.ts';
import { fifoLength } from '../../src/vmbus/fifo.ts';
import type { IncomingPacket } from '../../src/vmbus/packet.ts';
import { ControlWord, inBandFootprint } from '../../src/vmbus/ring-layout.ts';
import { STATUS, type NtStatus } from '../../src/vmbus/status.ts';
import { IFACE_INSTANCE, IFACE_TYPE, holdIt, makePair, payload, send, stepSide, type Side } from './support/channel-pair.ts';

const noop = () => {};
const ok = (): NtStatus => STATUS.SUCCESS;

// ------------------------------------------------------------------ Init setters

type Kind = 'both' | 'server' | 'client';
const SETTERS: Array<[string, Kind, (ch: Channel) => NtStatus]> = [
  ['VmbChannelInitSetMaximumPacketSize', 'both', (ch) => ch.initSetMaximumPacketSize(512)],
  ['VmbChannelInitSetMaximumExternalData', 'both', (ch) => ch.initSetMaximumExternalData(65536, 4)],
  ['VmbChannelInitSetClientContextSize', 'both', (ch) => ch.initSetClientContextSize(32)],
  ['VmbChannelInitSetProcessPacketCallbacks', 'both', (ch) => ch.initSetProcessPacketCallbacks(noop, null)],
  ['VmbChannelInitSetStateChangeCallbacks', 'both', (ch) => ch.initSetStateChangeCallbacks(stateChangeCallbacksInit())],
  ['VmbChannelInitSetFriendlyName', 'both', (ch) => ch.initSetFriendlyName('disk0')],
  ['VmbChannelInitSetFlags', 'both', (ch) => ch.initSetFlags(1)],
  ['VmbClientChannelInitSetRingBufferPageCount', 'client', (ch) => ch.clientInitSetRingBufferPageCount(8, 8)],
  ['VmbClientChannelInitSetTargetPnp', 'client', (ch) => ch.clientInitSetTargetPnp(IFACE_TYPE, null)],
  ['VmbServerChannelInitSetTargetInterfaceId', 'server', (ch) => ch.serverInitSetTargetInterfaceId(IFACE_TYPE, IFACE_INSTANCE)],
  ['VmbServerChannelInitSetFlags', 'server', (ch) => ch.serverInitSetFlags(0x2)],
  ['VmbServerChannelInitSetMmioMegabytes', 'server', (ch) => ch.serverInitSetMmioMegabytes(8, 0)],
  ['VmbServerChannelInitSetTargetVtl', 'server', (ch) => ch.serverInitSetTargetVtl(2)],
  ['VmbServerChannelInitSetVmbusHandle', 'server', (ch) => ch.serverInitSetVmbusHandle({ vm: 1 })],
  ['VmbServerChannelInitSetSaveRestorePacketCallbacks', 'server', (ch) => ch.serverInitSetSaveRestorePacketCallbacks(ok, ok)],
];

/** A channel configured just enough to be enabled. */
function enableable(isServer: boolean): Channel {
  const ch = new Channel(isServer, 0, DEFAULT_CHOICES);
  expect(ch.initSetProcessPacketCallbacks(noop)).toBe(STATUS.SUCCESS);
  expect(isServer ? ch.serverInitSetTargetInterfaceId(IFACE_TYPE, IFACE_INSTANCE) : ch.clientInitSetTargetPnp(IFACE_TYPE, null)).toBe(STATUS.SUCCESS);
  return ch;
}

describe('Init setters', () => {
  it.each(SETTERS)('%s succeeds while disabled and returns STATUS_INVALID_PARAMETER_1 once enabled', (_name, kind, call) => {
    const kinds = kind === 'both' ? [true, false] : [kind === 'server'];
    for (const isServer of kinds) {
      const ch = enableable(isServer);
      expect(call(ch)).toBe(STATUS.SUCCESS);
      expect(ch.enable()).toBe(STATUS.SUCCESS);
      expect(call(ch)).toBe(STATUS.INVALID_PARAMETER_1);
    }
  });

  it.each(SETTERS.filter(([, k]) => k !== 'both'))('%s returns STATUS_INVALID_PARAMETER_1 on the wrong endpoint kind', (_name, kind, call) => {
    const wrong = new Channel(kind === 'client', 0, DEFAULT_CHOICES);
    expect(call(wrong)).toBe(STATUS.INVALID_PARAMETER_1);
  });

  it('leaves the configuration unchanged when a setter is refused', () => {
    const ch = enableable(true);
    expect(ch.initSetMaximumPacketSize(2048)).toBe(STATUS.SUCCESS);
    expect(ch.initSetMaximumPacketSize(0)).toBe(STATUS.INVALID_PARAMETER_2);
    expect(ch.enable()).toBe(STATUS.SUCCESS);
    expect(ch.initSetMaximumPacketSize(4096)).toBe(STATUS.INVALID_PARAMETER_1);
    expect(ch.config.maxPacketSize).toBe(2048);
  });

  const wrongVersion: StateChangeCallbacks = { ...stateChangeCallbacksInit(), version: 2 };
  const wrongSize: StateChangeCallbacks = { ...stateChangeCallbacksInit(), size: STATE_CALLBACKS_SIZE - 8 };
  it.each<[string, Kind, (ch: Channel) => NtStatus, NtStatus]>([
    ['a zero maximum packet size', 'both', (ch) => ch.initSetMaximumPacketSize(0), STATUS.INVALID_PARAMETER_2],
    ['a zero external data size', 'both', (ch) => ch.initSetMaximumExternalData(0, 4), STATUS.INVALID_PARAMETER_2],
    ['a zero external data chain length', 'both', (ch) => ch.initSetMaximumExternalData(4096, 0), STATUS.INVALID_PARAMETER_3],
    ['unknown channel init flag bits', 'both', (ch) => ch.initSetFlags(0x2), STATUS.INVALID_PARAMETER_2],
    ['no ProcessPacket callback', 'both', (ch) => ch.initSetProcessPacketCallbacks(null), STATUS.INVALID_PARAMETER_2],
    ['state callbacks with the wrong Version', 'both', (ch) => ch.initSetStateChangeCallbacks(wrongVersion), STATUS.INVALID_PARAMETER_2],
    ['state callbacks with the wrong Size', 'both', (ch) => ch.initSetStateChangeCallbacks(wrongSize), STATUS.INVALID_PARAMETER_2],
    ['unknown server init flag bits', 'server', (ch) => ch.serverInitSetFlags(0x20), STATUS.INVALID_PARAMETER_2],
    ['both MMIO sizes zero', 'server', (ch) => ch.serverInitSetMmioMegabytes(0, 0), STATUS.INVALID_PARAMETER],
    ['an invalid VTL', 'server', (ch) => ch.serverInitSetTargetVtl(3), STATUS.INVALID_PARAMETER_2],
    ['no interface type', 'server', (ch) => ch.serverInitSetTargetInterfaceId('', IFACE_INSTANCE), STATUS.INVALID_PARAMETER_2],
    ['no interface instance', 'server', (ch) => ch.serverInitSetTargetInterfaceId(IFACE_TYPE, ''), STATUS.INVALID_PARAMETER_3],
    ['no SavePacket callback', 'server', (ch) => ch.serverInitSetSaveRestorePacketCallbacks(null, ok), STATUS.INVALID_PARAMETER_2],
    ['no RestorePacket callback', 'server', (ch) => ch.serverInitSetSaveRestorePacketCallbacks(ok, null), STATUS.INVALID_PARAMETER_3],
    ['zero incoming ring pages', 'client', (ch) => ch.clientInitSetRingBufferPageCount(0, 4), STATUS.INVALID_PARAMETER_2],
    ['zero outgoing ring pages', 'client', (ch) => ch.clientInitSetRingBufferPageCount(4, 0), STATUS.INVALID_PARAMETER_3],
    ['no target interface type', 'client', (ch) => ch.clientInitSetTargetPnp('', null), STATUS.INVALID_PARAMETER_2],
  ])('refuses %s with the status naming that argument', (_what, kind, call, status) => {
    const ch = new Channel(kind !== 'client', 0, DEFAULT_CHOICES);
    expect(call(ch) >>> 0).toBe(status);
  });

  it('accepts MMIO sizes when either one is non-zero', () => {
    expect(new Channel(true, 0, DEFAULT_CHOICES).serverInitSetMmioMegabytes(0, 4)).toBe(STATUS.SUCCESS);
    expect(new Channel(true, 0, DEFAULT_CHOICES).serverInitSetMmioMegabytes(4, 0)).toBe(STATUS.SUCCESS);
  });

  it('refuses to enable a channel without a ProcessPacket callback or an interface type', () => {
    const noCallback = new Channel(true, 0, DEFAULT_CHOICES);
    noCallback.serverInitSetTargetInterfaceId(IFACE_TYPE, IFACE_INSTANCE);
    expect(noCallback.enable()).toBe(STATUS.INVALID_PARAMETER_1);
    const noInterface = new Channel(false, 0, DEFAULT_CHOICES);
    noInterface.initSetProcessPacketCallbacks(noop);
    expect(noInterface.enable()).toBe(STATUS.INVALID_PARAMETER_1);
    expect(noInterface.state.conn).toBe('disabled');
  });

  it('rejects a zero transaction quota as a usage error', () => {
    expect(() => enableable(true).setTransactionQuota(0)).toThrow(KmclUsageError);
  });
});

// ------------------------------------------------------------------ state callbacks

describe('open and start', () => {
  it('runs Opened, Started, PostStarted in that order on a server that called Start, and packets flow only after Started', () => {
    const activeDuring: Record<string, boolean> = {};
    const pair = makePair({
      serverCallbacks: (side) => ({
        started: () => (activeDuring.started = side.ch.isActive),
        postStarted: () => (activeDuring.postStarted = side.ch.isActive),
      }),
    });
    expect(pair.server.log).toEqual(['opened', 'started', 'postStarted']);
    // The incoming queue is off during Started and on during PostStarted.
    expect(activeDuring).toEqual({ started: false, postStarted: true });
    send(pair.client, 1);
    pair.pump();
    expect(pair.server.log.slice(3)).toEqual(['process:1', 'complete:1']);
  });

  it('starts a client on open without a Start call (Enable implies Start for the guest)', () => {
    const pair = makePair();
    expect(pair.client.log).toEqual(['opened', 'started', 'postStarted']);
    expect(pair.client.ch.isActive).toBe(true);
  });

  it('does not deliver packets to a server that never calls Start', () => {
    const pair = makePair({ serverStarts: false });
    expect(pair.server.log).toEqual(['opened']);
    send(pair.client, 1);
    pair.pump();
    expect(pair.server.log).toEqual(['opened']);
    expect(pair.server.ch.canDeliver()).toBe(false);
    // Start later: Started, PostStarted (no second Opened), and the waiting packet arrives.
    pair.server.ch.start();
    pair.pump();
    expect(pair.server.log).toEqual(['opened', 'started', 'postStarted', 'process:1', 'complete:1']);
  });

  it('queues sends made from Started and writes them once the channel is active', () => {
    const pair = makePair({
      open: false,
      serverCallbacks: (side) => ({ started: () => void send(side, 9) }),
    });
    pair.open();
    // Started ran before the channel went active: the send waits in the library queue.
    expect(fifoLength(pair.server.ch.queue)).toBe(1);
    expect(pair.mem.h2g(0).load(ControlWord.writeIndex)).toBe(0);
    pair.pump();
    expect(pair.client.log.filter((l) => l === 'process:9')).toHaveLength(1);
  });

  it('rolls a failed Opened back to enabled with no Started', () => {
    const pair = makePair({ open: false, serverCallbacks: () => ({ opened: () => STATUS.UNSUCCESSFUL }) });
    const h = pair.mem.hostRings(0);
    expect(pair.server.ch.connectionOpened(h.out, h.in, { restored: false })).toBe(STATUS.UNSUCCESSFUL);
    expect(pair.server.log).toEqual(['opened']);
    expect(pair.server.ch.state).toEqual({ conn: 'enabled' });
  });

  // BUG (src/vmbus/channel.ts disable/enable): Disable on an active client runs pause(),
  // which clears `startRequested`, and enable() never sets it again for a client. So a
  // guest driver that disables and re-enables its channel (SPEC-NOTES 2.5: "must call
  // VmbChannelEnable again to reconnect") gets Opened but never Started: no packet flows,
  // although Enable implies Start for the client (SPEC-NOTES 2.4).
  it('starts a client again on the next open after Disable and Enable', () => {
    const pair = makePair();
    pair.client.ch.disable();
    expect(pair.client.log.slice(-2)).toEqual(['suspend', 'closed']);
    expect(pair.client.ch.enable()).toBe(STATUS.SUCCESS);
    const g = pair.mem.guestRings(0);
    pair.client.ch.connectionOpened(g.out, g.in, { restored: false });
    expect(pair.client.log.slice(-3)).toEqual(['opened', 'started', 'postStarted']);
    expect(pair.client.ch.isActive).toBe(true);
  });

  it('rejects Start before Enable as a usage error', () => {
    expect(() => new Channel(true, 0, DEFAULT_CHOICES).start()).toThrow(KmclUsageError);
  });
});

// ------------------------------------------------------------------ pause

describe('pause', () => {
  it('redelivers deferred packets first, then runs Suspend', () => {
    const pair = makePair({
      serverProcess: (side, pkt) => (pkt.deferrals === 0 ? side.ch.packetDeferToPassive(pkt) : side.ch.packetComplete(pkt, null)),
    });
    send(pair.client, 1);
    pair.server.ch.deliverOne(); // delivered and deferred; not redelivered yet
    expect(pair.server.ch.deferred).toHaveLength(1);
    pair.server.ch.pause();
    expect(pair.server.log.slice(3).filter((l) => !l.startsWith('complete:'))).toEqual(['process:1', 'process:1', 'suspend']);
    expect(pair.server.ch.state).toEqual({ conn: 'open', flow: 'paused' });
    expect(pair.server.ch.outstanding).toBe(0);
  });

  it('waits for packets still held after Suspend, completed later (REVIEW E1): delivers nothing, refuses SaveBegin, then is paused', () => {
    const clientLog: string[] = [];
    const pair = makePair({
      serverProcess: holdIt,
      serverInit: (ch) => ch.serverInitSetSaveRestorePacketCallbacks(() => STATUS.SUCCESS, () => STATUS.SUCCESS),
    });
    send(pair.client, 1, { wait: true, log: clientLog });
    pair.pump();
    const server = pair.server.ch;
    expect(() => server.pause()).not.toThrow();
    expect(server.isPausing).toBe(true);
    send(pair.client, 2, { wait: true, log: clientLog });
    pair.pump();
    expect(pair.server.log.filter((l) => l.startsWith('process:'))).toEqual(['process:1']);
    expect(channelSaveBegin(server)).toBe(STATUS.INVALID_DEVICE_STATE);
    // The driver completes it asynchronously: the Pause is over.
    server.packetComplete(pair.server.held.shift()!, payload(0x51));
    expect(server.isPausing).toBe(false);
    expect(server.outstanding).toBe(0);
    expect(channelSaveBegin(server)).toBe(STATUS.SUCCESS);
    pair.pump();
    expect(clientLog).toEqual(['done:1:ok:81']);
  });

  it.each<['write-to-ring' | 'queue-and-save', boolean]>([
    ['write-to-ring', true],
    ['queue-and-save', false],
  ])('accepts packets completed inside Suspend; under suspendCompletions %s their completions reach the peer at once: %s (else after the next Start)', (choice, atOnce) => {
    const clientLog: string[] = [];
    const pair = makePair({
      choices: { suspendCompletions: choice },
      serverProcess: holdIt,
      serverCallbacks: (side) => ({ suspend: () => side.held.splice(0).forEach((p) => side.ch.packetComplete(p, payload(0x42))) }),
    });
    send(pair.client, 1, { wait: true, log: clientLog });
    pair.pump();
    pair.server.ch.pause();
    pair.pump();
    expect(clientLog).toEqual(atOnce ? ['done:1:ok:66'] : []); // else queued in the paused server's library
    expect(fifoLength(pair.server.ch.queue)).toBe(0 + (atOnce ? 0 : 1));
    pair.server.ch.start();
    pair.pump();
    expect(clientLog).toEqual(['done:1:ok:66']);
  });

  it('keeps what a waiting completion carried, whatever the driver writes to its buffer after PacketComplete returns', () => {
    const clientLog: string[] = [];
    const buffer = payload(0x42);
    const pair = makePair({
      choices: { suspendCompletions: 'queue-and-save' },
      serverProcess: holdIt,
      serverCallbacks: (side) => ({
        suspend: () => {
          side.held.splice(0).forEach((p) => side.ch.packetComplete(p, buffer));
          buffer.fill(0x13); // the buffer is the driver's again (the C drivers' shim passes a view of its memory)
        },
      }),
    });
    send(pair.client, 1, { wait: true, log: clientLog });
    pair.pump();
    pair.server.ch.pause();
    pair.pump();
    expect(fifoLength(pair.server.ch.queue)).toBe(1);
    pair.server.ch.start();
    pair.pump();
    expect(clientLog).toEqual(['done:1:ok:66']);
  });

  it('defaults to writing completions made inside Suspend to the ring (REVIEW E4)', () => {
    expect(DEFAULT_CHOICES.suspendCompletions).toBe('write-to-ring');
  });

  it('on a disabled channel only arms "pause when enabled": the channel opens paused', () => {
    const pair = makePair({ clientInit: (ch) => ch.pause() });
    expect(pair.client.log).toEqual(['opened']);
    expect(pair.client.ch.isActive).toBe(false);
    send(pair.server, 5);
    pair.pump();
    expect(pair.client.log).toEqual(['opened']);
    pair.client.ch.start();
    pair.pump();
    expect(pair.client.log).toEqual(['opened', 'started', 'postStarted', 'process:5', 'complete:1']);
  });
});

// ------------------------------------------------------------------ receiving

describe('ProcessPacket and PacketComplete', () => {
  it('sends a completion only when the sender asked for one', () => {
    const clientLog: string[] = [];
    const pair = makePair({ serverProcess: (side, pkt) => side.ch.packetComplete(pkt, payload(0x77, 3)) });
    send(pair.client, 1, { wait: true, log: clientLog });
    send(pair.client, 2, { wait: false, log: clientLog });
    pair.pump();
    // Packet 2's routine ran when it was written; packet 1's when the completion came back.
    expect(clientLog).toEqual(['done:2:ok:null', 'done:1:ok:119']);
    expect(pair.client.ch.counters.completionsReceived).toBe(1);
    expect(pair.client.ch.counters.unknownCompletions).toBe(0);
  });

  it('hands the completion buffer to the sender padded to 8 bytes, as the ring carries it', () => {
    let response: Uint8Array | null = null;
    const pair = makePair({ serverProcess: (side, pkt) => side.ch.packetComplete(pkt, new Uint8Array([1, 2, 3])) });
    const p = pair.client.ch.packetAllocate();
    pair.client.ch.packetSetCompletionRoutine(p, (_p, _s, r) => (response = r));
    pair.client.ch.packetSend(p, payload(1), 1);
    pair.pump();
    expect(response).toEqual(new Uint8Array([1, 2, 3, 0, 0, 0, 0, 0]));
  });

  it('passes the payload padded to 8 bytes (the exact length is not on the wire)', () => {
    let got: Uint8Array | null = null;
    const pair = makePair({
      serverProcess: (side, pkt, buf) => {
        got = buf.slice();
        side.ch.packetComplete(pkt, null);
      },
    });
    pair.client.ch.packetSend(pair.client.ch.packetAllocate(), new Uint8Array([9, 9, 9, 9, 9]), 0);
    pair.pump();
    expect(got).toEqual(new Uint8Array([9, 9, 9, 9, 9, 0, 0, 0]));
  });

  it('refuses to complete a packet twice', () => {
    const pair = makePair({ serverProcess: holdIt });
    send(pair.client, 1, { wait: true });
    pair.pump();
    const pkt = pair.server.held[0]!;
    pair.server.ch.packetComplete(pkt, null);
    expect(() => pair.server.ch.packetComplete(pkt, null)).toThrow(KmclUsageError);
    pair.pump();
    expect(pair.client.ch.counters.completionsReceived).toBe(1);
  });

  it('reports the batch size to ProcessingComplete when the ring drains', () => {
    const pair = makePair();
    for (const t of [1, 2, 3]) send(pair.client, t);
    pair.pump();
    for (const t of [4, 5]) send(pair.client, t);
    pair.pump();
    expect(pair.server.log.slice(3)).toEqual(['process:1', 'process:2', 'process:3', 'complete:3', 'process:4', 'process:5', 'complete:2']);
  });

  it('interrupts the reader once for packets written while it had not drained the ring', () => {
    const pair = makePair();
    for (const t of [1, 2, 3]) send(pair.client, t);
    expect(pair.client.ch.counters.signalsSent).toBe(1);
  });
});

describe('DeferToPassive', () => {
  it('redelivers the same packet once, and its completion is sent once', () => {
    const seen: IncomingPacket[] = [];
    const clientLog: string[] = [];
    const pair = makePair({
      serverProcess: (side, pkt) => {
        seen.push(pkt);
        if (pkt.deferrals === 0) side.ch.packetDeferToPassive(pkt);
        else side.ch.packetComplete(pkt, null);
      },
    });
    send(pair.client, 1, { wait: true, log: clientLog });
    pair.pump();
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(seen[0]);
    expect(seen[1]!.deferrals).toBe(1);
    expect(clientLog).toEqual(['done:1:ok:-1']); // an empty completion buffer
  });

  it('is illegal outside ProcessPacket', () => {
    const pair = makePair({ serverProcess: holdIt });
    send(pair.client, 1);
    pair.pump();
    expect(() => pair.server.ch.packetDeferToPassive(pair.server.held[0]!)).toThrow(KmclUsageError);
  });

  it('is illegal inside ProcessPacket for a different packet', () => {
    let thrown: unknown = null;
    const pair = makePair({
      serverProcess: (side, pkt) => {
        const earlier = side.held[0];
        if (earlier) {
          try {
            side.ch.packetDeferToPassive(earlier);
          } catch (e) {
            thrown = e;
          }
        }
        side.held.push(pkt);
      },
    });
    send(pair.client, 1);
    send(pair.client, 2);
    pair.pump();
    expect(thrown).toBeInstanceOf(KmclUsageError);
  });
});

describe('PacketFail', () => {
  it('stops the incoming queue', () => {
    const clientLog: string[] = [];
    const pair = makePair({ serverProcess: (side, pkt) => side.ch.packetFail(pkt) });
    for (const t of [1, 2, 3]) send(pair.client, t, { wait: true, log: clientLog });
    pair.pump();
    expect(pair.server.log.filter((l) => l.startsWith('process:'))).toEqual(['process:1']);
    expect(pair.server.ch.canDeliver()).toBe(false);
    // Default choice: no completion goes back for the failed packet.
    expect(clientLog).toEqual([]);
    expect(pair.client.ch.awaiting.size).toBe(3);
  });

  it('sends an empty completion for the failed packet when that choice is set', () => {
    const clientLog: string[] = [];
    const pair = makePair({ choices: { packetFailCompletion: 'status-unsuccessful' }, serverProcess: (side, pkt) => side.ch.packetFail(pkt) });
    send(pair.client, 1, { wait: true, log: clientLog });
    pair.pump();
    expect(clientLog).toHaveLength(1);
  });
});

describe('transaction quota', () => {
  function quotaPair(quota: number, packets: number) {
    const pair = makePair({ serverProcess: holdIt });
    pair.server.ch.setTransactionQuota(quota);
    for (let t = 1; t <= packets; t++) send(pair.client, t);
    return pair;
  }

  it('stops delivery when the quota of uncompleted packets is reached', () => {
    const pair = quotaPair(2, 5);
    pair.pump();
    expect(pair.server.held).toHaveLength(2);
    expect(pair.server.ch.canDeliver()).toBe(false);
  });

  it('does not restart delivery when the quota is raised', () => {
    const pair = quotaPair(2, 5);
    pair.pump();
    pair.server.ch.setTransactionQuota(10);
    pair.pump();
    expect(pair.server.held).toHaveLength(2);
    expect(pair.server.ch.canDeliver()).toBe(false);
  });

  it('restarts delivery when a packet is completed', () => {
    const pair = quotaPair(2, 5);
    pair.pump();
    pair.server.ch.packetComplete(pair.server.held.shift()!, null);
    pair.pump();
    expect(pair.server.held.map((p) => p.payload[0])).toEqual([2, 3]);
    pair.server.ch.setTransactionQuota(10);
    pair.server.ch.packetComplete(pair.server.held.shift()!, null);
    pair.pump();
    expect(pair.server.held.map((p) => p.payload[0])).toEqual([3, 4, 5]);
  });

  it('never restarts a queue blocked by the quota except on a completion, and never delivers past an unchanged quota (property)', () => {
    type Op = { op: 'send' } | { op: 'step' } | { op: 'complete'; index: number } | { op: 'quota'; q: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 3, arbitrary: fc.constant({ op: 'send' as const }) },
      { weight: 4, arbitrary: fc.constant({ op: 'step' as const }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('complete' as const), index: fc.nat(10) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('quota' as const), q: fc.integer({ min: 1, max: 6 }) }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(opArb, { maxLength: 80, size: 'max' }), (q0, ops) => {
        const pair = makePair({ serverProcess: holdIt });
        const ch = pair.server.ch;
        ch.setTransactionQuota(q0);
        let tag = 0;
        let quotaChangedSinceDelivery = false;
        for (const o of ops) {
          const blockedBefore = ch.quotaBlocked;
          if (o.op === 'send') send(pair.client, ++tag);
          else if (o.op === 'quota') {
            ch.setTransactionQuota(o.q);
            quotaChangedSinceDelivery = true;
          } else if (o.op === 'complete') {
            const pkt = pair.server.held.splice(o.index % Math.max(pair.server.held.length, 1), 1)[0];
            if (pkt) ch.packetComplete(pkt, null);
          } else if (ch.canDeliver()) {
            const outstanding = ch.outstanding;
            const delivered = ch.counters.packetsDelivered;
            ch.deliverOne();
            if (ch.counters.packetsDelivered > delivered) {
              if (!quotaChangedSinceDelivery) expect(outstanding).toBeLessThan(ch.quota);
              quotaChangedSinceDelivery = false;
            }
          }
          // Invariant: only a completion unblocks.
          if (blockedBefore && o.op !== 'complete') expect(ch.quotaBlocked).toBe(true);
          if (ch.quotaBlocked) expect(ch.canDeliver()).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  // BUG (src/vmbus/channel.ts, setTransactionQuota + canDeliver): lowering the quota below
  // the number of packets already outstanding should stop dequeuing at once (SPEC-NOTES 3),
  // but canDeliver() only looks at `quotaBlocked`, which consume() sets only after a
  // delivery. So one more packet is delivered after the quota was lowered (3 held, quota
  // lowered to 2, canDeliver() still true, a 4th packet is delivered).
  it('stops dequeuing at once when the quota is lowered below the outstanding count', () => {
    const pair = quotaPair(100, 5);
    for (let i = 0; i < 3; i++) pair.server.ch.deliverOne();
    expect(pair.server.held).toHaveLength(3);
    pair.server.ch.setTransactionQuota(2);
    expect(pair.server.ch.canDeliver()).toBe(false);
    pair.pump();
    expect(pair.server.held).toHaveLength(3);
  });

  // BUG (src/vmbus/channel.ts, canDeliver/consume with quotaCountsDeferred = true, the
  // default): a deferred packet already counts as outstanding, and canDeliver() returns
  // false while `quotaBlocked`, even for the redelivery of a deferred packet. With quota 1,
  // a packet deferred from ProcessPacket is never redelivered: the driver cannot complete a
  // packet it no longer holds, and only a completion unblocks the queue -> deadlock.
  // Redelivering an already-counted packet does not raise the count and should not be gated.
  it('redelivers a deferred packet even when the quota is reached', () => {
    let calls = 0;
    const pair = makePair({
      serverProcess: (side, pkt) => {
        calls++;
        if (pkt.deferrals === 0) side.ch.packetDeferToPassive(pkt);
        else side.ch.packetComplete(pkt, null);
      },
    });
    pair.server.ch.setTransactionQuota(1);
    send(pair.client, 1);
    pair.pump();
    expect(calls).toBe(2);
    expect(pair.server.ch.outstanding).toBe(0);
  });
});

// ------------------------------------------------------------------ sending

describe('sending when the ring is full', () => {
  // Client -> server ring of one data page: three 1024-byte packets fill it (a fourth
  // would leave no 8 free bytes). The server is not started, so nothing is drained.
  const BIG = 1024 - 24; // payload with a 1024-byte footprint
  function fullRing(opts: { log?: string[] } = {}) {
    const pair = makePair({ g2hPages: 1, serverStarts: false });
    for (const t of [1, 2, 3]) expect(send(pair.client, t, { size: BIG, ...opts }).status).toBe(STATUS.SUCCESS);
    expect(fifoLength(pair.client.ch.queue)).toBe(0);
    return pair;
  }
  const processed = (s: Side) => s.log.filter((l) => l.startsWith('process:')).map((l) => Number(l.slice(8)));

  it('queues the packet inside the library, returns success, and advertises the pending send size', () => {
    const pair = fullRing();
    const r = send(pair.client, 4, { size: BIG });
    expect(r.status).toBe(STATUS.SUCCESS);
    expect(r.packet.state).toBe('queued');
    expect(fifoLength(pair.client.ch.queue)).toBe(1);
    expect(pair.mem.g2h(0).load(ControlWord.pendingSendSize)).toBe(inBandFootprint(BIG));
  });

  it('writes queued packets in FIFO order as space frees, even a later one that would fit now', () => {
    const pair = fullRing();
    send(pair.client, 4, { size: BIG });
    send(pair.client, 5, { size: 8 }); // fits in the 1016 free bytes, but 4 is ahead of it
    expect(fifoLength(pair.client.ch.queue)).toBe(2);
    pair.server.ch.start();
    pair.pump();
    expect(processed(pair.server)).toEqual([1, 2, 3, 4, 5]);
    expect(fifoLength(pair.client.ch.queue)).toBe(0);
    expect(pair.mem.g2h(0).load(ControlWord.pendingSendSize)).toBe(0);
  });

  it('gets many queued packets through a small ring, in order', () => {
    const pair = fullRing();
    for (let t = 4; t <= 40; t++) send(pair.client, t, { size: t % 2 ? BIG : 100 });
    pair.server.ch.start();
    pair.pump();
    expect(processed(pair.server)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('runs the completion routine of a packet without WAIT_FOR_COMPLETION when it is written to the ring', () => {
    const log: string[] = [];
    const pair = fullRing({ log });
    expect(log).toEqual(['done:1:ok:null', 'done:2:ok:null', 'done:3:ok:null']);
    send(pair.client, 4, { size: BIG, log: pair.server.log });
    expect(pair.server.log).not.toContain('done:4:ok:null'); // still queued
    pair.server.ch.start();
    pair.pump();
    const at = (s: string) => pair.server.log.indexOf(s);
    expect(at('done:4:ok:null')).toBeGreaterThan(-1);
    expect(at('done:4:ok:null')).toBeLessThan(at('process:4'));
  });

  // BUG (src/vmbus/channel.ts advertiseBlocked with choice pendingSendThreshold
  // 'greater-or-equal'): the writer publishes P = footprint, but it needs raw free space
  // >= footprint + 8 to write (8 bytes stay unused). A reader using "free >= P" signals when
  // raw free reaches P (still 8 bytes short), or never, when raw free already equalled P
  // when the writer blocked (this case: 1024 free, P = 1024). The queued packet is then
  // never written: a lost wakeup. Under that choice P must be footprint + 8 (or the
  // threshold compare free - 8 >= P).
  it('with the free >= P threshold choice, a blocked sender still gets through', () => {
    const pair = makePair({ g2hPages: 1, serverStarts: false, choices: { pendingSendThreshold: 'greater-or-equal' } });
    for (const t of [1, 2, 3, 4]) send(pair.client, t, { size: BIG });
    pair.server.ch.start();
    pair.pump();
    expect(processed(pair.server)).toEqual([1, 2, 3, 4]);
  });
});

describe('completion routines', () => {
  it('runs on the peer\'s completion for a packet sent with WAIT_FOR_COMPLETION, with the peer\'s buffer', () => {
    const log: string[] = [];
    const pair = makePair({ serverProcess: holdIt });
    send(pair.client, 1, { wait: true, log });
    pair.pump();
    expect(log).toEqual([]);
    expect(pair.client.ch.awaiting.size).toBe(1);
    pair.server.ch.packetComplete(pair.server.held[0]!, payload(0x33));
    pair.pump();
    expect(log).toEqual(['done:1:ok:51']);
    expect(pair.client.ch.awaiting.size).toBe(0);
  });

  it('defaults to freeing the packet: at ring write without WAIT_FOR_COMPLETION, on completion with it', () => {
    const pair = makePair({ serverProcess: holdIt });
    const fire = send(pair.client, 1).packet;
    expect(fire.state).toBe('freed');
    const txn = send(pair.client, 2, { wait: true }).packet;
    pair.pump();
    expect(txn.state).toBe('awaiting');
    pair.server.ch.packetComplete(pair.server.held[1]!, null);
    pair.pump();
    expect(txn.state).toBe('freed');
  });

  it('leaves a packet with its own routine to the driver, which may send it again', () => {
    const log: string[] = [];
    const pair = makePair();
    const { packet } = send(pair.client, 1, { log });
    expect(packet.state).toBe('completed');
    expect(pair.client.ch.packetSend(packet, payload(2), 0)).toBe(STATUS.SUCCESS);
    pair.pump();
    expect(pair.server.log.filter((l) => l.startsWith('process:'))).toEqual(['process:1', 'process:2']);
    pair.client.ch.packetFree(packet);
    expect(packet.state).toBe('freed');
  });

  it('refuses a payload above the maximum packet size and unknown format flags, and sends nothing', () => {
    const pair = makePair({ clientInit: (ch) => void ch.initSetMaximumPacketSize(64) });
    const p = pair.client.ch.packetAllocate();
    expect(pair.client.ch.packetSend(p, new Uint8Array(65), 0)).toBe(STATUS.INVALID_PARAMETER_3);
    expect(pair.client.ch.packetSend(p, new Uint8Array(64), 0x8)).toBe(STATUS.INVALID_PARAMETER_5);
    expect(p.state).toBe('idle');
    expect(pair.mem.g2h(0).load(ControlWord.writeIndex)).toBe(0);
    expect(pair.client.ch.packetSend(p, new Uint8Array(64), 0)).toBe(STATUS.SUCCESS);
  });

  it('refuses to send a packet that is still in flight or freed', () => {
    const pair = makePair({ serverProcess: holdIt });
    const { packet } = send(pair.client, 1, { wait: true });
    expect(() => pair.client.ch.packetSend(packet, payload(1), 0)).toThrow(KmclUsageError);
    expect(() => pair.client.ch.packetFree(packet)).toThrow(KmclUsageError);
    const freed = send(pair.client, 2).packet;
    expect(() => pair.client.ch.packetSend(freed, payload(2), 0)).toThrow(KmclUsageError);
  });

  it('completes packets still in flight with the cancel status when the channel is disabled', () => {
    const log: string[] = [];
    const pair = makePair({ serverProcess: holdIt, serverStarts: false });
    send(pair.client, 1, { wait: true, log });
    pair.client.ch.disable();
    expect(log).toEqual([`done:1:${STATUS.CANCELLED.toString(16)}:null`]);
    expect(pair.client.log.slice(-2)).toEqual(['suspend', 'closed']);
  });
});

// ------------------------------------------------------------------ whole-channel property

describe('traffic in both directions (property)', () => {
  type Action =
    | { a: 'send'; from: 'server' | 'client'; size: number; wait: boolean }
    | { a: 'step'; side: 'server' | 'client' }
    | { a: 'complete'; side: 'server' | 'client'; index: number };
  const actionArb: fc.Arbitrary<Action> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        a: fc.constant('send' as const),
        from: fc.constantFrom('server' as const, 'client' as const),
        size: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 500, max: 2000 })),
        wait: fc.boolean(),
      }),
    },
    { weight: 3, arbitrary: fc.record({ a: fc.constant('step' as const), side: fc.constantFrom('server' as const, 'client' as const) }) },
    { weight: 1, arbitrary: fc.record({ a: fc.constant('complete' as const), side: fc.constantFrom('server' as const, 'client' as const), index: fc.nat(20) }) },
  );
  const configArb = fc.record({
    g2hPages: fc.integer({ min: 1, max: 2 }),
    h2gPages: fc.integer({ min: 1, max: 2 }),
    // 0: complete at once, 1: hold for a later complete action, 2: defer once, then complete
    behaviour: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 16 }),
    quota: fc.constantFrom(0, 1, 2, 5),
    sendOrdering: fc.constantFrom('fifo' as const, 'ring-first' as const),
  });

  it('delivers every packet exactly once and in send order, and completes every transaction exactly once, whatever the interleaving', () => {
    fc.assert(
      fc.property(configArb, fc.array(actionArb, { maxLength: 200, size: 'max' }), (cfg, actions) => {
        let nth = 0;
        const got = { server: [] as number[], client: [] as number[] };
        const behave = (side: Side, pkt: IncomingPacket) => {
          if (pkt.deferrals === 0) {
            got[side.ch.isServer ? 'server' : 'client'].push(new DataView(pkt.payload.buffer, pkt.payload.byteOffset).getUint32(0, true));
          }
          const b = cfg.behaviour[nth++ % cfg.behaviour.length]!;
          if (pkt.deferrals === 0 && b === 2) side.ch.packetDeferToPassive(pkt);
          else if (b === 1) side.held.push(pkt);
          else side.ch.packetComplete(pkt, payload(0xc0));
        };
        // Deferred packets counting against the quota can deadlock (see the it.fails above),
        // so this property keeps to configurations without that known bug.
        const pair = makePair({
          g2hPages: cfg.g2hPages,
          h2gPages: cfg.h2gPages,
          choices: { quotaCountsDeferred: false, sendOrdering: cfg.sendOrdering },
          serverProcess: behave,
          clientProcess: behave,
        });
        if (cfg.quota > 0) pair.server.ch.setTransactionQuota(cfg.quota);
        const sides = { server: pair.server, client: pair.client };
        const sent = { server: [] as number[], client: [] as number[] };
        const routineRuns = new Map<string, number>();
        let tag = 0;
        for (const act of actions) {
          if (act.a === 'send') {
            const t = ++tag;
            const side = sides[act.from];
            const p = side.ch.packetAllocate();
            const key = `${act.from}:${t}`;
            side.ch.packetSetCompletionRoutine(p, (_p, status) => {
              expect(status).toBe(STATUS.SUCCESS);
              routineRuns.set(key, (routineRuns.get(key) ?? 0) + 1);
            });
            const buf = new Uint8Array(Math.max(act.size, 4));
            new DataView(buf.buffer).setUint32(0, t, true);
            expect(side.ch.packetSend(p, buf, act.wait ? 1 : 0)).toBe(STATUS.SUCCESS);
            sent[act.from].push(t);
          } else if (act.a === 'step') {
            stepSide(sides[act.side].ch);
          } else {
            const side = sides[act.side];
            const pkt = side.held.splice(act.index % Math.max(side.held.length, 1), 1)[0];
            if (pkt) side.ch.packetComplete(pkt, null);
          }
        }
        // Drain: the drivers complete what they hold, until nothing can run.
        for (let round = 0; round < 1000; round++) {
          pair.pump();
          const held = [...pair.server.held.splice(0).map((p) => [pair.server, p] as const), ...pair.client.held.splice(0).map((p) => [pair.client, p] as const)];
          if (held.length === 0) break;
          for (const [side, p] of held) side.ch.packetComplete(p, null);
        }
        // Every packet arrived exactly once, in the order it was sent (under 'ring-first' a
        // later send may overtake packets queued in the library: then only the set counts).
        const inOrder = (xs: number[]) => (cfg.sendOrdering === 'fifo' ? xs : [...xs].sort((a, b) => a - b));
        expect(inOrder(got.client)).toEqual(sent.server);
        expect(inOrder(got.server)).toEqual(sent.client);
        expect(pair.client.ch.counters.packetsDelivered + pair.server.ch.counters.packetsDelivered).toBe(tag);
        // Every completion routine ran exactly once, and nothing is left in flight.
        expect([...routineRuns.values()].every((n) => n === 1)).toBe(true);
        expect(routineRuns.size).toBe(tag);
        for (const s of [pair.server, pair.client]) {
          expect(fifoLength(s.ch.queue)).toBe(0);
          expect(s.ch.awaiting.size).toBe(0);
          expect(s.ch.outstanding).toBe(0);
          expect(s.ch.counters.unknownCompletions).toBe(0);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('the other end closes (REVIEW E8)', () => {
  it('a guest close suspends and closes the server, which queues sends, and a reopen delivers them', () => {
    const clientLog: string[] = [];
    const pair = makePair();
    const server = pair.server.ch;
    server.onMisuse = (v) => {
      throw new Error(`unexpected violation ${v.rule}`);
    };
    server.peerClosed();
    expect(pair.server.log.slice(-2)).toEqual(['suspend', 'closed']);
    expect(server.state).toEqual({ conn: 'closed' });
    // After Closed, sends are queued but not transmitted.
    const p = server.packetAllocate();
    expect(server.packetSend(p, payload(0x61), 0)).toBe(STATUS.SUCCESS);
    expect(p.state).toBe('queued');
    pair.pump();
    expect(pair.client.log.filter((l) => l.startsWith('process:'))).toEqual([]);
    // The guest opens the channel again: Opened, Started, and the queued send goes out.
    const h = pair.mem.hostRings(0);
    expect(server.connectionOpened(h.out, h.in, { restored: false })).toBe(STATUS.SUCCESS);
    expect(pair.server.log.slice(-3)).toEqual(['opened', 'started', 'postStarted']);
    pair.pump();
    expect(pair.client.log).toContain(`process:${0x61}`);
    void clientLog;
  });

  it('after a guest close the VSP retires what it had outstanding (REVIEW D6), and only then', () => {
    const log: string[] = [];
    const pair = makePair();
    const server = pair.server.ch;
    expect(() => server.retireOutstanding()).toThrow(KmclUsageError);
    send(pair.server, 1, { wait: true, log });
    expect(server.awaiting.size).toBe(1);
    server.peerClosed();
    // The guest closed without completing it: it still awaits, and a new send is queued.
    expect(log).toEqual([]);
    send(pair.server, 2, { wait: true, log });
    expect(fifoLength(server.queue)).toBe(1);
    server.retireOutstanding();
    const cancelled = STATUS.CANCELLED.toString(16);
    expect([...log].sort()).toEqual([`done:1:${cancelled}:null`, `done:2:${cancelled}:null`]);
    expect(server.awaiting.size).toBe(0);
    expect(fifoLength(server.queue)).toBe(0);
    expect(server.state).toEqual({ conn: 'closed' });
  });

  it('a rescind closes the client, cancels what it had in flight, and leaves it disabled until enabled again', () => {
    const log: string[] = [];
    const pair = makePair({ serverProcess: holdIt });
    send(pair.client, 1, { wait: true, log });
    pair.pump();
    pair.client.ch.peerClosed();
    expect(pair.client.log.slice(-2)).toEqual(['suspend', 'closed']);
    expect(pair.client.ch.state).toEqual({ conn: 'disabled', autoPauseOnEnable: false });
    expect(log).toEqual([`done:1:${STATUS.CANCELLED.toString(16)}:null`]);
    expect(pair.client.ch.enable()).toBe(STATUS.SUCCESS);
  });
});
