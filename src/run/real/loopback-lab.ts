// A loopback job's lab (src/lab/attach.ts): the VSP offers each scenario channel as a
// loopback offer, and the Windows client driver, loaded in the host on the offer's device
// interface, is its peer. No VM: real-job.ts runs the scenario unchanged, and the "VM"
// operations it asks for become the VSP's channel-level commands (PROTOCOL.md, "Control
// interfaces"), the device module's ChannelOp:
//
//   save                  save, detach          (pause, SaveBegin/Continue/End; the server
//                                                object goes, as a saved VM's host side does)
//   restore (Start-VM)    restore, then resume  (a new server channel from the save for every
//                                                channel, then each offered and started)
//   checkpoint            save, resume          (save and continue on the same server channel)
//   pause (Suspend-VM)    pause                 (the server channels only; no save)
//   resume (Resume-VM)    resume                (start them again)
//   turn off (a hang)     close                 (disable and clean up)
//
// The client is never paused or saved: it runs on, and its counters are read at every
// bench event (peerStaysUp). Checkpoint apply and migration never reach here: the plan
// marks such jobs not applicable (attach.ts). The client's trace is the `guest` side of
// the merged trace, as a VM's guest driver's is, and the emulator runs the same topology
// (scenario topology loopback, src/scenario/execute.ts) to check it against.
//
// Both drivers are driven through the device's control tool over the host shell (the
// device module's `control.tool`, devices/sample/control.ts for the sample); the VSP's
// trace is ETW (logman, the VSP package's provider) converted by the tool, the client's
// is the tool's `trace` verb.

import type { ToolControl, ToolVerb } from '../../device-api/device-module.ts';
import { InfraError } from '../../errors.ts';
import { readHostFile } from '../../lab/artefacts.ts';
import { runNative } from '../../lab/deploy-vsp.ts';
import { assign, ps } from '../../lab/host-shell/command.ts';
import { expectOk } from '../../lab/host-shell/errors.ts';
import { cmd } from '../../lab/hyperv-vm.ts';
import { loadHostDrivers } from '../../lab/driver-package.ts';
import type { LabHost } from '../../lab/inventory.ts';
import type { HyperV } from '../../lab/hyperv.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { Clock } from '../engine/job-pipeline.ts';
import type { DriverControl, GuestControl, JobLab, VmOps } from './real-job.ts';

const BIND_TIMEOUT_MS = 30_000;

/** The device's control tool on one host: the module's control and where the program is. */
export interface HostTool {
  hv: HyperV;
  host: string;
  control: ToolControl;
  /** The tool's path on the host: the module's `control.tool.program` unless the lab overrides it. */
  program: string;
}

export interface LoopbackLabOptions extends HostTool {
  /** A folder on the host for this job's capture and traces. */
  workDir: string;
  /** ETW session name, unique on the host. */
  session: string;
  clock: Clock;
  /** The VSP package's TraceLogging provider (its trace.provider). */
  vspProvider: string;
}

/** A driver's control over the tool: its `command` and `counters` verbs, and its trace. */
export function toolControl(o: HostTool, who: 'vsp' | 'guest', readTrace: () => Promise<string>): DriverControl {
  return {
    command: async (text) => { await runTool(o, { verb: 'command', who, line: text }); },
    traceSeq: async () => {
      const seq = o.control.counters(who, await runTool(o, { verb: 'counters', who })).traceSeq;
      if (seq === undefined) throw new InfraError(`${o.program} ${who} counters printed no trace seq`, { host: o.host });
      return seq;
    },
    readTrace,
  };
}

/** Runs one verb of the control tool on the host; a non-zero exit is an InfraError with its last lines. */
export async function runTool(o: HostTool, verb: ToolVerb): Promise<string[]> {
  const args = o.control.tool.args(verb);
  const x = await runNative(o.hv, o.program, args);
  if (x.exitCode !== 0) throw new InfraError(`${o.program} ${args.join(' ')} exited with ${x.exitCode}: ${x.output.slice(-2).join(' ')}`, { host: o.host });
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

/** The VSP through the tool, its trace an ETW capture (logman) the tool converts. */
export function toolVsp(o: LoopbackLabOptions): { vsp: DriverControl; startCapture(): Promise<void> } {
  const etl = `${o.workDir}\\vsp.etl`;
  const jsonl = `${etl}.jsonl`;
  return {
    vsp: toolControl(o, 'vsp', async () => {
      await runNative(o.hv, 'logman', ['stop', o.session, '-ets']);
      await runTool(o, { verb: 'convert-etl', etl, jsonl });
      return readTraceFile(o, jsonl, 'VSP');
    }),
    startCapture: async () => {
      const started = await runNative(o.hv, 'logman', ['start', o.session, '-p', o.vspProvider, '-o', etl, '-ets']);
      if (started.exitCode !== 0) throw new InfraError(`logman start ${o.session} exited with ${started.exitCode}: ${started.output.slice(-2).join(' ')}`, { host: o.host });
    },
  };
}

/**
 * Creates a job's work folder on the host. A VM job's folder is the VM's own (New-VM made
 * it); a loopback job of the probe has none until this: logman's capture and the tool's
 * trace files are opened in it, and CreateFile does not create missing folders.
 */
export async function makeWorkDir(hv: HyperV, workDir: string): Promise<void> {
  expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [assign('workDir', ps('New-Item', { ItemType: 'Directory', Force: true, Path: workDir }))]), { timeoutMs: hv.ctx.queryTimeoutMs }));
}

/** The drivers through the device's control tool and logman on the host. */
export function toolDrivers(o: LoopbackLabOptions): LoopbackDrivers {
  const clientJsonl = `${o.workDir}\\client.jsonl`;
  return {
    ...toolVsp(o),
    client: toolControl(o, 'guest', async () => {
      await runTool(o, { verb: 'trace', who: 'guest', file: clientJsonl });
      return readTraceFile(o, clientJsonl, 'client');
    }),
  };
}

async function readTraceFile(o: HostTool, path: string, what: string): Promise<string> {
  const data = await readHostFile(o.hv, path);
  if (!data) throw new InfraError(`the ${what} trace ${path} is missing`, { host: o.host });
  return data.toString('utf8');
}

export function loopbackJobLab(o: Pick<LoopbackLabOptions, 'host' | 'clock' | 'control'>, d: LoopbackDrivers): JobLab {
  const { vsp } = d;
  const { control } = o;
  // The client is in the host and stays open across every channel operation.
  const client: GuestControl = { ...d.client, reconnect: async () => undefined };
  let channels: number[] = [];
  const each = async (...ops: Array<'save' | 'detach' | 'restore' | 'resume' | 'pause' | 'close'>) => {
    for (const ch of channels) for (const op of ops) await vsp.command(control.channel({ op, ch }));
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
      for (const c of s.channels) await vsp.command(control.channel({ op: 'open', ch: c.id, instance: control.channelInstance(c.id), ringPages: c.h2gPages, loopback: true }));
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

/** The TraceLogging provider of the host's VSP package: the bench captures it with logman. */
export function vspProvider(host: Pick<LabHost, 'name' | 'drivers'>): string {
  const trace = (host.drivers ?? loadHostDrivers()).vsp.trace;
  if (trace.format !== 'etw') {
    throw new InfraError(`${host.name}: the VSP package's trace is ${trace.format}, but a lab job captures the VSP's trace with ETW (trace.format: etw, trace.provider)`, { host: host.name });
  }
  return trace.provider;
}
