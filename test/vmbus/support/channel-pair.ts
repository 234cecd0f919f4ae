// A connected server/client channel pair over emulated guest memory, wired the way the
// partition wires them: each side's signal sets a flag on the other, and nothing runs
// until the test pumps. Used by channel.test.ts and channel-save.test.ts.

import { expect } from 'vitest';
import { Channel, type ProcessPacketCallback, type StateChangeCallbacks, stateChangeCallbacksInit } from '../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES, type GapChoices } from '../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import type { IncomingPacket } from '../../../src/vmbus/packet.ts';
import { STATUS } from '../../../src/vmbus/status.ts';

export const IFACE_TYPE = '8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501';
export const IFACE_INSTANCE = '00000000-0000-0000-0000-000000000001';

export interface Side {
  ch: Channel;
  /** every callback, in order: 'opened', 'started', 'process:<tag>', 'complete:<n>', ... */
  log: string[];
  /** incoming packets the driver holds (not completed yet) */
  held: IncomingPacket[];
}

export interface PairOptions {
  choices?: Partial<GapChoices>;
  /** data pages of the guest->host ring (client writes) and host->guest ring (server writes) */
  g2hPages?: number;
  h2gPages?: number;
  /** call VmbChannelStart on the server before the connection opens (default true) */
  serverStarts?: boolean;
  /** driver behaviour on each incoming packet; default: complete at once with no buffer */
  serverProcess?: (side: Side, pkt: IncomingPacket, buf: Uint8Array) => void;
  clientProcess?: (side: Side, pkt: IncomingPacket, buf: Uint8Array) => void;
  serverCallbacks?: (side: Side) => Partial<StateChangeCallbacks>;
  clientCallbacks?: (side: Side) => Partial<StateChangeCallbacks>;
  /** extra Init* calls on the server before enable */
  serverInit?: (ch: Channel) => void;
  clientInit?: (ch: Channel) => void;
  /** open the connection (default true) */
  open?: boolean;
}

/** First byte of a payload, as a tag for the log. */
export const tagOf = (buf: Uint8Array): number => buf[0] ?? -1;

export function payload(tag: number, size = 8): Uint8Array {
  const b = new Uint8Array(size);
  b.fill(tag & 0xff);
  return b;
}

export function completeNow(side: Side, pkt: IncomingPacket): void {
  side.ch.packetComplete(pkt, null);
}

export function holdIt(side: Side, pkt: IncomingPacket): void {
  side.held.push(pkt);
}

function loggingCallbacks(side: Side, extra: Partial<StateChangeCallbacks>): StateChangeCallbacks {
  const cb = stateChangeCallbacksInit();
  cb.opened = (ch) => {
    side.log.push('opened');
    return extra.opened ? extra.opened(ch) : STATUS.SUCCESS;
  };
  cb.started = (ch) => {
    side.log.push('started');
    extra.started?.(ch);
  };
  cb.postStarted = (ch) => {
    side.log.push('postStarted');
    extra.postStarted?.(ch);
  };
  cb.suspend = (ch) => {
    side.log.push('suspend');
    extra.suspend?.(ch);
  };
  cb.closed = (ch) => {
    side.log.push('closed');
    extra.closed?.(ch);
  };
  return cb;
}

function configure(side: Side, isServer: boolean, opts: PairOptions): void {
  const ch = side.ch;
  const process = (isServer ? opts.serverProcess : opts.clientProcess) ?? completeNow;
  const pp: ProcessPacketCallback = (_c, pkt, buf) => {
    side.log.push(`process:${tagOf(buf)}`);
    process(side, pkt, buf);
  };
  const must = (st: number, what: string) => {
    if (st !== STATUS.SUCCESS) throw new Error(`${what} returned 0x${st.toString(16)}`);
  };
  must(ch.initSetProcessPacketCallbacks(pp, (_c, n) => side.log.push(`complete:${n}`)), 'initSetProcessPacketCallbacks');
  must(ch.initSetStateChangeCallbacks(loggingCallbacks(side, (isServer ? opts.serverCallbacks : opts.clientCallbacks)?.(side) ?? {})), 'initSetStateChangeCallbacks');
  if (isServer) must(ch.serverInitSetTargetInterfaceId(IFACE_TYPE, IFACE_INSTANCE), 'serverInitSetTargetInterfaceId');
  else must(ch.clientInitSetTargetPnp(IFACE_TYPE, null), 'clientInitSetTargetPnp');
  (isServer ? opts.serverInit : opts.clientInit)?.(ch);
}

export interface Pair {
  mem: GuestMemory;
  server: Side;
  client: Side;
  choices: GapChoices;
  /** Runs every runnable step on both sides until nothing is runnable. Returns the step count. */
  pump(limit?: number): number;
  /** Runs steps on one side only. */
  pumpOne(side: Side, limit?: number): number;
  /** Opens the connection (if `open: false` was given). */
  open(): void;
}

export function wire(a: Channel, b: Channel): void {
  a.signalPeer = (w) => {
    if (w === 'interrupt') b.interrupt = true;
    else b.writable = true;
  };
  b.signalPeer = (w) => {
    if (w === 'interrupt') a.interrupt = true;
    else a.writable = true;
  };
}

export function stepSide(ch: Channel): boolean {
  if (ch.canDeliver()) {
    ch.deliverOne();
    return true;
  }
  if (ch.canFlush()) {
    ch.flushOne();
    return true;
  }
  return false;
}

export function makePair(opts: PairOptions = {}): Pair {
  const choices: GapChoices = { ...DEFAULT_CHOICES, ...(opts.choices ?? {}) };
  const mem = new GuestMemory([{ ch: 0, g2hPages: opts.g2hPages ?? 4, h2gPages: opts.h2gPages ?? 4 }]);
  const server: Side = { ch: new Channel(true, 0, choices), log: [], held: [] };
  const client: Side = { ch: new Channel(false, 0, choices), log: [], held: [] };
  configure(server, true, opts);
  configure(client, false, opts);
  if (server.ch.enable() !== STATUS.SUCCESS || client.ch.enable() !== STATUS.SUCCESS) throw new Error('enable failed');
  if (opts.serverStarts ?? true) server.ch.start();
  wire(server.ch, client.ch);
  const pumpOne = (side: Side, limit = 100_000): number => {
    let n = 0;
    while (stepSide(side.ch)) if (++n > limit) throw new Error('pump did not settle');
    return n;
  };
  const pair: Pair = {
    mem,
    server,
    client,
    choices,
    pump(limit = 100_000) {
      let n = 0;
      for (;;) {
        const progressed = stepSide(server.ch) || stepSide(client.ch);
        if (!progressed) return n;
        if (++n > limit) throw new Error('pump did not settle');
      }
    },
    pumpOne,
    open() {
      const h = mem.hostRings(0);
      const g = mem.guestRings(0);
      server.ch.connectionOpened(h.out, h.in, { restored: false });
      client.ch.connectionOpened(g.out, g.in, { restored: false });
    },
  };
  if (opts.open ?? true) pair.open();
  return pair;
}

/** Sends `tag` from a side with an optional completion routine that logs into `log`. */
export function send(side: Side, tag: number, opts: { wait?: boolean; size?: number; log?: string[] } = {}) {
  const p = side.ch.packetAllocate();
  if (opts.log) {
    const log = opts.log;
    side.ch.packetSetCompletionRoutine(p, (_pk, status, resp) => {
      log.push(`done:${tag}:${status === STATUS.SUCCESS ? 'ok' : status.toString(16)}:${resp === null ? 'null' : tagOf(resp)}`);
    });
  }
  const st = side.ch.packetSend(p, payload(tag, opts.size ?? 8), opts.wait ? 1 : 0);
  return { packet: p, status: st };
}

/**
 * Fills `ch`'s outgoing ring with empty packets that want no completion (written and done
 * at once), so that what is sent next waits in the library queue. That is how packets
 * come to be queued at a save: a send after EvtVmbChannelSuspend is a KMCL rule break
 * (send-after-suspend), so tests no longer queue them by sending after Pause.
 */
export function fillRing(ch: Channel): void {
  const empty = new Uint8Array(0);
  // An empty in-band packet takes 24 bytes: once fewer are free, every packet queues.
  while (ch.outgoing!.free() >= 24) expect(ch.packetSend(ch.packetAllocate(), empty, 0)).toBe(STATUS.SUCCESS);
}
