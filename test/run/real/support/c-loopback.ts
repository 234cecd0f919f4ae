// A loopback job's drivers as the real C code: the sample VSP and the Windows client driver
// (lab/drivers), compiled to WebAssembly, in one partition, as a loopback offer puts them
// in one host. The bench drives them through their own control interfaces exactly as it
// drives them over the control tool (sample-ctl) on a host: the VSP's `open ... loopback`, `transact`, `save`,
// `detach`, `restore` + `resume`, `pause`, `resume`; its counters (trace_seq first) mark the bench's
// events; the client's counters and trace are read with its IOCTLs.
//
// What stands in for the host: the rings (client memory, kept across the server's save and
// restore), PnP binding the client's channel to the offer, and time (a virtual clock that
// real-job's sleeps advance, firing both drivers' timers). Deliveries happen only as time
// passes (a sleep), never inside a command: one legal timing of a real host (its interrupts
// late), and the one the emulator's steps take, where a step's sends all go out before the
// scheduler delivers anything. One channel: the client driver
// has one channel per device, and a second client would need a trace clock of its own.
// A reserved VSP seq never written (a failed send) leaves a gap in trace_seq that the
// trace file, numbered in the order events were written, does not have.
import { CGuestWindows } from '../../../../devices/sample/c/guest-windows.ts';
import { CVsp } from '../../../../devices/sample/c/vsp.ts';
import type { Clock } from '../../../../src/run/engine/job-pipeline.ts';
import type { LoopbackDrivers } from '../../../../src/run/real/loopback-lab.ts';
import { channelInstance } from '../../../../devices/sample/control.ts';
import type { Scenario } from '../../../../src/scenario/model.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import type { Channel } from '../../../../src/vmbus/channel.ts';
import { DEFAULT_CHOICES } from '../../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../../src/vmbus/partition.ts';
import { stepSide } from '../../../vmbus/support/channel-pair.ts';
import { traceJsonl, virtualClock } from './virtual-time.ts';

export interface CLoopback {
  drivers: LoopbackDrivers;
  clock: Clock;
  /** every command sent, in order */
  log: string[];
}

export function cLoopbackDrivers(s: Scenario): CLoopback {
  if (s.channels.length !== 1) throw new Error(`the C loopback partition runs one channel; ${s.name} has ${s.channels.length}`);
  const spec = s.channels[0]!;
  const ch = spec.id;
  const t = { now: 0 };
  const choices = { ...DEFAULT_CHOICES };
  const vspSink = new MemorySink();
  const mem = new GuestMemory([{ ch, g2hPages: spec.g2hPages, h2gPages: spec.h2gPages }]);
  const vsp = new CVsp({ choices, sink: vspSink, now: () => t.now });
  const unbound: Channel[] = [];
  const client = new CGuestWindows({ choices, sink: new MemorySink(), now: () => t.now, onEnabled: (c) => unbound.push(c) });
  let clientCh: Channel | null = null;
  let server: Channel | null = null;
  const log: string[] = [];

  /** Connects the server object the VSP offers now to the client's rings (PnP binds the client once). */
  const connect = (restored: boolean): void => {
    const offered = vsp.offered(ch);
    if (!offered || offered === server) return;
    if (!clientCh) {
      clientCh = unbound.shift() ?? null;
      if (!clientCh) throw new Error('the client driver enabled no channel to bind');
      clientCh.config.interfaceInstance = channelInstance(ch);
    }
    const c = clientCh;
    server = offered;
    // The C VSP sets no transaction quota: the bench applies the scenario's to the channel,
    // as the emulator's devices: c host does (devices/sample/c/host-vsp.ts).
    if (spec.quota) server.setTransactionQuota(spec.quota);
    server.signalPeer = (w) => (w === 'interrupt' ? (c.interrupt = true) : (c.writable = true));
    c.signalPeer = (w) => {
      if (!server) return;
      if (w === 'interrupt') server.interrupt = true;
      else server.writable = true;
    };
    const hr = mem.hostRings(ch);
    server.connectionOpened(hr.out, hr.in, { restored });
    if (!restored) {
      const gr = mem.guestRings(ch);
      c.connectionOpened(gr.out, gr.in, { restored: false });
    }
  };
  const pump = (): void => {
    for (let n = 0; ; n++) {
      if (n > 1_000_000) throw new Error('the C loopback partition did not settle');
      const live = server !== null && vsp.offered(ch) === server ? server : null;
      if (!((live !== null && stepSide(live)) || (clientCh !== null && stepSide(clientCh)) || vsp.runWorkItems() > 0 || client.runWorkItems() > 0)) return;
    }
  };
  const seqOf = (rows: Array<Record<string, number>>) => {
    const seq = rows.find((r) => r.trace_seq !== undefined)?.trace_seq;
    if (seq === undefined) throw new Error('the counters have no trace_seq');
    return seq;
  };
  const drivers: LoopbackDrivers = {
    vsp: {
      command: async (text) => {
        log.push(`vsp: ${text}`);
        vsp.run(text);
        // open offers; after a restore, resume offers the new object (vsp-save.c).
        connect(server !== null);
      },
      traceSeq: async () => seqOf(vsp.counters()),
      readTrace: async () => traceJsonl(vspSink.events as unknown as Array<Record<string, unknown>>),
    },
    client: {
      command: async (text) => {
        log.push(`client: ${text}`);
        client.run(text);
      },
      traceSeq: async () => seqOf(client.counters()),
      readTrace: async () => traceJsonl(client.readTrace()),
    },
    startCapture: async () => { log.push('capture'); },
  };
  const clock = virtualClock(t, {
    pump,
    dues: () => [vsp.nextTimerDue(), client.nextTimerDue()],
    fire: (now) => {
      vsp.runTimers(now);
      client.runTimers(now);
    },
  });
  return { drivers, clock, log };
}
