// A loopback job's drivers on the emulator: the sample C VSP and the sample Windows
// client driver, compiled to WebAssembly (src/devices/wasm), behind the LoopbackDrivers
// face that sampleCtlDrivers gives a real host. So a loopback job's whole path, the
// VSP's control commands, the client's, each driver's trace-seq mark read from its
// counters, both traces collected and merged by real-job.ts, runs end to end here on the
// same code a lab run uses (loopback-lab.ts), with the drivers' own C code on the other
// side of it instead of sample-ctl.exe.
//
// What stands in for the host (said plainly, none of it is a lab host):
//  - the offer: when the VSP offers a channel (open, or resume after a restore), the
//    client driver's device is added for it, as PnP would on the loopback offer's device
//    interface, and the two ends are connected over rings of the emulator;
//  - the processors: a background pump steps both ends, runs the client's work items and
//    both drivers' timers on the job clock, whenever the job waits;
//  - ETW: the VSP's TraceLogging events are collected as the trace shim writes them and
//    handed out as JSON Lines, numbered in order, as etl2jsonl would.
// One channel only: each client driver instance numbers its own trace, and a real host's
// per-device traces would need a merge this does not do yet.

import { InfraError, InputError } from '../../errors.ts';
import { Channel } from '../../vmbus/channel.ts';
import { DEFAULT_CHOICES, resolveChoices, type GapChoices } from '../../vmbus/choices.ts';
import { GuestMemory } from '../../vmbus/partition.ts';
import type { EventBody } from '../../trace/schema.ts';
import { CVsp } from '../../devices/wasm/c-vsp.ts';
import { CGuestWindows } from '../../devices/wasm/c-guest-windows.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import type { DriverControl } from './real-job.ts';
import type { LoopbackDrivers } from './loopback-lab.ts';

export interface WasmLoopbackOptions {
  clock: Clock;
  choices?: Partial<GapChoices> | undefined;
}

export interface WasmLoopback extends LoopbackDrivers {
  /** stops the background pump (the job is over) */
  stop(): void;
}

interface Link {
  ch: number;
  memory: GuestMemory;
  client: Channel;
  guest: CGuestWindows;
  server: Channel | null;
}

export function wasmLoopbackDrivers(o: WasmLoopbackOptions): WasmLoopback {
  const choices = o.choices ? resolveChoices(o.choices) : DEFAULT_CHOICES;
  const t0 = o.clock.now();
  const now = () => o.clock.now() - t0;
  const hostEvents: EventBody[] = [];
  const vsp = new CVsp({ choices, sink: { emit: (e) => void hostEvents.push(e) }, now });
  const links = new Map<number, Link>();
  const pages = new Map<number, number>();

  /** A new offer (or a restored object offered again) gets its client end. */
  const connectOffers = (): void => {
    for (const [ch, ringPages] of pages) {
      const server = vsp.offered(ch);
      if (!server) continue;
      let link = links.get(ch);
      if (!link) {
        if (links.size > 0) throw new InputError('a loopback job on the emulator drives one channel for now (each client driver numbers its own trace)');
        const memory = new GuestMemory([{ ch, g2hPages: ringPages, h2gPages: ringPages }]);
        let client: Channel | null = null;
        const guest = new CGuestWindows({ choices, sink: { emit: () => undefined }, now, onEnabled: (c) => (client = c) });
        if (!client) throw new InfraError(`the client driver enabled no channel for channel ${ch}`);
        link = { ch, memory, client, guest, server: null };
        links.set(ch, link);
        (client as Channel).config.interfaceInstance = server.config.interfaceInstance;
      }
      if (link.server === server) continue;
      const restored = link.server !== null;
      const c = link.client;
      server.signalPeer = (w) => (w === 'interrupt' ? (c.interrupt = true) : (c.writable = true));
      c.signalPeer = (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true));
      const hr = link.memory.hostRings(ch);
      server.connectionOpened(hr.out, hr.in, { restored });
      if (!restored) {
        const gr = link.memory.guestRings(ch);
        c.connectionOpened(gr.out, gr.in, { restored: false });
      }
      link.server = server;
    }
  };

  const step = (c: Channel | null): boolean => {
    if (!c) return false;
    if (c.canDeliver()) {
      c.deliverOne();
      return true;
    }
    if (c.canFlush()) {
      c.flushOne();
      return true;
    }
    return false;
  };

  /** Runs both ends until nothing is ready at the job clock's time. */
  const pump = (): void => {
    for (let n = 0; n < 1_000_000; n++) {
      let ran = false;
      for (const l of links.values()) ran = step(vsp.offered(l.ch)) || step(l.client) || l.guest.runWorkItems() > 0 || ran;
      const t = now();
      if (vsp.runTimers(t) > 0) ran = true;
      for (const l of links.values()) if (l.guest.runTimers(t) > 0) ran = true;
      if (!ran) return;
    }
    throw new InfraError('the emulated loopback host never went quiet');
  };
  const timer = setInterval(() => {
    try {
      pump();
    } catch {
      // The next command or mark read throws it where the job sees it.
    }
  }, 1);

  const seqOf = (counters: Array<Record<string, number>>): number => {
    const line = counters.find((c) => 'trace_seq' in c);
    if (!line) throw new InfraError('the driver\'s counters have no trace_seq');
    return line.trace_seq!;
  };

  const vspControl: DriverControl = {
    command: async (text) => {
      const m = /^open (\d+) \S+ loopback(?: ring-pages=(\d+))?/.exec(text);
      if (m) pages.set(Number(m[1]), Number(m[2] ?? 4));
      vsp.run(text);
      connectOffers();
      pump();
    },
    // The trace shim hands events over in the driver's seq order without its numbers (it
    // only orders by them), so the capture numbers them, as etl2jsonl writes a capture's
    // events: the mark is how many there are.
    traceSeq: async () => {
      pump();
      return hostEvents.length;
    },
    readTrace: async () => hostEvents.map((e, i) => `${JSON.stringify({ v: 1, seq: i + 1, src: 'hyperv', ...e })}\n`).join(''),
  };

  const only = (): Link => {
    const l = [...links.values()][0];
    if (!l) throw new InfraError('the client driver has not bound to an offer yet');
    return l;
  };
  const client: DriverControl = {
    command: async (text) => {
      only().guest.run(text);
      pump();
    },
    traceSeq: async () => {
      pump();
      return seqOf(only().guest.counters());
    },
    readTrace: async () => only().guest.readTrace().map((e) => `${JSON.stringify(e)}\n`).join(''),
  };

  return {
    vsp: vspControl,
    client,
    startCapture: async () => undefined,
    stop: () => clearInterval(timer),
  };
}
