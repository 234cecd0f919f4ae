// blockq's C VSP as a driver, through its control interface only, with a small TypeScript
// guest on the other end (a KMCL client Channel over guest memory speaking PROTOCOL.md):
// it answers Requests when each is due and not before, out of arrival order; it refuses
// bad commands and bad saved state without changing anything; and it unloads with
// nothing leaked after traffic, a save and a restore (Driver Verifier's unload checks).

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Channel, stateChangeCallbacksInit } from '../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import { STATUS } from '../../../src/vmbus/status.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { INTERFACE_TYPE_GUID, Mode, MsgType, answerDelay, decodeHeader, digestOf, encodeMessage, encodeReply, isIntact, replyStatus, statusFor } from '../../../devices/blockq/protocol.ts';
import { BlockqCVsp } from '../../../devices/blockq/c/vsp.ts';
import { instanceGuid } from '../../../devices/blockq/c/host-vsp.ts';
import { stepSide } from '../../vmbus/support/channel-pair.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const CH = 7;
const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_NOT_FOUND = 0xc0000225;
const STATUS_INVALID_DEVICE_STATE = 0xc0000184;

function harness() {
  const sink = new MemorySink();
  const clock = { now: 0 };
  const vsp = new BlockqCVsp({ choices: DEFAULT_CHOICES, sink, now: () => clock.now });
  const mem = new GuestMemory([{ ch: CH, g2hPages: 4, h2gPages: 4 }]);
  /** the guest's Requests answered, in order: tx and status */
  const answers: Array<{ tx: number; status: number; at: number }> = [];
  let client: Channel | null = null;
  const connect = () => {
    const server = vsp.offered(CH)!;
    const c = new Channel(false, CH, DEFAULT_CHOICES);
    c.initSetStateChangeCallbacks(stateChangeCallbacksInit());
    c.initSetProcessPacketCallbacks((cc, pkt, buf) => {
      // The guest answers each Event at once, as PROTOCOL.md says a receiver answers.
      const hd = decodeHeader(buf);
      if (hd && hd.type === MsgType.Event) cc.packetComplete(pkt, encodeReply(hd, statusFor(hd.tx, isIntact(buf, hd)), digestOf({ hi: 0, lo: 0 }, buf, hd.length)));
      else cc.packetComplete(pkt, null);
    });
    c.clientInitSetTargetPnp(INTERFACE_TYPE_GUID, instanceGuid(CH));
    if (c.enable() !== STATUS.SUCCESS) throw new Error('client enable failed');
    server.signalPeer = (w) => (w === 'interrupt' ? (c.interrupt = true) : (c.writable = true));
    c.signalPeer = (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true));
    const hr = mem.hostRings(CH);
    const gr = mem.guestRings(CH);
    server.connectionOpened(hr.out, hr.in, { restored: false });
    c.connectionOpened(gr.out, gr.in, { restored: false });
    client = c;
  };
  const h = {
    vsp, sink, clock, answers,
    /** `how`: a loopback offer, or into a VM by the handle a lab's broker holds (handle=H) */
    open(how = 'loopback') {
      vsp.run(`open ${CH} ${instanceGuid(CH)} ${how} ring-pages=4`);
      connect();
    },
    pump() {
      let n = 0;
      const step = (c: Channel | null): boolean => c !== null && stepSide(c);
      while (step(vsp.offered(CH)) || step(client)) if (++n > 100_000) throw new Error('pump did not settle');
    },
    /** advances the clock to `to`, firing the VSP's timers when due */
    advance(to: number) {
      for (;;) {
        const due = vsp.nextTimerDue();
        if (due === null || due > to) break;
        clock.now = Math.max(clock.now, due);
        vsp.runTimers(clock.now);
        h.pump();
      }
      clock.now = to;
      h.pump();
    },
    request(tx: number, len: number, mode: keyof typeof Mode, hold = 0) {
      const p = client!.packetAllocate();
      p.completionRoutine = (_p, st, resp) => {
        answers.push({ tx, status: st === STATUS.SUCCESS && resp ? replyStatus(resp) : -1, at: clock.now });
        client!.packetFree(p);
      };
      client!.packetSend(p, encodeMessage(MsgType.Request, tx, len, Mode[mode], hold), 1);
    },
    counters: () => vsp.counters().find((c) => c.ch === CH)!,
  };
  return h;
}

describe.skipIf(!toolchain)('blockq\'s C VSP, driven through its control interface', () => {
  it('answers four Requests that arrive together when each is due (0 to 3 ms by tx), not in arrival order', () => {
    const h = harness();
    h.open();
    for (const tx of [1, 2, 3, 4]) h.request(tx, 64, 'inline');
    h.pump();
    expect(h.counters()).toMatchObject({ requests_received: 4, outstanding: 4, answered: 0 });
    h.advance(10);
    // Due at 0, 3, 1 and 2 ms: answered as 1, 3, 4, 2 (PROTOCOL.md), each at its due time.
    expect(h.answers.map((a) => [a.tx, a.at])).toEqual([[1, 0], [3, 1], [4, 2], [2, 3]]);
    // tx % 7 == 3 fails by the status rule.
    expect(h.answers.find((a) => a.tx === 3)!.status).toBe(0xc0000010);
    const lens = h.sink.events.filter((e) => e.ev === 'pkt.complete').map((e) => (e as { len: number }).len);
    expect(lens).toEqual([44, 60, 68, 52]); // 36 + 8 * (tx % 8)
  });

  it('holds a Request in mode hold for its hold plus its delay, and answers a deferred one when it comes back', () => {
    const h = harness();
    h.open();
    h.request(5, 100, 'hold', 20); // due 20 + 0
    h.request(6, 100, 'deferred');
    h.pump();
    expect(h.answers.map((a) => a.tx)).toEqual([6]);
    expect(h.counters()).toMatchObject({ deferred: 1, outstanding: 1 });
    h.advance(19);
    expect(h.answers.map((a) => a.tx)).toEqual([6]);
    h.advance(20);
    expect(h.answers.map((a) => [a.tx, a.at])).toEqual([[6, 0], [5, 20]]);
  });

  it('refuses bad commands, unknown channels and sends while saved, changing nothing', () => {
    const h = harness();
    for (const bad of ['event 1 64', 'event 1 19 0 ch=7', 'event 1 8193 0 ch=7', 'open 7 not-a-guid loopback', 'save', 'frobnicate ch=7', 'note 1 64 ch=7 extra']) {
      expect(h.vsp.command(bad) >>> 0, bad).toBe(STATUS_INVALID_PARAMETER);
    }
    expect(h.vsp.command('event 1 64 0 ch=7') >>> 0).toBe(STATUS_NOT_FOUND);
    h.open();
    expect(h.vsp.command(`open ${CH} ${instanceGuid(CH)} loopback`) >>> 0).toBe(STATUS_INVALID_PARAMETER);
    h.vsp.run(`save ch=${CH}`);
    expect(h.vsp.command(`event 1 64 0 ch=${CH}`) >>> 0).toBe(STATUS_INVALID_DEVICE_STATE);
    expect(h.counters()).toMatchObject({ events_sent: 0, notes_sent: 0 });
  });

  it('offers a channel into a VM by the handle its open brings (a lab\'s handle broker), serves it as a loopback one, and closes the handle with the channel', () => {
    const h = harness();
    for (const bad of ['handle=0', 'handle=', 'handle=x1', 'handle=0x1ffffffffffffffff', 'handle=1 loopback']) {
      expect(h.vsp.command(`open ${CH} ${instanceGuid(CH)} ${bad}`) >>> 0, bad).toBe(STATUS_INVALID_PARAMETER);
    }
    expect(h.vsp.offered(CH)).toBeNull();
    h.open('handle=0x400');
    const server = h.vsp.offered(CH)!;
    expect(server.config.vmbusHandle, 'the KMCL channel is bound to a VM handle, not a loopback offer').not.toBeNull();
    expect(server.config.flags & 0x1 /* VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER */).toBe(0);
    for (const tx of [1, 2]) h.request(tx, 64, 'inline');
    h.pump();
    h.advance(10);
    expect(h.answers.map((a) => a.tx).sort()).toEqual([1, 2]);
    // A save, detach, import and restore on this host keep the VM's handle: the restored object is offered into it again.
    h.vsp.run(`save ch=${CH}`);
    const state = h.vsp.exportState(CH);
    h.vsp.run(`detach ch=${CH}`);
    expect(h.vsp.importState(state)).toBe(0);
    h.vsp.run(`restore ch=${CH}`);
    h.vsp.run(`resume ch=${CH}`);
    expect(h.vsp.offered(CH)!.config.vmbusHandle).not.toBeNull();
    h.vsp.run(`close ch=${CH}`);
    // The converted kernel handle is closed with the channel: unloading finds nothing open.
    expect(() => h.vsp.unload()).not.toThrow();
  });

  // Invariant (blockq-command.c parse_open): `handle=H` takes any H from 1 to 2^64 - 1,
  // decimal or 0x-hex, and nothing else; a refused open offers nothing.
  it('property: open by handle takes exactly the handles from 1 to 2^64 - 1, decimal or hex', () => {
    const h = harness();
    const max = (1n << 64n) - 1n;
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: max + 2n }), fc.boolean(), (n, hex) => {
      const text = hex ? `0x${n.toString(16)}` : n.toString();
      const st = h.vsp.command(`open ${CH} ${instanceGuid(CH)} handle=${text} ring-pages=4`) >>> 0;
      if (n >= 1n && n <= max) {
        expect(st, text).toBe(0);
        expect(h.vsp.offered(CH)!.config.vmbusHandle).not.toBeNull();
        h.vsp.run(`close ch=${CH}`);
      } else {
        expect(st, text).toBe(STATUS_INVALID_PARAMETER);
      }
      expect(h.vsp.offered(CH)).toBeNull();
    }), { numRuns: 200 });
    expect(() => h.vsp.unload()).not.toThrow();
  });

  it('refuses to import a VM channel\'s state where it has no channel (its handle comes only with open), or into a channel offered the other way', () => {
    const h = harness();
    h.open('handle=0x400');
    h.vsp.run(`save ch=${CH}`);
    const state = h.vsp.exportState(CH);
    h.vsp.run(`detach ch=${CH}`);
    const other = harness();
    expect(other.vsp.importState(state) >>> 0).toBe(STATUS_INVALID_DEVICE_STATE);
    other.open();
    other.vsp.run(`save ch=${CH}`);
    other.vsp.run(`detach ch=${CH}`);
    expect(other.vsp.importState(state) >>> 0, 'a loopback channel takes no VM channel\'s state').toBe(STATUS_INVALID_DEVICE_STATE);
    const bad = state.slice();
    bad[44] = 2; // loopback: neither 0 nor 1
    expect(h.vsp.importState(bad) >>> 0).toBe(STATUS_INVALID_PARAMETER);
  });

  it('refuses a saved state it did not write, and one for a channel in use', () => {
    const h = harness();
    h.open();
    h.vsp.run(`event 3 64 50 ch=${CH}`);
    h.pump();
    h.vsp.run(`save ch=${CH}`);
    const good = h.vsp.exportState(CH);
    expect(h.vsp.importState(good) >>> 0).toBe(STATUS_INVALID_DEVICE_STATE); // the channel object is live
    const badMagic = good.slice();
    badMagic[0]! ^= 0xff;
    expect(h.vsp.importState(badMagic) >>> 0).toBe(STATUS_INVALID_PARAMETER);
    expect(h.vsp.importState(good.slice(0, good.length - 1)) >>> 0).toBe(STATUS_INVALID_PARAMETER);
    h.vsp.run(`detach ch=${CH}`);
    expect(h.vsp.importState(good)).toBe(0);
  });

  it('unloads with nothing leaked after traffic both ways, a save with Events in flight and a restore', () => {
    const h = harness();
    h.open();
    h.vsp.run(`event 4 200 0 ch=${CH}`);
    h.vsp.run(`note 2 40 ch=${CH}`);
    for (const tx of [1, 2, 3]) h.request(tx, 128, 'hold', 30);
    h.pump();
    // Sent and not yet read by the guest: in flight at the save.
    h.vsp.run(`event 3 96 0 ch=${CH}`);
    h.vsp.run(`save ch=${CH}`);
    expect(h.counters()).toMatchObject({ outstanding: 0, answered: 3 }); // the Suspend before the save answered them
    h.pump();
    expect(h.answers.map((a) => a.tx)).toEqual([1, 3, 2]); // soonest due first: 30, 31, 33 ms
    h.vsp.run(`restore ch=${CH}`);
    expect(h.sink.events.filter((e) => e.ev === 'pkt.restore').length).toBeGreaterThan(0);
    h.vsp.run(`resume ch=${CH}`);
    h.vsp.run(`close ch=${CH}`);
    expect(() => h.vsp.unload()).not.toThrow();
  });

  // Invariant (devices/blockq/c/vsp.h, BQ_CHANNEL.Outstanding): a Request is outstanding
  // from its arrival until it is answered, once: by the timer at its due time, or earlier
  // by `answer` (what the Suspend before a save does too), never before it arrived.
  it('answers every Request exactly once, at its due time or at the first `answer` before it', () => {
    type Op = { op: 'request'; mode: keyof typeof Mode; hold: number; len: number } | { op: 'advance'; ms: number } | { op: 'answer' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('request' as const), mode: fc.constantFrom('inline', 'deferred', 'hold') as fc.Arbitrary<keyof typeof Mode>, hold: fc.integer({ min: 0, max: 12 }), len: fc.integer({ min: 20, max: 400 }) }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 6 }) }),
      fc.constant({ op: 'answer' as const }),
    );
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
      const h = harness();
      h.open();
      const expected = new Map<number, number>();
      const due = new Map<number, number>();
      let tx = 0;
      for (const o of ops) {
        if (o.op === 'request') {
          tx++;
          h.request(tx, o.len, o.mode, o.hold);
          h.pump();
          due.set(tx, o.mode === 'deferred' ? h.clock.now : h.clock.now + answerDelay(tx, o.mode === 'hold' ? o.hold : 0));
        } else if (o.op === 'advance') {
          const to = h.clock.now + o.ms;
          for (const [t, d] of due) if (d <= to && !expected.has(t)) expected.set(t, d);
          h.advance(to);
        } else {
          for (const t of due.keys()) if (!expected.has(t)) expected.set(t, h.clock.now);
          h.vsp.run(`answer ch=${CH}`);
          h.pump();
        }
      }
      const end = h.clock.now + 100;
      for (const [t, d] of due) if (!expected.has(t)) expected.set(t, d);
      h.advance(end);
      const seen = h.answers.map((a) => a.tx);
      expect(new Set(seen).size).toBe(seen.length);
      expect(new Map(h.answers.map((a) => [a.tx, a.at]))).toEqual(expected);
      expect(h.counters()).toMatchObject({ outstanding: 0, answered: tx });
    }), { numRuns: 40 });
  });
});
