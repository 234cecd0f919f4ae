// A JobLab whose drivers "run" a scenario by handing out an emulator trace of it. Each
// bench event real-job writes reads the host's mark exactly once, so the k-th read answers
// with the driver events before the emulator's k-th bench event; the guest's mark is the
// same point. Hyper-V operations are whatever `hosts` does: recorded fakes, or the real
// src/lab classes on the stand-in.
import { loadScenarioFile } from '../../../../src/scenario/loader.ts';
import { executeScenario } from '../../../../src/scenario/execute.ts';
import type { Scenario } from '../../../../src/scenario/model.ts';
import { MemorySink } from '../../../../src/trace/sink.ts';
import type { TraceEvent } from '../../../../src/trace/schema.ts';
import type { Clock } from '../../../../src/run/engine/job-pipeline.ts';
import type { JobLab, VmOps } from '../../../../src/run/real/real-job.ts';
import type { LoopbackDrivers } from '../../../../src/run/real/loopback-lab.ts';

export async function emulate(file: string, seed = 1, topology: Scenario['topology'] = 'vm'): Promise<{ scenario: Scenario; events: TraceEvent[] }> {
  const scenario = { ...(await loadScenarioFile(file)), topology };
  const sink = new MemorySink();
  executeScenario(scenario, { seed, sink });
  return { scenario, events: sink.events };
}

export function recordingOps(host: string, log: string[]): VmOps {
  return {
    host,
    save: async (id) => log.push(`${host} save ${id}`),
    start: async (id) => log.push(`${host} start ${id}`),
    suspend: async (id) => log.push(`${host} suspend ${id}`),
    resume: async (id) => log.push(`${host} resume ${id}`),
    checkpoint: async (id, n) => { log.push(`${host} checkpoint ${id} ${n}`); },
    restoreCheckpoint: async (id, n) => { log.push(`${host} apply ${id} ${n}`); return { state: 'Saved' }; },
    turnOff: async (id) => log.push(`${host} turn-off ${id}`),
  };
}

export interface EmulatorLabOptions {
  vmId: string;
  hosts: Record<string, VmOps>;
  migrate: JobLab['migrate'];
  clock: Clock;
  log: string[];
}

export function emulatorBackedLab(events: TraceEvent[], o: EmulatorLabOptions): JobLab {
  const bench = events.filter((e) => e.side === 'bench');
  const idx = bench.map((b) => events.indexOf(b));
  let k = -1;
  const count = (side: string) => events.slice(0, idx[Math.max(0, k)] ?? events.length).filter((e) => e.side === side).length;
  const fileOf = (side: 'host' | 'guest') => events.filter((e) => e.side === side).map((e, i) => `${JSON.stringify({ ...e, seq: i + 1 })}\n`).join('');
  return {
    vmId: o.vmId,
    hosts: o.hosts,
    migrate: o.migrate,
    guest: {
      command: async (t) => { o.log.push(`guest: ${t}`); },
      traceSeq: async () => count('guest'),
      readTrace: async () => fileOf('guest'),
      reconnect: async () => { o.log.push('guest reconnect'); },
    },
    vsp: {
      command: async (t) => { o.log.push(`vsp: ${t}`); },
      traceSeq: async () => { k++; return count('host'); },
      readTrace: async () => fileOf('host'),
    },
    prepare: async (s) => { o.log.push(`prepare ${s.channels.length} channel(s)`); },
    clock: o.clock,
  };
}

/**
 * A loopback job's drivers over an emulator trace (of the loopback topology, for a
 * faithful one), as emulatorBackedLab's: the VSP's k-th
 * counter read answers with the host events before the emulator's k-th bench event, the
 * client's with the guest events there. Commands are recorded, not acted on.
 */
export function emulatorLoopbackDrivers(events: TraceEvent[], log: string[]): LoopbackDrivers {
  const lab = emulatorBackedLab(events, { vmId: 'loopback', hosts: {}, migrate: async () => undefined, clock: { now: () => 0, sleep: async () => undefined }, log });
  return {
    vsp: lab.vsp,
    client: { command: async (t) => { log.push(`client: ${t}`); }, traceSeq: lab.guest.traceSeq, readTrace: lab.guest.readTrace },
    startCapture: async () => { log.push('capture'); },
  };
}
