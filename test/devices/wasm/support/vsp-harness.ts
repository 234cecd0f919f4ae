// The C VSP on the emulator with a small TypeScript guest on the other end: a KMCL
// client Channel over guest memory that completes every HostTransaction it receives
// (as PROTOCOL.md says) and can send Requests. The tests drive the VSP through its
// control commands, as the lab does, and pump both ends until nothing is runnable.

import { Channel, stateChangeCallbacksInit } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES, type GapChoices } from '../../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { STATUS } from '../../../../src/vmbus/status.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import { CompletionMode, INTERFACE_TYPE_GUID, MsgType, decodeHeader, encodeCompletion, encodeMessage, isIntact, statusFor } from '../../../../devices/sample/protocol.ts';
import { CVsp, type CVspOptions } from '../../../../devices/sample/c/vsp.ts';
import { stepSide } from '../../../vmbus/support/channel-pair.ts';

export const CH = 42;
export const INSTANCE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a';

export interface Harness {
  vsp: CVsp;
  sink: MemorySink;
  clock: { now: number };
  client: Channel | null;
  /** completions the guest received for its Requests: tx -> status */
  completions: Map<number, number>;
  /** opens channel CH on the VSP and connects the guest to it */
  open(): void;
  /** connects the guest to whatever the VSP offers as CH now (after a restore) */
  connect(): void;
  pump(limit?: number): number;
  /** advances the clock by `ms`, firing the VSP's timers and pumping */
  advance(ms: number): void;
  sendRequest(tx: number, len: number, mode: number, holdMs?: number): void;
  events(ev?: string): Array<Record<string, unknown>>;
}

export function makeHarness(opts: Partial<Omit<CVspOptions, 'sink' | 'now' | 'choices'>> & { choices?: Partial<GapChoices> } = {}): Harness {
  const sink = new MemorySink();
  const clock = { now: 0 };
  const choices = { ...DEFAULT_CHOICES, ...(opts.choices ?? {}) };
  const vsp = new CVsp({ ...opts, choices, sink, now: () => clock.now });
  const mem = new GuestMemory([{ ch: CH, g2hPages: 4, h2gPages: 4 }]);
  const completions = new Map<number, number>();
  const h: Harness = {
    vsp, sink, clock, client: null, completions,
    open() {
      vsp.run(`open ${CH} ${INSTANCE} loopback ring-pages=4`);
      h.connect();
    },
    connect() {
      const server = vsp.offered(CH);
      if (!server) throw new Error('the VSP offers no channel 42');
      const client = new Channel(false, CH, choices);
      const cbs = stateChangeCallbacksInit();
      client.initSetStateChangeCallbacks(cbs);
      client.initSetProcessPacketCallbacks((c, pkt, buf) => {
        const hd = decodeHeader(buf);
        if (hd && hd.type === MsgType.HostTransaction) c.packetComplete(pkt, encodeCompletion(buf, hd, statusFor(hd.tx, isIntact(buf, hd))));
        else c.packetComplete(pkt, null);
      });
      client.clientInitSetTargetPnp(INTERFACE_TYPE_GUID, INSTANCE);
      if (client.enable() !== STATUS.SUCCESS) throw new Error('client enable failed');
      server.signalPeer = (w) => (w === 'interrupt' ? (client.interrupt = true) : (client.writable = true));
      client.signalPeer = (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true));
      const hr = mem.hostRings(CH);
      const gr = mem.guestRings(CH);
      server.connectionOpened(hr.out, hr.in, { restored: false });
      client.connectionOpened(gr.out, gr.in, { restored: false });
      h.client = client;
    },
    pump(limit = 100_000) {
      let n = 0;
      const step = (c: Channel | null): boolean => c !== null && stepSide(c);
      while (step(vsp.offered(CH)) || step(h.client)) if (++n > limit) throw new Error('pump did not settle');
      return n;
    },
    advance(ms) {
      const end = clock.now + ms;
      for (;;) {
        const due = vsp.nextTimerDue();
        if (due === null || due > end) break;
        clock.now = Math.max(clock.now, due);
        vsp.runTimers(clock.now);
        h.pump();
      }
      clock.now = end;
      h.pump();
    },
    sendRequest(tx, len, mode, holdMs = 0) {
      const c = h.client!;
      const p = c.packetAllocate();
      p.completionRoutine = (_p, st, resp) => {
        const hd = resp ? decodeHeader(resp) : null;
        completions.set(tx, st === STATUS.SUCCESS && hd ? hd.arg0 : -1);
      };
      c.packetSend(p, encodeMessage(MsgType.Request, tx, len, mode, mode === CompletionMode.Hold ? holdMs : 0), 1);
    },
    events(ev) {
      return sink.events.filter((e) => ev === undefined || e.ev === ev) as unknown as Array<Record<string, unknown>>;
    },
  };
  return h;
}
