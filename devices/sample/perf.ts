// `bench perf` figures for the C drivers beside their twins: guest Requests that the
// sample VSP completes inline, through KMCL, per second, with the VSP being the
// TypeScript twin or the C VSP compiled to WebAssembly (same guest, same client
// Channel, no trace written). Benchmark figures only, never asserted in tests.

import { Channel, stateChangeCallbacksInit } from '../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { GuestMemory } from '../../src/vmbus/partition.ts';
import { FORMAT_FLAG_WAIT_FOR_COMPLETION, type VmbPacket } from '../../src/vmbus/packet.ts';
import type { TraceSink } from '../../src/trace/sink.ts';
import { CompletionMode, INTERFACE_TYPE_GUID, MsgType, encodeMessage } from './protocol.ts';
import { SampleVsp } from './vsp.ts';
import { CVsp } from './c/vsp.ts';

const CH = 7;
const INSTANCE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f00000007';

/** Round trips per second (wall clock) of `n` 64-byte Requests, batched 64 at a time. */
export function vspRoundTripsPerSec(kind: 'twin' | 'c', n: number): number {
  const r = vspRoundTrips(kind, n);
  return r.roundTrips / (r.wallMs / 1000);
}

/**
 * `n` 64-byte Requests, batched 64 at a time: how many completed, and the loop's time in
 * wall clock and in this process's CPU time (the channels' set-up is not timed).
 */
export function vspRoundTrips(kind: 'twin' | 'c', n: number): { roundTrips: number; wallMs: number; cpuMs: number } {
  const sink: TraceSink = { emit: () => {} };
  let server: Channel;
  if (kind === 'twin') {
    const v = new SampleVsp({ ch: CH, instance: INSTANCE, choices: DEFAULT_CHOICES, sink, now: () => 0, saveBufferSize: 4096 });
    v.enable();
    server = v.channel;
  } else {
    const v = new CVsp({ choices: DEFAULT_CHOICES, sink, now: () => 0 });
    v.run(`open ${CH} ${INSTANCE} loopback ring-pages=16`);
    server = v.offered(CH)!;
  }
  const mem = new GuestMemory([{ ch: CH, g2hPages: 16, h2gPages: 16 }]);
  const client = new Channel(false, CH, DEFAULT_CHOICES);
  client.initSetStateChangeCallbacks(stateChangeCallbacksInit());
  client.initSetProcessPacketCallbacks((c, pkt) => c.packetComplete(pkt, null));
  client.clientInitSetTargetPnp(INTERFACE_TYPE_GUID, INSTANCE);
  client.enable();
  server.signalPeer = (w) => (w === 'interrupt' ? (client.interrupt = true) : (client.writable = true));
  client.signalPeer = (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true));
  const h = mem.hostRings(CH);
  const g = mem.guestRings(CH);
  server.connectionOpened(h.out, h.in, { restored: false });
  client.connectionOpened(g.out, g.in, { restored: false });
  let done = 0;
  // The client frees each packet when it completes, as a KMCL driver must (rule E7): a
  // routine that kept them would grow the channel's table of live packets to n.
  const onDone = (p: VmbPacket): void => {
    done++;
    client.packetFree(p);
  };
  const batch = 64;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    for (let j = 0; j < batch; j++) {
      const p = client.packetAllocate();
      p.completionRoutine = onDone;
      client.packetSend(p, encodeMessage(MsgType.Request, i + j + 1, 64, CompletionMode.Inline, 0), FORMAT_FLAG_WAIT_FOR_COMPLETION);
    }
    while (server.canDeliver()) server.deliverOne();
    while (client.canDeliver()) client.deliverOne();
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  if (done !== Math.ceil(n / batch) * batch) throw new Error(`${kind} VSP round trips: ${done} of ${n} completed`);
  return { roundTrips: done, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}
