// The sample's C VSP and C Windows client driver (lab/drivers, compiled to WebAssembly) as
// one host's loopback drivers behind the stand-in's sample-ctl (its -Bridge: each call's
// argv is POSTed here and answered as the real tool answers: lab/drivers/vsp/tool/sample-ctl.c,
// its output, exit code and stderr). Several channels: each loopback `open` makes the client
// a PnP device of its own (the driver's control device lives while any does, so with none
// the guest's verbs cannot open it: exit 3).
//
// What stands in for the host: the rings, PnP adding a device per loopback offer and binding
// its client, deliveries (run after each call, as if the host's interrupts came before the
// next), and the teardown of a rescinded client, in the order a test chooses (a stand-in
// choice, not something this harness knows of Windows):
//
//   removal-first  PnP removes the device at once; the driver's own VmbChannelDisable
//                  suspends and closes the client inside the removal (the bench's default)
//   kmcl-first     KMCL suspends and closes the client on the rescind itself (peerClosed,
//                  as cGuestRemovalRace does); PnP removes the device later, at the second
//                  read of the client's counters, so a command sent at once, and one read,
//                  reach the device in between
//
// A refusal prints "the driver refused "LINE" (error N)" with N the Win32 error the I/O
// manager gives the NTSTATUS (the few the drivers return here; others as ERROR_MR_MID_NOT_FOUND,
// RtlNtStatusToDosError's answer for an unmapped status).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CGuestWindows } from '../../../../devices/sample/c/guest-windows.ts';
import { CVsp } from '../../../../devices/sample/c/vsp.ts';
import { channelInstance } from '../../../../devices/sample/control.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import type { Channel } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { stepSide } from '../../../vmbus/support/channel-pair.ts';
import { traceJsonl } from './virtual-time.ts';

export type RemovalOrder = 'removal-first' | 'kmcl-first';

const WIN32: Record<number, number> = { 0xc0000184: 22, 0xc0000225: 1168, 0xc000000d: 87, 0xc0000010: 1, 0xc00000bb: 50 };
const EXIT_INPUT = 2;
const EXIT_INFRA = 3;

interface Offer {
  mem: GuestMemory;
  /** the server object the client is connected to */
  server: Channel | null;
  device: number | null;
  client: Channel | null;
}

interface Answer {
  output: string[];
  exitCode: number;
  stderr?: string[];
  file?: string;
  content?: string;
}

export interface CLoopbackHost {
  server: Server;
  url: string;
  /** every call's argv, in order */
  calls: string[][];
  /** the client's devices PnP has removed, in order, with the order they were removed in */
  removals: Array<{ ch: number; order: RemovalOrder }>;
}

export async function cLoopbackHost(order: RemovalOrder): Promise<CLoopbackHost> {
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const choices = { ...DEFAULT_CHOICES };
  const vspSink = new MemorySink();
  const vsp = new CVsp({ choices, sink: vspSink, now });
  const guest = new CGuestWindows({ choices, sink: new MemorySink(), now, onEnabled: () => {}, devicesAtLoad: 0 });
  const offers = new Map<number, Offer>();
  /** rescinded channels whose devices PnP has yet to remove (kmcl-first), with the counters reads left before it does */
  const pending: Array<{ ch: number; reads: number }> = [];
  const calls: string[][] = [];
  const removals: CLoopbackHost['removals'] = [];

  const pump = (): void => {
    vsp.runTimers(now());
    guest.runTimers(now());
    for (let n = 0; ; n++) {
      if (n > 1_000_000) throw new Error('the C loopback host did not settle');
      let moved = vsp.runWorkItems() > 0 || guest.runWorkItems() > 0;
      for (const [ch, o] of offers) {
        if (o.server && vsp.offered(ch) === o.server && stepSide(o.server)) moved = true;
        if (o.client && o.device !== null && stepSide(o.client)) moved = true;
      }
      if (!moved) return;
    }
  };

  /** The server object the VSP offers on `ch` now, connected to the client's rings (PnP binds a new device once). */
  const connect = (ch: number): void => {
    const o = offers.get(ch);
    const offered = vsp.offered(ch);
    if (!o || !offered || offered === o.server) return;
    const restored = o.server !== null && o.device !== null;
    if (o.device === null) {
      o.device = guest.addDevice();
      o.client = guest.clientOf(o.device);
      if (!o.client) throw new Error(`the client's device for channel ${ch} enabled no channel`);
      o.client.config.interfaceInstance = channelInstance(ch);
    }
    const c = o.client!;
    const server = offered;
    o.server = server;
    server.signalPeer = (w) => (w === 'interrupt' ? (c.interrupt = true) : (c.writable = true));
    c.signalPeer = (w) => {
      if (o.server !== server) return;
      if (w === 'interrupt') server.interrupt = true;
      else server.writable = true;
    };
    const hr = o.mem.hostRings(ch);
    server.connectionOpened(hr.out, hr.in, { restored });
    if (!restored) {
      const gr = o.mem.guestRings(ch);
      const st = c.connectionOpened(gr.out, gr.in, { restored: false });
      if (st !== 0) throw new Error(`the client's EvtVmbChannelOpened on channel ${ch} failed with 0x${(st >>> 0).toString(16)}`);
    }
  };

  /** PnP removes the client's device for `ch`: EvtDeviceReleaseHardware disables its client. */
  const remove = (ch: number, how: RemovalOrder): void => {
    const o = offers.get(ch);
    if (!o || o.device === null) return;
    guest.removeDevice(o.device);
    o.device = null;
    o.client = null;
    o.server = null;
    removals.push({ ch, order: how });
  };

  /** The host's end of `ch` went away (rescind, close): the client is torn down in the chosen order. */
  const teardown = (ch: number, how: RemovalOrder): void => {
    const o = offers.get(ch);
    if (!o?.client || o.device === null) return;
    o.client.signalPeer = () => {};
    if (how === 'removal-first') return remove(ch, how);
    o.client.peerClosed();
    pump();
    pending.push({ ch, reads: 1 });
  };

  const refused = (text: string, status: number): Answer => {
    const s = status >>> 0;
    const win32 = WIN32[s] ?? 317;
    return { output: [], exitCode: win32 === 87 ? EXIT_INPUT : EXIT_INFRA, stderr: [`the driver refused "${text}" (error ${win32})`] };
  };
  const noGuest: Answer = { output: [], exitCode: EXIT_INFRA, stderr: ['cannot open \\\\.\\VmbusSampleGuest (error 2): is the driver installed?'] };
  const lines = (rows: Array<Record<string, number>>) => rows.map((r) => Object.entries(r).map(([k, v]) => `${k}=${v}`).join(' '));

  const answer = (args: string[]): Answer => {
    const [who, verb, text] = args;
    if (who === 'etl2jsonl') return { output: [], exitCode: 0, file: args[2]!, content: traceJsonl(vspSink.events as unknown as Array<Record<string, unknown>>) };
    if (who === 'vsp' && verb === 'counters') return { output: lines(vsp.counters()), exitCode: 0 };
    if (who === 'vsp' && verb === 'command') {
      const t = text!.trim().split(/\s+/);
      const ch = t[0] === 'open' ? Number(t[1]) : Number(/ch=(\d+)/.exec(text!)?.[1]);
      if (t[0] === 'open' && !offers.has(ch)) {
        const pages = Number(/ring-pages=(\d+)/.exec(text!)?.[1] ?? 4);
        offers.set(ch, { mem: new GuestMemory([{ ch, g2hPages: pages, h2gPages: pages }]), server: null, device: null, client: null });
      }
      const st = vsp.command(text!);
      if (st !== 0) return refused(text!, st);
      if (t[0] === 'rescind') teardown(ch, order);
      else if (t[0] === 'close') remove(ch, 'removal-first');
      // open offers; after a restore, resume offers the new object (vsp-save.c).
      for (const c of offers.keys()) connect(c);
      return { output: [], exitCode: 0 };
    }
    if (who === 'guest') {
      // PnP's removal of a rescinded client's device, in its own time: before this read.
      if (verb === 'counters') {
        for (const p of pending) if (p.reads-- === 0) remove(p.ch, 'kmcl-first');
        pending.splice(0, pending.length, ...pending.filter((p) => p.reads >= 0));
      }
      if (guest.devices().length === 0) return noGuest;
      if (verb === 'counters') return { output: lines(guest.counters()), exitCode: 0 };
      if (verb === 'command') {
        const st = guest.command(text!);
        return st === 0 ? { output: [], exitCode: 0 } : refused(text!, st);
      }
      if (verb === 'trace') return { output: [], exitCode: 0, file: text!, content: new TextDecoder().decode(guest.readTraceFrom(0)) };
    }
    return { output: [], exitCode: EXIT_INPUT, stderr: [`usage: not a verb of sample-ctl: ${args.join(' ')}`] };
  };

  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const args = (JSON.parse(body) as { args: string[] }).args;
      calls.push(args);
      let a: Answer;
      try {
        pump();
        a = answer(args);
        pump();
      } catch (e) {
        a = { output: [], exitCode: EXIT_INPUT, stderr: [(e as Error).message.split('\n')[0]!] };
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(a));
    });
  });
  const url = await new Promise<string>((ok) => server.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)));
  return { server, url, calls, removals };
}
