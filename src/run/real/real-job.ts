// The real side of one job: a scenario's steps done on a Hyper-V VM, the bench's own
// events written beside the drivers' traces, and the three traces merged into the one
// the checker reads (DESIGN.md "Traces", lab/drivers/PROTOCOL.md "Control interfaces").
//
//   guest traffic and holds  -> the guest driver's control (file or tool, lab-guest.ts), over SSH
//   host traffic             -> the VSP's control tool (the device module's control), over the host shell
//   save, restore, pause, resume, checkpoint, apply, migrate -> Hyper-V operations
//   rescind, guest-close, guest-open -> the VSP's `rescind` and new offer, the guest OS's
//                              unbind and bind of the channel's device (channel-steps.ts)
//
// The bench's events (`scenario.begin`, `vm.save.begin`, ..., and a `bench.mark` right
// after a guest's send given up and at the end of each `settle` step, which cut the files
// without a VM operation) go to `bench.jsonl`. The
// drivers keep their own `seq` clocks, so each bench event carries `at: { host, guest }`:
// the last seq each driver had written when the event happened (read from the drivers'
// counters just before a VM operation starts, and just after it ends). The normaliser
// cuts the host and guest traces at those marks, so every driver event lands between
// the right two bench events. Limit: an event a driver writes between the mark being
// read and the VM actually pausing is placed after the `begin`; the checker allows a
// driver event there only if the model does, so this shows as a divergence, never hides one.
// A checkpoint applied puts the guest's older trace buffer back with its memory: the
// guest's trace is read just before each apply, and what it wrote since is kept
// (guest-trace-rewinds.ts), so the discarded future's guest events are not lost.
// The host's `ch.rescind` and `ch.offer` are the job's own doing: it writes them into the
// host's trace where the VSP was when it asked (host-inserts.ts).
//
// Written against small interfaces (JobLab) so it runs with fakes in tests; lab-run.ts
// adapts the src/lab classes (HyperV, migrate, GuestSsh + deploy-guest, runNative).

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, isBenchError } from '../../errors.ts';
import { devicePath, type ChannelSpec, type Scenario, type Step } from '../../scenario/model.ts';
import { deviceOf } from '../../device-api/load.ts';
import { fileSource, normaliseToArray, type TraceSource } from '../../trace/normalise.ts';
import type { Clock, RealOutcome } from '../engine/job-pipeline.ts';
import { stringifyWithIds } from '../../trace/json-ids.ts';
import { GuestTraceRewinds } from './guest-trace-rewinds.ts';
import { HostInserts } from './host-inserts.ts';
import { doChannelStep } from './channel-steps.ts';
import { ControlWriteAgain } from '../../lab/guest/control-write.ts';
import type { DriverCounters } from '../../device-api/device-module.ts';

/** Hyper-V operations on one host (src/lab/hyperv.ts HyperV has these). */
export interface VmOps {
  host: string;
  save(id: string): Promise<unknown>;
  start(id: string): Promise<unknown>;
  suspend(id: string): Promise<unknown>;
  resume(id: string): Promise<unknown>;
  checkpoint(id: string, name: string): Promise<void>;
  /** Returns the state the VM came back in ('Saved' for a running VM's checkpoint). */
  restoreCheckpoint(id: string, name: string): Promise<{ state: string }>;
  turnOff(id: string): Promise<unknown>;
}

/** A driver's control interface: commands, its trace seq, and its trace. */
export interface DriverControl {
  command(text: string): Promise<void>;
  /** The last seq the driver wrote (its counters). */
  traceSeq(): Promise<number>;
  readTrace(): Promise<string>;
  /**
   * Optional: what the driver still waits on, one line each (its counters' transactions
   * sent without a completion yet: outstandingOf); empty when nothing. The scenario's
   * last settle waits for both drivers' to be empty; absent, it cannot, and ends on quiet.
   * (Not yet given by the lab's own controls: a rescinded channel's transactions end
   * cancelled, not completed, and a restored VSP's counters start again, which these
   * lines must allow for before a real lab can wait on them.)
   */
  outstanding?(): Promise<string[]>;
}

/** A driver's counters as `outstanding` lines: per channel, the transactions sent that have no completion yet. */
export function outstandingOf(counters: DriverCounters): string[] {
  const out: string[] = [];
  for (const [ch, { sent, completed }] of counters.channels) {
    if (sent > completed) out.push(`ch=${ch}: ${sent - completed} of ${sent} transaction(s) sent without a completion`);
  }
  return out;
}

export interface GuestControl extends DriverControl {
  /** SSH again after the VM was saved, restored or moved (the old link is dead). */
  reconnect(): Promise<void>;
  /** The guest OS's hold on the channels' devices (the device's control.guestUnbind for its OS); absent: none */
  devices?: GuestDevices | undefined;
}

/** What the guest OS has made of a channel instance's VMBus device. */
export type GuestDeviceState = 'bound' | 'unbound' | 'absent';

/**
 * A channel instance's device in the guest OS, named by its instance GUID
 * (DeviceControl.guestUnbind): what a guest-close, a guest-open and a rescind do and wait on.
 */
export interface GuestDevices {
  /** bound to its driver (the channel open), present but unbound, or not there (rescinded) */
  state(instance: string): Promise<GuestDeviceState>;
  /** the OS takes the device from its driver: the driver's remove closes the channel */
  unbind(instance: string): Promise<void>;
  /** the OS gives the device to its driver: the driver's probe opens the channel */
  bind(instance: string): Promise<void>;
  /** new devices bind to their driver by themselves (true: the OS's default), or wait for `bind` */
  autoBind(on: boolean): Promise<void>;
}

export interface JobLab {
  vmId: string;
  /** Lab host name -> its operations. */
  hosts: Readonly<Record<string, VmOps>>;
  migrate(from: VmOps, to: VmOps, id: string): Promise<void>;
  guest: GuestControl;
  vsp: DriverControl;
  /** Opens the scenario's channels (VSP `open`, guest binding); before scenario.begin. */
  prepare(scenario: Scenario): Promise<void>;
  /** Offers a rescinded channel's new instance (the VSP's `open`, into the VM as prepare does); absent: the lab cannot */
  offer?(channel: ChannelSpec): Promise<void>;
  /**
   * The peer is never frozen (a loopback job's client in the host): its mark is read at
   * every bench event, saves and pauses included, since it may write events then.
   */
  peerStaysUp?: boolean | undefined;
  clock: Clock;
}

export interface RealJobSpec {
  scenario: Scenario;
  seed: number;
  /** Scenario host name -> lab host (plan.ts). */
  hostMap: Readonly<Record<string, string>>;
}

export interface RealJobOptions {
  /** Deadline of one VM operation; past it the VM counts as hung. */
  opTimeoutMs: number;
  /** `settle`: the drivers' seqs must stay still this long... */
  settleQuietMs: number;
  /** ...within this long, else the job is a hang. */
  settleTimeoutMs: number;
  src?: string;
}

export const DEFAULT_REAL_JOB: RealJobOptions = { opTimeoutMs: 300_000, settleQuietMs: 2_000, settleTimeoutMs: 120_000 };

class OpTimeout extends Error {}

/** Runs the scenario on the VM, collects the traces into `dir`, merges them. */
export async function runRealJob(spec: RealJobSpec, lab: JobLab, dir: string, signal: AbortSignal, options: RealJobOptions = DEFAULT_REAL_JOB): Promise<RealOutcome> {
  mkdirSync(dir, { recursive: true });
  const t0 = lab.clock.now();
  const s = spec.scenario;
  const startHost = spec.hostMap[s.host];
  if (!startHost || !lab.hosts[startHost]) return { kind: 'infra', started: false, host: undefined, message: `no lab host for scenario host ${s.host}`, evidence: {} };
  let where = startHost;
  let started = false;
  const bench = new BenchEvents(options.src ?? 'hyperv');
  const held = new Set<number>();
  const marks = async () => ({ host: await lab.vsp.traceSeq(), guest: await lab.guest.traceSeq() });
  // While the VM is saved or paused the guest writes nothing and cannot be asked: its
  // mark stays where it was, and only the host's is read again.
  const hostMarks = lab.peerStaysUp ? marks : async () => ({ host: await lab.vsp.traceSeq(), guest: bench.lastMarks.guest });
  const op = <T>(what: string, p: Promise<T>) => withDeadline(what, p, options.opTimeoutMs, lab.clock, signal);
  try {
    // scenario.begin is marked before the channels are opened: the emulator opens them
    // after it, so their state changes must land after it in the merged trace too. A
    // loopback client's device (and its trace) is made by binding to the offer: 0 before.
    const begin = { host: await lab.vsp.traceSeq(), guest: lab.peerStaysUp ? 0 : await lab.guest.traceSeq() };
    await lab.prepare(s);
    // The device's own lines before the first step (the sample's guest: `hold auto`, each
    // held host transaction completed after the time it asks for).
    for (const b of deviceOf(devicePath(s)).control?.begin ?? []) await (b.to === 'guest' ? lab.guest : lab.vsp).command(b.line);
    bench.emit({ ev: 'scenario.begin', name: s.name, seed: spec.seed }, begin);
    started = true;
    for (const step of s.steps) {
      if (signal.aborted) throw signal.reason;
      where = await doStep(step, { lab, spec, where, bench, marks, hostMarks, op, options, signal, held });
    }
    // The emulator settles at the end of every scenario (execute.ts finish): so does the
    // lab, or the last steps' deliveries would land after scenario.end. This one has no
    // next step to carry what is outstanding into (a settle step's cut does that): the
    // model ends with everything done, so the job waits, where its drivers say, for them
    // to have nothing outstanding too, not only to be quiet.
    await settle({ lab, spec, where, bench, marks, hostMarks, op, options, signal, held }, 'done');
    bench.emit({ ev: 'scenario.end', name: s.name, seed: spec.seed }, await marks());
  } catch (e) {
    if (signal.aborted) throw e;
    const evidence = await collect(lab, dir, bench, false);
    if (e instanceof OpTimeout) {
      await lab.hosts[where]!.turnOff(lab.vmId).catch(() => undefined);
      return { kind: 'hang', message: `${e.message}; the VM was turned off`, evidence, realMs: lab.clock.now() - t0, host: startHost };
    }
    const message = isBenchError(e) || e instanceof Error ? e.message : String(e);
    return { kind: 'infra', started, host: where, message, evidence };
  }
  const evidence = await collect(lab, dir, bench, true);
  const merged = evidence.trace;
  if (!merged) return { kind: 'infra', started: true, host: where, message: 'the traces could not be collected or merged', evidence };
  return { kind: 'ran', traces: [merged], evidence, realMs: lab.clock.now() - t0, host: startHost };
}

interface StepCtx {
  lab: JobLab;
  spec: RealJobSpec;
  where: string;
  bench: BenchEvents;
  marks: () => Promise<{ host: number; guest: number }>;
  hostMarks: () => Promise<{ host: number; guest: number }>;
  op: <T>(what: string, p: Promise<T>) => Promise<T>;
  options: RealJobOptions;
  signal: AbortSignal;
  /** channels whose new instance the guest holds unbound until a guest-open (channel-steps.ts) */
  held: Set<number>;
}

/** One step; returns the lab host the VM is on afterwards. */
async function doStep(step: Step, c: StepCtx): Promise<string> {
  const { lab, bench, marks, hostMarks, op } = c;
  const vm = lab.vmId;
  const ops = lab.hosts[c.where]!;
  switch (step.op) {
    case 'guest-send':
    case 'host-send':
    case 'notify': {
      // The device's own control language (its module's `control`) carries the step.
      const control = deviceOf(devicePath(c.spec.scenario)).control;
      if (!control) throw new InputError(`device ${deviceOf(devicePath(c.spec.scenario)).name} has no control interface for a real lab (its module has no "control")`, { file: c.spec.scenario.source?.file, field: 'device' });
      const cmd = control.command(step);
      try {
        await (cmd.to === 'guest' ? lab.guest : lab.vsp).command(cmd.line);
      } catch (e) {
        // A Linux guest driver whose send found the ring full for its timeout gives the
        // send up: it traces pkt.timeout, never tries the step's other packets, and its
        // control write fails with EAGAIN. That ends the step, as on the emulator
        // (c-guest-base.ts send); bench check judges the give-up from the trace. Any other
        // failure, and EAGAIN from anything but a guest's traffic line, stays an error.
        if (!(cmd.to === 'guest' && e instanceof ControlWriteAgain)) throw e;
        // The files share no clock: without a cut here the merge may put the host's later
        // reads of the ring (the ones that free the room the driver stopped waiting for)
        // before the guest's pkt.timeout, and check would call the give-up spurious. The
        // host's seq is read first, as close to the failed write as can be: a host event
        // written between the give-up and that read still lands before the give-up, which
        // shows as a divergence, never hides one.
        bench.emit({ ev: 'bench.mark' }, await marks());
      }
      break;
    }
    case 'run':
      await lab.clock.sleep(step.ms, c.signal);
      break;
    case 'settle':
      await settle(c);
      // A settle here is the drivers quiet for settleQuietMs, not everything done (a VSP
      // may hold a request far longer, and nothing a driver shows says so in general): the
      // next step's events may then race what was still outstanding, in files with no
      // shared clock. The cut says which of the drivers' events came before the next
      // step; bench check ends its model's settle there and carries the rest into the
      // next step (src/check/replay.ts, SettleCuts). A driver event written while the
      // seqs are read lands after the cut: the model only takes it later, which it may.
      bench.emit({ ev: 'bench.mark' }, await marks());
      break;
    case 'save':
      bench.emit({ ev: 'vm.save.begin' }, await marks());
      await op(`Save-VM on ${ops.host}`, ops.save(vm));
      bench.emit({ ev: 'vm.save.end' }, await hostMarks());
      break;
    case 'rescind':
    case 'guest-open':
    case 'guest-close': {
      // The VSP's rescind and new offer, the guest OS's unbind and bind (channel-steps.ts);
      // which a device and guest can run is planned (src/lab/vm-steps.ts).
      const d = deviceOf(devicePath(c.spec.scenario));
      if (!d.control) throw new InputError(`device ${d.name} has no control interface for a real lab (its module has no "control")`, { file: c.spec.scenario.source?.file, field: 'device' });
      await doChannelStep(step, {
        lab, scenario: c.spec.scenario, control: d.control, inserts: bench.hostInserts, clock: lab.clock, signal: c.signal,
        timeoutMs: c.options.opTimeoutMs, hang: (m) => new OpTimeout(m), held: c.held,
      });
      break;
    }
    case 'restore':
      if (step.fail) throw new InputError('"restore" with "fail" runs on the emulator only: a real VSP cannot be told to refuse its saved state');
      bench.emit({ ev: 'vm.restore.begin' }, await hostMarks());
      await op(`Start-VM (restore) on ${ops.host}`, ops.start(vm));
      await op('reconnecting to the guest', lab.guest.reconnect());
      bench.emit({ ev: 'vm.restore.end' }, await marks());
      break;
    case 'pause':
      bench.emit({ ev: 'vm.pause' }, await marks());
      await op(`Suspend-VM on ${ops.host}`, ops.suspend(vm));
      break;
    case 'resume':
      await op(`Resume-VM on ${ops.host}`, ops.resume(vm));
      bench.emit({ ev: 'vm.resume' }, await hostMarks());
      break;
    case 'checkpoint':
      bench.emit({ ev: 'vm.checkpoint.begin', name: step.name }, await marks());
      await op(`Checkpoint-VM on ${ops.host}`, ops.checkpoint(vm, step.name));
      bench.emit({ ev: 'vm.checkpoint.end', name: step.name }, await marks());
      break;
    case 'apply-checkpoint': {
      const at = await marks();
      bench.emit({ ev: 'vm.checkpoint.apply.begin', name: step.name }, at);
      // A guest that keeps its trace in its memory gets the older buffer back with the
      // checkpoint: what it wrote since is kept from a read now (guest-trace-rewinds.ts),
      // if its seq did go back. A VM that is not running cannot be read: nothing to keep.
      const trace = await lab.guest.readTrace().catch(() => null);
      const back = await op(`Restore-VMSnapshot on ${ops.host}`, ops.restoreCheckpoint(vm, step.name));
      if (back.state !== 'Running') await op(`Start-VM after applying ${step.name}`, ops.start(vm));
      await op('reconnecting to the guest', lab.guest.reconnect());
      const after = await marks();
      if (trace !== null && after.guest < at.guest) {
        bench.rewinds.before(trace, at.guest);
        bench.rewinds.after(after.guest);
      }
      bench.emit({ ev: 'vm.checkpoint.apply.end', name: step.name }, after);
      break;
    }
    case 'migrate': {
      const to = c.spec.hostMap[step.to];
      const dst = to ? lab.hosts[to] : undefined;
      if (!to || !dst) throw new Error(`scenario host ${step.to} has no lab host in this job`);
      const from = Object.entries(c.spec.hostMap).find(([, h]) => h === c.where)?.[0] ?? c.where;
      bench.emit({ ev: 'vm.migrate.begin', from, to: step.to }, await marks());
      await op(`Move-VM ${ops.host} -> ${dst.host}`, lab.migrate(ops, dst, vm));
      await op('reconnecting to the guest', lab.guest.reconnect());
      bench.emit({ ev: 'vm.migrate.end', from, to: step.to }, await marks());
      return to;
    }
  }
  return c.where;
}

/**
 * Waits until neither driver writes for settleQuietMs ('quiet'), and with 'done' also until
 * neither says it waits on anything (DriverControl.outstanding, where it can say); a run
 * that never gets there within settleTimeoutMs is a hang, named by what was outstanding.
 */
async function settle(c: StepCtx, until: 'quiet' | 'done' = 'quiet'): Promise<void> {
  const { lab, options } = c;
  const deadline = lab.clock.now() + options.settleTimeoutMs;
  const outstanding = async (): Promise<string[]> => until === 'quiet' ? [] : [
    ...(await lab.vsp.outstanding?.() ?? []).map((l) => `host ${l}`),
    ...(await lab.guest.outstanding?.() ?? []).map((l) => `guest ${l}`),
  ];
  let last = await c.marks();
  let quietSince = lab.clock.now();
  let waiting = await outstanding();
  while (lab.clock.now() - quietSince < options.settleQuietMs || waiting.length > 0) {
    if (lab.clock.now() >= deadline) {
      throw new OpTimeout(waiting.length > 0
        ? `the drivers still had work outstanding ${options.settleTimeoutMs} ms into the scenario's last settle: ${waiting.join('; ')}`
        : `the drivers were still writing ${options.settleTimeoutMs} ms into settle`);
    }
    await lab.clock.sleep(Math.max(1, Math.min(500, options.settleQuietMs)), c.signal);
    const now = await c.marks();
    if (now.host !== last.host || now.guest !== last.guest) { last = now; quietSince = lab.clock.now(); }
    waiting = await outstanding();
  }
}

/** The bench's own events, stamped with their own seq and the drivers' marks. */
class BenchEvents {
  readonly lines: string[] = [];
  /** the drivers' marks as read (the guest's raw, before any rewind shift) */
  lastMarks: { host: number; guest: number } = { host: 0, guest: 0 };
  /** the guest's trace across checkpoint applies: its marks are written on the stitched numbering */
  readonly rewinds = new GuestTraceRewinds();
  /** the host's ch.rescind and ch.offer, which the job writes into the host's trace: its marks are written on that numbering */
  readonly hostInserts: HostInserts;
  private seq = 0;
  private readonly src: string;
  constructor(src: string) {
    this.src = src;
    this.hostInserts = new HostInserts(src);
  }
  emit(body: Record<string, unknown>, at: { host: number; guest: number }): void {
    this.lastMarks = at;
    const marks = { host: this.hostInserts.shift(at.host), guest: this.rewinds.shift(at.guest) };
    this.lines.push(JSON.stringify({ v: 1, seq: ++this.seq, src: this.src, side: 'bench', ...body, at: marks }));
  }
}

/** Stores the three traces and, when all are there, the merged one. */
async function collect(lab: JobLab, dir: string, bench: BenchEvents, merge: boolean): Promise<{ trace?: string; hostTrace?: string; guestTrace?: string; artefacts?: string[] }> {
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(`${path}.partial`, text);
    renameSync(`${path}.partial`, path);
    return path;
  };
  const benchTrace = write('bench.jsonl', bench.lines.map((l) => `${l}\n`).join(''));
  const hostTrace = await lab.vsp.readTrace().then((t) => write('host.trace.jsonl', bench.hostInserts.stitch(t)), () => undefined);
  const guestTrace = await lab.guest.readTrace().then((t) => write('guest.trace.jsonl', bench.rewinds.stitch(t)), () => undefined);
  const out = { hostTrace, guestTrace, artefacts: [benchTrace] };
  if (!merge || !hostTrace || !guestTrace) return out;
  return { ...out, trace: await mergeTraces(benchTrace, hostTrace, guestTrace, join(dir, 'trace.jsonl')) };
}

/** bench.jsonl + host + guest -> one trace in schema order (seq renumbered), for the checker. */
export async function mergeTraces(benchFile: string, hostFile: string, guestFile: string, out: string): Promise<string> {
  const ids = { ch: 'auto', tx: 'auto' } as const;
  const sources: TraceSource[] = [
    fileSource(benchFile, { ids }).source,
    fileSource(hostFile, { ids, align: { markKey: 'host' }, acceptTruncated: true }).source,
    fileSource(guestFile, { ids, align: { markKey: 'guest' }, acceptTruncated: true }).source,
  ];
  const events = await normaliseToArray(sources);
  const text = events.map((n, i) => {
    const { at: _at, ...e } = n.event as unknown as Record<string, unknown>;
    return `${stringifyWithIds({ ...e, seq: i + 1 })}\n`;
  }).join('');
  writeFileSync(`${out}.partial`, text);
  renameSync(`${out}.partial`, out);
  return out;
}

function withDeadline<T>(what: string, p: Promise<T>, ms: number, clock: Clock, signal: AbortSignal): Promise<T> {
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const timeout = clock.sleep(ms, stop.signal).then(
    () => { throw new OpTimeout(`${what} did not finish within ${Math.round(ms / 1000)} s`); },
    () => new Promise<never>(() => {}),
  );
  return Promise.race([p, timeout]).finally(() => {
    stop.abort();
    signal.removeEventListener('abort', onAbort);
  });
}
