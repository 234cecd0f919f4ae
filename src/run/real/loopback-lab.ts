// A loopback job's lab (src/lab/attach.ts): the VSP offers each scenario channel as a
// loopback offer, and the Windows client driver, loaded in the host on the offer's device
// interface, is its peer. No VM: real-job.ts runs the scenario unchanged, and the "VM"
// operations it asks for become the VSP's channel-level commands (PROTOCOL.md, "Control
// interfaces"):
//
//   save                  save ch=N, detach ch=N          (pause, SaveBegin/Continue/End; the server
//                                                          object goes, as a saved VM's host side does)
//   restore (Start-VM)    restore ch=N, then resume ch=N  (a new server channel from the save for every
//                                                          channel, then each offered and started)
//   checkpoint            save ch=N, resume ch=N          (save and continue on the same server channel)
//   pause (Suspend-VM)    pause ch=N                      (the server channels only; no save)
//   resume (Resume-VM)    resume ch=N                     (start them again)
//   turn off (a hang)     close ch=N                      (disable and clean up)
//
// The client is never paused or saved: it runs on, and its counters are read at every
// bench event (peerStaysUp). Checkpoint apply and migration never reach here: the plan
// marks such jobs not applicable (attach.ts). The client's trace is the `guest` side of
// the merged trace, as a VM's guest driver's is, and the emulator runs the same topology
// (scenario topology loopback, src/scenario/execute.ts) to check it against.
//
// Both drivers are driven through sample-ctl.exe over the host shell; the VSP's trace is
// ETW (logman), the client's is read with `sample-ctl guest trace FILE`.

import { InfraError } from '../../errors.ts';
import { readHostFile } from '../../lab/artefacts.ts';
import { runNative } from '../../lab/deploy-vsp.ts';
import type { HyperV } from '../../lab/hyperv.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import type { DriverControl, GuestControl, JobLab, VmOps } from './real-job.ts';

export const VSP_PROVIDER = '{dd84f5b2-2614-4623-b28a-6b85d3a4202c}';
const BIND_TIMEOUT_MS = 30_000;

/** The channel's instance GUID ends in its number (PROTOCOL.md "Channel numbers"). */
export function channelInstance(ch: number): string {
  return `8d2f5c3a-71b4-4e0e-9a6d-${ch.toString(16).padStart(12, '0')}`;
}

export interface LoopbackLabOptions {
  hv: HyperV;
  host: string;
  sampleCtl: string;
  /** A folder on the host for this job's capture and traces. */
  workDir: string;
  /** ETW session name, unique on the host. */
  session: string;
  clock: Clock;
  /** The VSP package's TraceLogging provider (its trace.provider); default the sample's. */
  vspProvider?: string;
}

/** A driver's control over sample-ctl: `sample-ctl <who> command|counters|trace`. */
export function sampleCtlControl(o: LoopbackLabOptions, who: 'vsp' | 'guest', readTrace: () => Promise<string>): DriverControl {
  const ctl = (args: string[]) => runSampleCtl(o, args);
  return {
    command: async (text) => { await ctl([who, 'command', text]); },
    traceSeq: async () => {
      const m = /trace_seq=(\d+)/.exec((await ctl([who, 'counters'])).join('\n'));
      if (!m) throw new InfraError(`sample-ctl ${who} counters printed no trace_seq`, { host: o.host });
      return Number(m[1]);
    },
    readTrace,
  };
}

export async function runSampleCtl(o: Pick<LoopbackLabOptions, 'hv' | 'host' | 'sampleCtl'>, args: string[]): Promise<string[]> {
  const x = await runNative(o.hv, o.sampleCtl, args);
  if (x.exitCode !== 0) throw new InfraError(`sample-ctl ${args.join(' ')} exited with ${x.exitCode}: ${x.output.slice(-2).join(' ')}`, { host: o.host });
  return x.output;
}

/** The two drivers of a loopback job and the VSP's trace capture. */
export interface LoopbackDrivers {
  vsp: DriverControl;
  /** The Windows client driver in the host: the `guest` side of the trace. */
  client: DriverControl;
  /** Starts the VSP's trace capture; before the first channel is opened. */
  startCapture(): Promise<void>;
}

/** The drivers through sample-ctl.exe and logman on the host. */
export function sampleCtlDrivers(o: LoopbackLabOptions): LoopbackDrivers {
  const etl = `${o.workDir}\\vsp.etl`;
  const hostJsonl = `${etl}.jsonl`;
  const clientJsonl = `${o.workDir}\\client.jsonl`;
  const readFile = async (path: string, what: string) => {
    const data = await readHostFile(o.hv, path);
    if (!data) throw new InfraError(`the ${what} trace ${path} is missing`, { host: o.host });
    return data.toString('utf8');
  };
  return {
    vsp: sampleCtlControl(o, 'vsp', async () => {
      await runNative(o.hv, 'logman', ['stop', o.session, '-ets']);
      await runSampleCtl(o, ['etl2jsonl', etl, hostJsonl]);
      return readFile(hostJsonl, 'VSP');
    }),
    client: sampleCtlControl(o, 'guest', async () => {
      await runSampleCtl(o, ['guest', 'trace', clientJsonl]);
      return readFile(clientJsonl, 'client');
    }),
    startCapture: async () => {
      const started = await runNative(o.hv, 'logman', ['start', o.session, '-p', o.vspProvider ?? VSP_PROVIDER, '-o', etl, '-ets']);
      if (started.exitCode !== 0) throw new InfraError(`logman start ${o.session} exited with ${started.exitCode}: ${started.output.slice(-2).join(' ')}`, { host: o.host });
    },
  };
}

export function loopbackJobLab(o: Pick<LoopbackLabOptions, 'host' | 'clock'>, d: LoopbackDrivers): JobLab {
  const { vsp } = d;
  // The client is in the host and stays open across every channel operation.
  const client: GuestControl = { ...d.client, reconnect: async () => undefined };
  let channels: number[] = [];
  const each = async (...verbs: string[]) => {
    for (const ch of channels) for (const v of verbs) await vsp.command(`${v} ch=${ch}`);
  };
  const notHere = (what: string) => async (): Promise<never> => {
    throw new InfraError(`${what} is not applicable to a loopback job (the plan should have skipped it)`, { host: o.host });
  };
  const ops: VmOps = {
    host: o.host,
    // Detached at the save, as the emulator's topology gives up the server objects there
    // (its trace has their Disabled there too); the client stays open throughout.
    save: () => each('save', 'detach'),
    // The VSP's restore makes the new object and its resume offers it (vsp-save.c): every
    // channel restored before any is offered, as the emulator restores a VM's channels.
    start: async () => {
      await each('restore');
      await each('resume');
    },
    checkpoint: () => each('save', 'resume'),
    turnOff: () => each('close'),
    suspend: () => each('pause'),
    resume: () => each('resume'),
    restoreCheckpoint: notHere('apply-checkpoint'),
  };
  return {
    vmId: 'loopback',
    hosts: { [o.host]: ops },
    migrate: notHere('migrate'),
    guest: client,
    vsp,
    peerStaysUp: true,
    prepare: async (s: Scenario) => {
      channels = s.channels.map((c) => c.id);
      await d.startCapture();
      for (const c of s.channels) await vsp.command(`open ${c.id} ${channelInstance(c.id)} loopback ring-pages=${c.h2gPages}`);
      // The client binds through PnP, after the offer: until then it has no counters.
      const until = o.clock.now() + BIND_TIMEOUT_MS;
      for (;;) {
        try {
          await client.traceSeq();
          break;
        } catch (e) {
          if (o.clock.now() >= until) throw new InfraError(`the client driver did not bind to the loopback offer within ${BIND_TIMEOUT_MS / 1000} s (run bench lab probe): ${(e as Error).message}`, { host: o.host });
          await o.clock.sleep(500);
        }
      }
    },
    clock: o.clock,
  };
}
