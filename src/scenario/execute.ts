// Runs a scenario on the emulator: the executable specification of what a lab run does.
//
// One VM (guest memory + the guest driver) and the host it currently runs on (VSPs +
// KMCL server channels). Between scenario steps, a scheduler runs the work both sides
// could do (a delivery on either side, a library queue flush, a due hold) one item at a
// time, the order chosen by the seeded schedule. Each item is a save point: `bench
// explore` injects a VM operation before any of them.
//
// VM operations follow what Hyper-V does: save = pause every channel, SaveBegin /
// SaveContinue / SaveEnd, copy guest memory, throw the host objects away; restore =
// new host objects from the blob over the same guest memory. Migration is save on one
// host, restore on another; checkpoint apply restores an older blob, guest included.
// Taking a checkpoint saves and goes on: the same host objects start again, or (the
// runningCheckpoint choice `pulse`) the save is restored at once onto new ones.
//
// Topology loopback (scenario.topology, a lab's loopback job): the client is a KMCL client
// in the host beside the VSP, not a guest in a VM, so nothing of it is ever frozen or
// saved. Its rings are host memory it allocated, and they stay. Save = pause and save
// every server channel and give up the server objects (the VSP's `save`, then the
// `detach` its `restore` does first); restore = new server channels from the saved state
// over the same rings and the same running client (`restore`); a checkpoint is a save and
// continue on the same server channels (`save`, `resume`), whatever runningCheckpoint says
// of a VM's; pause and resume pause and start the server channels only (`pause`, `resume`).
// Meanwhile the client goes on: it reads what is in its ring, completes what it holds and
// writes its completions, and the restored server finds them there. What has no loopback
// form (migration, checkpoint apply, a host send into paused channels) is refused
// (loopback.ts; lab/attach.ts plans such jobs as not applicable by the same rule).
// The client is the guest twin (the device module's guest driver twin), whose protocol is the client's.
//
// The Execution class is above 400 lines on purpose: the scheduler, the scenario steps,
// the VM operations and the replay hooks all act on one run's state (clock, guest
// memory, guest, current host, schedule); the types live in execute-types.ts.

import { toTxId, txAdd, type TxId } from '../vmbus/tx-id.ts';
import { EmulatedHost, type HostVsp } from './host.ts';
import { DriverViolation } from '../devices/wasm/violations.ts';
import { InputError } from '../errors.ts';
import type { Scenario, Step } from './model.ts';
import { cGuestOf, devicePath, usesCDrivers } from './devices-mode.ts';
import { DeviceError, type EmulatorDevice, type EmulatorGuest, type GuestDriver } from '../device-api/device-module.ts';
import { deviceOf } from '../device-api/load.ts';
import { GuestMemory } from '../vmbus/partition.ts';
import { Schedule } from '../vmbus/schedule.ts';
import { resolveChoices, type GapChoices } from '../vmbus/choices.ts';
import { decodeSavedVm, encodeSavedVm, RestoreError, sealSavedVm, type SavedVmV1 } from '../vmbus/saved-state.ts';
import { IncomingRing, type OutgoingRing, type PacketView, type RingMemory } from '../vmbus/ring.ts';
import type { TraceSink } from '../trace/sink.ts';
import { Faults, type FaultMode } from '../vmbus/faults.ts';
import type {
  Chooser,
  ExecuteOptions,
  ExecuteResult,
  InjectedOp,
  MigrationHandoff,
  RefusedRestore,
  ReplayModel,
  SavePoint,
  Segment,
  TaskOption,
} from './execute-types.ts';
import type { StateKey } from './state-key.ts';
import { runKey, type RunParts } from './run-key.ts';
import { loopbackStepProblem } from './loopback.ts';

export type * from './execute-types.ts';
import { ControlWord, PacketType } from '../vmbus/ring-layout.ts';
import { SERVER_INIT_FLAG_FORCE_NEW_CHANNEL } from '../vmbus/channel-types.ts';
import type { Channel } from '../vmbus/channel.ts';
import { STATUS } from '../vmbus/status.ts';

type VmState = 'running' | 'paused' | 'saved';

/** The checkpoint an explored checkpoint-apply takes and applies at once. */
const EXPLORE_CHECKPOINT = 'explore';

/** The steps whose first event is the bench's (a VM operation's): nothing of the drivers' comes before it. */
const STARTS_WITH_BENCH_EVENT: ReadonlySet<Step['op']> = new Set(['save', 'restore', 'pause', 'resume', 'checkpoint', 'apply-checkpoint', 'migrate']);

// Task kinds, packed with the channel index into one number (no allocation per step).
const HOST_DELIVER = 0;
const HOST_FLUSH = 1;
const HOST_TIMER = 2;
const GUEST_DELIVER = 3;
const GUEST_FLUSH = 4;
const GUEST_TIMER = 5;

// The scheduler's view of the current host: its VSPs in channel-index order, so that a
// step finds a channel's VSP by index instead of a Map lookup. Rebuilt whenever the host
// object changes (a host's VSPs are fixed when it is built). Module-level, not a field:
// it holds the last run's host until the next run, and nothing else.
let stepHost: EmulatedHost | null = null;
let stepVsps: HostVsp[] = [];

export function executeScenario(scenario: Scenario, opts: ExecuteOptions): ExecuteResult {
  return new Execution(scenario, opts).run();
}

/**
 * Runs a scenario but stops at each migration after the save, returning the hand-off
 * instead of restoring in place. `resumeScenario` continues from a hand-off.
 */
export function startScenario(scenario: Scenario, opts: ExecuteOptions): Segment {
  const x = new Execution(scenario, opts);
  x.stopAtMigrations = true;
  return x.begin();
}

export function resumeScenario(scenario: Scenario, opts: ExecuteOptions, h: MigrationHandoff): Segment {
  const x = new Execution(scenario, opts, h);
  x.stopAtMigrations = true;
  x.refusedRestores.push(...(h.refusedRestores ?? []));
  return x.resume(h);
}

class Execution {
  private readonly s: Scenario;
  private readonly opts: ExecuteOptions;
  private readonly sink: TraceSink;
  private readonly choices: GapChoices;
  private readonly schedule: Schedule;
  private readonly maxSteps: number;
  private readonly chIds: number[];
  private clock = 0;
  private steps = 0;
  private vm: VmState = 'running';
  private memory: GuestMemory;
  private guest: GuestDriver;
  /** the device's twins (its module's emulator side) */
  private readonly device: EmulatorDevice;
  /** the guest side: the device's twin guest, or its C guest driver (devices: c-linux) */
  private readonly guestSide: EmulatorGuest;
  private host: EmulatedHost | null;
  private savedBlob: Uint8Array | null = null;
  private readonly checkpoints = new Map<string, Uint8Array>();
  /**
   * Blobs this run's saves made and keeps to itself: they are not sealed with a checksum
   * and are restored without one (decodeSavedVm ownBlob). A blob that leaves the run (a
   * migration hand-off) is sealed first.
   */
  private readonly ownBlobs = new WeakSet<Uint8Array>();
  /** Host-side tx numbering is the bench's, not the VSP's: a VSP restarts on restore. */
  private nextHostTx: Record<string, TxId> = {};
  private injected = false;
  private hang: ExecuteResult['hang'] = null;
  private readonly tasks: number[] = [];
  private migrations = 0;
  /** ring dumps made so far (--dump-rings numbers them) */
  private dumps = 0;
  private readonly faults: Faults;
  /** stop at a migration's save and return a hand-off (a destination on another thread) */
  stopAtMigrations = false;
  /** the last save point shown to atSavePoint (each is shown once) */
  private lastSavePoint = -1;
  /** atSavePoint ended the run */
  private stopped = false;
  private lastKeySize = 0;
  /** whether a step of the scenario names explore's own checkpoint (the run key needs it) */
  private readonly usesExploreCheckpoint: boolean;
  /** devices: c: the device's C VSP driver of each host name (they outlive the host objects) */
  private readonly cDrivers: Map<string, unknown> | undefined;
  /** the hosts the scenario's migrate steps name (keyedDrivers) */
  private readonly migrationTargets: ReadonlySet<string>;
  /** topology loopback: the client runs whatever the server channels' state (see the top) */
  private readonly loopback: boolean;
  /** the channel of the task or step running now, to name in a driver violation */
  private activeCh = -1;
  /** a C driver's violation ended the run (its message) */
  private violation: string | undefined;
  /** restores refused that the scenario did not ask to fail (ExecuteResult.refusedRestores) */
  readonly refusedRestores: RefusedRestore[] = [];

  constructor(s: Scenario, opts: ExecuteOptions, carried?: Pick<MigrationHandoff, 'faultsFired' | 'faultsUsed' | 'faultChange'>) {
    this.s = s;
    this.opts = opts;
    this.sink = opts.sink;
    this.choices = resolveChoices({ ...(s.choices as Partial<GapChoices>), ...(opts.choices ?? {}) });
    this.schedule = new Schedule(opts.seed);
    this.faults = new Faults(opts.faults ?? []);
    if (carried) this.faults.carryOver(carried.faultsFired, carried.faultsUsed, carried.faultChange);
    // A livelock guard, not a deadline: real hangs (nothing ready, work outstanding) are
    // found at once. The limit grows with the scenario, so a long one is never cut short.
    this.maxSteps = opts.maxSteps ?? 1_000_000 + 64 * s.steps.reduce((n, st) => n + ('count' in st ? st.count : 1), 0) * s.channels.length;
    this.chIds = s.channels.map((c) => c.id);
    this.usesExploreCheckpoint = s.steps.some((st) => 'name' in st && st.name === EXPLORE_CHECKPOINT);
    this.device = emulatorOf(s);
    const devices = opts.devices ?? s.devices;
    this.cDrivers = usesCDrivers(devices) ? cDeviceDrivers(s, opts, this.device) : undefined;
    this.guestSide = cGuestSide(s, devices, this.device, () => this.clock, this.choices, opts);
    this.migrationTargets = new Set(s.steps.flatMap((st) => (st.op === 'migrate' ? [st.to] : [])));
    this.loopback = s.topology === 'loopback';
    if (this.loopback) refuseVmOnlySteps(s, opts);
    for (const c of s.channels) this.nextHostTx[String(c.id)] = c.firstTx === undefined ? 1 : toTxId(c.firstTx);
    this.memory = new GuestMemory(s.channels.map((c) => ({ ch: c.id, g2hPages: c.g2hPages, h2gPages: c.h2gPages })));
    this.guest = this.makeGuest(this.guestSide.newGuestState(this.chIds, s.channels.map((c) => (c.firstTx === undefined ? 1 : toTxId(c.firstTx)))));
    this.host = null;
    refuseRescindsWithout(s, this.guest);
  }

  run(): ExecuteResult {
    const seg = this.begin();
    if (seg.kind !== 'done') throw new Error('a run that is not split at migrations cannot hand off');
    return seg.result;
  }

  begin(): Segment {
    this.sink.emit({ side: 'bench', ev: 'scenario.begin', name: this.s.name, seed: this.opts.seed });
    const host = (this.host = this.newHost(this.s.host));
    if (!this.guarded(() => host.attach(this.memory, (ch, what) => this.signalGuest(ch, what), false), -1)) {
      return { kind: 'done', result: this.finish() };
    }
    // A loopback client is a KMCL client driver, which traces its channel's Enable and
    // Start too (lab/drivers/guest-windows); a VM's guest driver opens an offered channel.
    // A C guest driver is probed and traces its own (devices: c-linux).
    const opened = this.loopback ? (['Enabled', 'Opened', 'Started', 'Active'] as const) : (['Opened', 'Active'] as const);
    const guest = this.guest;
    if (guest.probe) {
      if (!this.guarded(() => guest.probe!(), -1)) return { kind: 'done', result: this.finish() };
    } else {
      for (const ch of this.chIds) for (const state of opened) this.sink.emit({ side: 'guest', ev: 'ch.state', ch, state });
    }
    // The channels are open: a C VSP takes its control's begin lines now, as a lab job
    // sends them (its face sends them once per driver; HostVsp.begin).
    if (!this.guarded(() => { for (const v of host.vsps.values()) v.begin?.(); }, -1)) return { kind: 'done', result: this.finish() };
    return this.runFrom(0);
  }

  /** The destination side of a migration: restore the hand-off's blob here and go on. */
  resume(h: MigrationHandoff): Segment {
    this.clock = h.clock;
    this.steps = h.steps;
    this.migrations = h.migrations;
    this.nextHostTx = { ...h.nextHostTx };
    for (const [name, blob] of h.checkpoints) this.checkpoints.set(name, blob);
    this.schedule.restoreState(h.schedule);
    this.restoreVm(h.blob, h.to, 'migration');
    this.sink.emit({ side: 'bench', ev: 'vm.migrate.end', from: h.from, to: h.to });
    return this.runFrom(h.next);
  }

  private runFrom(first: number): Segment {
    for (let i = first; i < this.s.steps.length; i++) {
      if (this.hang || this.stopped) break;
      const step = this.s.steps[i]!;
      if (step.op === 'migrate' && this.stopAtMigrations) {
        const { from, blob } = this.leaveHost(step.to);
        // Off to another thread: sealed, as any blob that leaves the run.
        for (const b of [blob, ...this.checkpoints.values()]) if (this.ownBlobs.has(b)) sealSavedVm(b);
        return {
          kind: 'handoff',
          handoff: {
            next: i + 1, from, to: step.to, blob, clock: this.clock, steps: this.steps, migrations: this.migrations,
            nextHostTx: { ...this.nextHostTx }, checkpoints: [...this.checkpoints], schedule: this.schedule.state(),
            faultsFired: [...this.faults.fired], faultsUsed: this.faults.used, faultChange: this.faults.changedCompletion,
            refusedRestores: [...this.refusedRestores],
          },
        };
      }
      this.nextStep = this.s.steps[i + 1];
      if (!this.guarded(() => this.step(step), 'channel' in step ? step.channel : -1)) break;
    }
    return { kind: 'done', result: this.finish() };
  }

  /**
   * Runs `f`; a C driver's violation (devices: c) ends the run as a finding instead of
   * an error: as Driver Verifier's bug check stops the machine, the driver is stopped
   * and the run goes no further, and the trace says what broke as kmcl.violation (the
   * checker's kmcl-misuse). False when that happened.
   */
  private guarded(f: () => void, ch: number): boolean {
    this.activeCh = ch;
    try {
      f();
      return true;
    } catch (e) {
      if (!(e instanceof DriverViolation)) throw e;
      const r = e.report;
      const at = e.ch ?? (this.activeCh >= 0 ? this.activeCh : this.chIds[0]!);
      this.sink.emit({ side: 'host', ev: 'kmcl.violation', ch: at, rule: r.rule, call: r.call, packet: 0, message: `${r.detail} at ${r.site.join(' <- ') || '(driver entry)'} [${r.object}]` });
      this.violation = e.message;
      return false;
    }
  }

  private finish(): ExecuteResult {
    if (!this.hang && !this.stopped && !this.violation) this.guarded(() => this.settle(), -1);
    if (!this.hang && !this.stopped && !this.violation && this.vm === 'running' && !this.opts.chooser) {
      const left = this.guest.pending() + (this.host?.pending() ?? 0);
      if (left > 0) this.hang = { reason: `${left} transaction(s) or queued packet(s) never finished` };
    }
    this.dump('end');
    this.sink.emit({ side: 'bench', ev: 'scenario.end', name: this.s.name, seed: this.opts.seed });
    return {
      steps: this.steps,
      hang: this.hang,
      injected: this.injected,
      host: this.host?.name ?? '',
      faultsFired: [...this.faults.fired],
      pendingAtEnd: this.vm === 'running' && !this.violation ? this.guest.pending() + (this.host?.pending() ?? 0) : 0,
      stopped: this.stopped,
      driverViolation: this.violation,
      refusedRestores: [...this.refusedRestores],
    };
  }

  // ------------------------------------------------------------------ wiring

  private makeGuest(state: unknown): GuestDriver {
    const rings = new Map<number, { out: OutgoingRing; in: IncomingRing }>();
    for (const ch of this.chIds) rings.set(ch, this.memory.guestRings(ch));
    return this.guestSide.guest(state, rings, this.sink, {
      interrupt: (ch) => {
        const v = this.host?.vsps.get(ch);
        if (v) v.channel.interrupt = true;
      },
      writable: (ch) => {
        const v = this.host?.vsps.get(ch);
        if (v) v.channel.writable = true;
      },
      runHost: () => this.runHostTask(),
    });
  }

  /**
   * A C guest's thread sleeps inside a call (its ring is full): the host runs one ready
   * task meanwhile, the first channel's first, as another processor would; with none
   * ready, a millisecond passes (a sleep is at least that long in jiffies), so held
   * requests come due and the driver's own send timeout can pass. Not a scheduler step:
   * nothing is injected inside a guest's call.
   */
  private runHostTask(): boolean {
    const host = this.host;
    if (!host) return false;
    for (const ch of this.chIds) {
      const v = host.vsps.get(ch)!;
      this.activeCh = ch;
      if (v.channel.canDeliver()) v.channel.deliverOne();
      else if (v.channel.canFlush()) v.channel.flushOne();
      else if ((v.nextDue() ?? Infinity) <= this.clock) v.completeDue(this.clock);
      else continue;
      return true;
    }
    this.clock += 1;
    return true;
  }

  private newHost(name: string): EmulatedHost {
    return new EmulatedHost(name, this.s.channels, {
      device: this.device,
      choices: this.choices,
      sink: this.sink,
      now: () => this.clock,
      saveBufferSize: this.s.saveBufferSize,
      instancePrefix: this.s.name,
      faults: this.faults,
      cDrivers: this.cDrivers,
      cVspReplace: this.opts.cVspReplace,
    });
  }

  private signalGuest(ch: number, what: 'interrupt' | 'writable'): void {
    this.guest.signal(ch, what);
  }

  // ------------------------------------------------------------------ steps

  /** the scenario's step after the one running (undefined: none), for the replay's settle */
  private nextStep: Step | undefined = undefined;

  private step(step: Step): void {
    switch (step.op) {
      case 'guest-send':
        this.guest.send(step.channel, 'request', step.count, step.size, step.mode, step.hold);
        this.waitForRoom(step.channel);
        return;
      case 'host-send':
        this.hostSend(step.channel, 'transaction', step.count, step.size, step.hold);
        return;
      case 'notify':
        if (step.dir === 'g2h') {
          this.guest.send(step.channel, 'notify', step.count, step.size, 'inline', 0);
          this.waitForRoom(step.channel);
        } else this.hostSend(step.channel, 'notify', step.count, step.size, 0);
        return;
      case 'run':
        this.runFor(step.ms);
        return;
      case 'settle':
        this.settle();
        if (this.opts.chooser?.settled) {
          // Replay: the model's settle ended where the trace's did (its cut: the replay's
          // SettleCuts), the rest carried into the next steps. A next step that is a VM
          // operation writes its bench event before anything else, and what the trace
          // shows before that event must be explained before it: only this settle can, so
          // it goes on up to it (and so does the scenario's end, in finish).
          this.opts.chooser.settled();
          const next = this.nextStep;
          if (next !== undefined && STARTS_WITH_BENCH_EVENT.has(next.op)) this.settle();
        }
        return;
      case 'save':
        this.sink.emit({ side: 'bench', ev: 'vm.save.begin' });
        this.savedBlob = this.saveVm('save');
        this.vm = 'saved';
        this.sink.emit({ side: 'bench', ev: 'vm.save.end' });
        return;
      case 'restore':
        this.sink.emit({ side: 'bench', ev: 'vm.restore.begin' });
        if (this.loopback) this.restoreChannels(this.savedBlob!);
        else this.restoreVm(this.savedBlob!, this.host?.name ?? this.s.host, 'restore', step.fail);
        this.savedBlob = null;
        this.sink.emit({ side: 'bench', ev: 'vm.restore.end' });
        return;
      case 'pause':
        this.sink.emit({ side: 'bench', ev: 'vm.pause' });
        // Loopback: the VSP's `pause ch=N` on every channel; the client is not paused.
        if (this.loopback) for (const v of this.host!.vsps.values()) v.channel.pause();
        this.vm = 'paused';
        return;
      case 'resume':
        if (this.loopback) for (const v of this.host!.vsps.values()) v.channel.start();
        this.sink.emit({ side: 'bench', ev: 'vm.resume' });
        this.vm = 'running';
        return;
      case 'checkpoint':
        this.checkpoint(step.name);
        return;
      case 'apply-checkpoint':
        this.applyCheckpoint(step.name);
        return;
      case 'migrate':
        this.migrate(step.to);
        return;
      case 'rescind':
        this.rescindChannel(step.channel, step.reopen);
        return;
      case 'guest-open':
        this.openChannel(step.channel);
        return;
      case 'guest-close':
        this.guestCloseChannel(step.channel);
        return;
    }
  }

  /**
   * Replay of a guest whose send waits for ring space (guestSendWaits): the step is not
   * over while any of its packets wait behind the full ring. The scheduler runs meanwhile
   * (the trace choosing, as ever), as the host goes on reading while the guest's thread
   * sleeps; when the trace frees no more room, the replay is told: the trace shows the
   * guest giving up there (its sends still queued are dropped), or it diverges.
   * Invariant: a waiting send step ends with no send of the guest's queued on `ch`, or the
   * replay diverges.
   */
  private waitForRoom(ch: number): void {
    const chooser = this.opts.chooser;
    if (!chooser || !this.opts.guestSendWaits) return;
    const guest = this.guest;
    if (!guest.queued) throw new InputError(`device ${deviceOf(devicePath(this.s)).name}: bench check cannot model a guest whose send waits for ring space: its guest twin does not say what it has queued (GuestDriver.queued)`);
    while (guest.queued(ch) > 0 && !this.hang && this.tick());
    const left = guest.queued(ch);
    if (left > 0 && chooser.sendBlocked?.(this.replayModel, ch, left) === 'gave-up') {
      if (!guest.abandonQueued) throw new InputError(`device ${deviceOf(devicePath(this.s)).name}: bench check cannot model a guest that gives up a send (pkt.timeout): its guest twin cannot drop what it queued (GuestDriver.abandonQueued)`);
      guest.abandonQueued(ch);
    }
  }

  private hostSend(ch: number, kind: 'transaction' | 'notify', count: number, size: number, hold: number): void {
    const key = String(ch);
    const first = this.nextHostTx[key]!;
    this.nextHostTx[key] = txAdd(first, count);
    this.host!.vsps.get(ch)!.send(kind, first, count, size, hold);
  }

  // ------------------------------------------------------------------ VM operations

  /**
   * Pauses and saves every channel and images guest memory. The host objects are then
   * discarded, unless `keepHost` (a checkpoint the VM runs on after, save-and-continue):
   * then they stay paused, for the caller to start again.
   */
  private saveVm(label: string, keepHost = false): Uint8Array {
    const t0 = performance.now();
    const host = this.host!;
    const channels = this.chIds.map((ch) => ({ ch, kmclBuffers: host.vsps.get(ch)!.save() }));
    if (!keepHost) {
      for (const v of host.vsps.values()) v.teardown({ discard: false });
      this.host = null;
    }
    const record: SavedVmV1 = {
      v: 1,
      kind: 'vm',
      layout: this.s.channels.map((c) => ({ ch: c.id, g2hPages: c.g2hPages, h2gPages: c.h2gPages })),
      // A live view: encodeSavedVm below copies it into the blob (saves one image copy).
      memory: this.memory.live(),
      // Live too where the guest can (a C guest's memory): nothing runs before it is encoded.
      guest: this.guestSide.snapshotGuest(this.guest.state, this.clock, true),
      channels,
      bench: { nextHostTx: { ...this.nextHostTx } },
    };
    const blob = encodeSavedVm(record, { seal: false });
    this.ownBlobs.add(blob);
    this.opts.onVmOpTimed?.('save', performance.now() - t0);
    this.dump(label);
    return blob;
  }

  /**
   * Builds guest memory, the guest and a new host from a blob; nothing is built if it is
   * bad. A channel that is not restored (its VSP refuses its saved state, `fail`, or it
   * sets FORCE_NEW_CHANNEL) is rescinded and offered anew once the VM runs again, as
   * openvmm's vmbus server revokes a channel nobody restores (REVIEW section 2). A
   * channel refused without `fail` or FORCE_NEW_CHANNEL is a finding (refusedRestores).
   */
  private restoreVm(blob: Uint8Array, hostName: string, op: RefusedRestore['op'], fail: readonly number[] = []): void {
    const t0 = performance.now();
    const rec = decodeSavedVm(blob, { ownBlob: this.ownBlobs.has(blob) });
    // Before anything is replaced: a bad guest image is refused with the VM as it was.
    const guestState = this.guestSide.reviveGuest(rec.guest, this.clock);
    // The host side too: a record that names no channel of the scenario is a bad blob,
    // refused with the VM as it was (the new host objects touch neither guest memory nor
    // the guest). A channel whose restore fails is not: it falls back to a re-offer.
    const host = this.newHost(hostName);
    const failing = new Set(fail);
    let reoffer: Set<number> | null = null;
    const refused: RefusedRestore[] = [];
    for (const c of rec.channels) {
      if (restoreVsp(host, c, this.s.name, failing.has(c.ch))) continue;
      (reoffer ??= new Set()).add(c.ch);
      // Invariant: a channel the scenario asked to fail, or one that sets FORCE_NEW_CHANNEL,
      // is re-offered as the model expects; any other that is not restored lost its saved
      // transactions to something that refused them (a damaged record: --fault corrupt-savebuf
      // under a C VSP that checks its record), which the trace alone shows as a legal rescind.
      if (!failing.has(c.ch) && !this.forceNewChannel(c.ch)) refused.push({ ch: c.ch, op, atStep: this.steps });
    }
    if (rec.channels.length !== host.vsps.size) throw new RestoreError('bad-record', `the saved VM holds ${rec.channels.length} channel(s); scenario ${this.s.name} has ${host.vsps.size}`);
    this.refusedRestores.push(...refused);
    // The VM's old memory is replaced whole and nothing reads it any more (its guest and
    // host objects are discarded below): reuse it when the layout matches.
    let memory = this.memory;
    if (memory.hasLayout(rec.layout)) memory.overwrite(rec.memory);
    else memory = new GuestMemory(rec.layout, rec.memory);
    this.memory = memory;
    const replaced = this.guest.state;
    this.guest = this.makeGuest(guestState);
    // Nothing reads the old guest any more: a C guest's next revive may take its instance.
    this.guestSide.discardGuest?.(replaced);
    this.nextHostTx = { ...rec.bench.nextHostTx };
    this.host = host;
    // A channel the guest has closed (rescinded, not opened since) is offered, not opened.
    const guest = this.guest;
    const closed = guest.isClosed ? new Set(this.chIds.filter((ch) => guest.isClosed!(ch))) : undefined;
    host.attach(memory, (ch, what) => this.signalGuest(ch, what), true, reoffer ?? undefined, closed);
    this.vm = 'running';
    if (reoffer) for (const ch of reoffer) this.rescindChannel(ch, !(closed?.has(ch) ?? false));
    this.opts.onVmOpTimed?.('restore', performance.now() - t0);
  }

  /**
   * Loopback restore: new server channels from the blob's KMCL state, over the client's
   * live rings and the running client (the blob's guest image and memory are not used:
   * the client was never saved).
   */
  private restoreChannels(blob: Uint8Array): void {
    const t0 = performance.now();
    const rec = decodeSavedVm(blob, { ownBlob: this.ownBlobs.has(blob) });
    const host = this.newHost(this.host?.name ?? this.s.host);
    for (const c of rec.channels) {
      // (Loopback has no rescind: forceNewChannel and restore fail are refused up front.)
      if (!restoreVsp(host, c, this.s.name, false)) throw new RestoreError('bad-record', `channel ${c.ch} could not be restored, and a loopback job has no rescind to fall back to`);
    }
    this.nextHostTx = { ...rec.bench.nextHostTx };
    this.host = host;
    host.attach(this.memory, (ch, what) => this.signalGuest(ch, what), true);
    this.vm = 'running';
    this.opts.onVmOpTimed?.('restore', performance.now() - t0);
  }

  private forceNewChannel(ch: number): boolean {
    return this.s.channels.some((c) => c.id === ch && c.forceNewChannel === true);
  }

  /** Whether the guest (or loopback client) can run now. */
  private guestRuns(): boolean {
    return this.vm === 'running' || this.loopback;
  }

  private migrate(to: string): void {
    const { from, blob } = this.leaveHost(to);
    this.restoreVm(blob, to, 'migration');
    this.sink.emit({ side: 'bench', ev: 'vm.migrate.end', from, to });
  }

  /** A migration's first half, wherever the destination runs: save the VM for the move. */
  private leaveHost(to: string): { from: string; blob: Uint8Array } {
    const from = this.host!.name;
    this.sink.emit({ side: 'bench', ev: 'vm.migrate.begin', from, to });
    let blob = this.saveVm(`migrate-${++this.migrations}`);
    if (this.faults.armed('lose-ring-tail-at-migration')) blob = this.loseRingTail(blob);
    return { from, blob };
  }

  /** Fault: the destination gets guest memory whose newest host->guest packet is gone. */
  private loseRingTail(blob: Uint8Array): Uint8Array {
    const rec = decodeSavedVm(blob, { ownBlob: this.ownBlobs.has(blob) });
    const mem = new GuestMemory(rec.layout, rec.memory);
    for (const c of rec.layout) {
      const ring = mem.h2g(c.ch);
      const write = ring.index(ControlWord.writeIndex);
      const read = ring.index(ControlWord.readIndex);
      if (write === read) continue;
      // The trailer before the write index holds where the last packet started.
      const trailer = (write - 8 + ring.dataSize) % ring.dataSize;
      const start = ring.u32(trailer + 4);
      ring.store(ControlWord.writeIndex, start);
      this.faults.fire('lose-ring-tail-at-migration');
      return encodeSavedVm({ ...rec, memory: mem.image() });
    }
    return blob;
  }

  /**
   * The host rescinds channel `ch` and offers it anew (PROTOCOL.md, "Rescind and
   * re-offer"): the VSP ends what it owns (`ch.rescind`, pkt.cancel), the guest closes
   * the old instance and ends its own requests in flight, and the new instance is
   * offered and (unless `reopen` is false: then at a `guest-open` step) opened. One step:
   * nothing runs between the rescind and the new instance's open.
   */
  private rescindChannel(ch: number, reopen = true): void {
    const host = this.host!;
    host.rescind(ch);
    // The step cache holds the host's VSPs by index: one of them is a new object now.
    stepHost = null;
    this.guestStopsReading(ch);
    this.guest.rescind!(ch, 'host');
    host.offer(ch);
    if (reopen) this.openChannel(ch);
  }

  /**
   * The guest closes channel `ch` (PROTOCOL.md, "Guest close"). The host's channel is
   * suspended and closed first (what it receives and completes while suspending is the
   * VSP's ordinary work), then the guest closes (`ch.state` Closed) and ends its requests
   * in flight, then the VSP retires what it had outstanding. The channel stays offered
   * and closed; a `guest-open` opens it again on fresh rings. One step: nothing runs
   * between.
   */
  private guestCloseChannel(ch: number): void {
    const vsp = this.host!.vsps.get(ch)!;
    if (!vsp.guestClosed || !vsp.retireClosed) throw new InputError(`channel ${ch}: the device's VSP twin has no guestClosed and retireClosed, so the guest cannot close it`, { field: 'device' });
    vsp.guestClosed();
    this.guestStopsReading(ch);
    this.guest.rescind!(ch, 'guest');
    vsp.retireClosed();
  }

  /**
   * The guest closes channel `ch`'s instance and never reads its ring again (it ends its
   * requests in flight instead). A completion the wrong-status fault changed that is still
   * unread there reaches nobody: the fault changed nothing observable (Faults.changeGone).
   */
  private guestStopsReading(ch: number): void {
    const c = this.faults.changedCompletion;
    if (c?.at !== 'ring' || this.memory.h2g(ch).byteOffset !== c.ringAt) return;
    // The ring's last chance to be read has passed. (Inferred from the ring, not asked of
    // the guest: one the guest has consumed is behind the ring's read index.)
    if (changeUnreadIn(this.memory, c)) this.faults.changeGone();
    else this.faults.changeRead();
  }

  /**
   * wrong-status across a checkpoint apply: the checkpoint's memory replaces the rings. A
   * changed completion the guest has read stays read; one still unread, or thrown away
   * before, lies unread in the ring afterwards exactly when the checkpoint's memory holds
   * it (it was taken while the completion lay unread), and else is rolled away: the fault
   * did not act (it stays used: each acts once per run).
   */
  private changeAcrossApply(blob: Uint8Array): void {
    const c = this.faults.changedCompletion;
    if (c === null || c.at === 'read') return;
    if (c.at === 'ring' && !changeUnreadIn(this.memory, c)) return this.faults.changeRead();
    // Only a run whose fault has written its change gets here: decoding the blob twice is its cost alone.
    const rec = decodeSavedVm(blob, { ownBlob: this.ownBlobs.has(blob) });
    if (changeUnreadIn(new GuestMemory(rec.layout, rec.memory), c)) this.faults.changeBack();
    else this.faults.changeGone();
  }

  /**
   * The guest opens channel `ch`'s offered instance: it donates fresh ring memory (the
   * channel's slot, initialised again), the host's channel opens on it, and the guest's.
   */
  private openChannel(ch: number): void {
    const host = this.host!;
    const rings = [this.memory.g2h(ch), this.memory.h2g(ch)];
    // Fault: the new instance keeps the old rings, with whatever they still held unread.
    // It acts only where that is work the new instance takes up again; a stale completion
    // (of a request its sender ended at the rescind or close) is dropped unseen, as one
    // for a transaction nobody awaits.
    if (rings.some(holdsUnreadWork) && this.faults.armed('stale-rings-at-reoffer')) this.faults.fire('stale-rings-at-reoffer');
    else for (const r of rings) r.initialize();
    const signal = (c: number, what: 'interrupt' | 'writable'): void => this.signalGuest(c, what);
    host.open(ch, this.memory, signal);
    this.guest.reopen!(ch, this.memory.guestRings(ch));
  }

  /**
   * A checkpoint saves the running VM, which then goes on. How the VSPs go on is the
   * runningCheckpoint choice (REVIEW section 2): save-and-continue starts the same channel
   * objects again (Pause, Save*, Start: no RestoreFromBuffer, no new host objects); pulse
   * restores the save at once onto new host objects. The guest's processors are stopped
   * for the save and it sees the same either way: its objects and memory are untouched.
   * Loopback has no VM and no Hyper-V to choose: its checkpoint is the bench's own channel
   * commands, save and continue (`save ch=N`, `resume ch=N`; run/real/loopback-lab.ts),
   * whatever the choice, so a loopback trace (bench lab probe's) decides neither option.
   * Invariant: under either option, what was in flight when the checkpoint was taken
   * completes exactly once, whether the VM goes on from the checkpoint or goes back to it
   * (execute.test.ts property: a checkpoint taken, or taken and applied, at any save point).
   */
  private checkpoint(name: string): void {
    this.sink.emit({ side: 'bench', ev: 'vm.checkpoint.begin', name });
    const hostName = this.host!.name;
    const label = `checkpoint-${name}`;
    // Loopback: the bench's own save and continue (`save`, `resume`), whatever the host does for a VM.
    if (this.choices.runningCheckpoint === 'pulse' && !this.loopback) {
      const blob = this.saveVm(label);
      this.checkpoints.set(name, blob);
      this.restoreVm(blob, hostName, 'checkpoint');
    } else {
      this.checkpoints.set(name, this.saveVm(label, true));
      for (const v of this.host!.vsps.values()) v.resume();
    }
    this.sink.emit({ side: 'bench', ev: 'vm.checkpoint.end', name });
  }

  private applyCheckpoint(name: string): void {
    // The current host objects and guest are discarded: nothing from that future completes.
    // The host objects are torn down first (Disable + Cleanup; their channel states end
    // before the checkpoint's objects begin).
    const blob = this.checkpoints.get(name)!;
    this.changeAcrossApply(blob);
    if (this.host) for (const v of this.host.vsps.values()) v.teardown({ discard: true });
    this.sink.emit({ side: 'bench', ev: 'vm.checkpoint.apply.begin', name });
    const hostName = this.host?.name ?? this.s.host;
    this.host = null;
    this.restoreVm(blob, hostName, 'checkpoint apply');
    this.sink.emit({ side: 'bench', ev: 'vm.checkpoint.apply.end', name });
  }

  // ------------------------------------------------------------------ the scheduler

  /** Points the step cache (stepHost, stepVsps) at `host` if it holds another. */
  private cacheStepVsps(host: EmulatedHost): void {
    if (host === stepHost) return;
    stepHost = host;
    stepVsps = this.chIds.map((ch) => host.vsps.get(ch)!);
  }

  private collectTasks(): number {
    // Filled by count, not by `length = 0` and push: setting an array's length is a
    // runtime call, and this runs once per scheduler step. Entries past n are stale.
    const t = this.tasks;
    let n = 0;
    const host = this.host;
    if (host) this.cacheStepVsps(host);
    const guest = this.guestRuns() ? this.guest : null;
    const clock = this.clock;
    const chIds = this.chIds;
    for (let i = 0; i < chIds.length; i++) {
      const ch = chIds[i]!;
      if (host) {
        const v = stepVsps[i]!;
        const c = v.channel;
        if (c.canDeliver()) t[n++] = HOST_DELIVER + i * 8;
        if (c.canFlush()) t[n++] = HOST_FLUSH + i * 8;
        const due = v.nextDue();
        if (due !== null && due <= clock) t[n++] = HOST_TIMER + i * 8;
      }
      if (guest) {
        if (guest.canDeliver(ch)) t[n++] = GUEST_DELIVER + i * 8;
        if (guest.canFlush(ch)) t[n++] = GUEST_FLUSH + i * 8;
        const due = guest.nextDue(ch);
        if (due !== null && due <= clock) t[n++] = GUEST_TIMER + i * 8;
      }
    }
    return n;
  }

  private runTask(task: number): void {
    const ch = this.chIds[task >> 3]!;
    this.activeCh = ch;
    // The VSP by index when the step cache holds this host (collectTasks fills it), else by Map.
    const host = this.host;
    const vsp = host !== null && host === stepHost ? stepVsps[task >> 3] : host?.vsps.get(ch);
    switch (task & 7) {
      case HOST_DELIVER:
        vsp!.channel.deliverOne();
        return;
      case HOST_FLUSH:
        vsp!.channel.flushOne();
        return;
      case HOST_TIMER:
        vsp!.completeDue(this.clock);
        return;
      case GUEST_DELIVER:
        this.guest.deliverOne(ch, this.clock);
        return;
      case GUEST_FLUSH:
        this.guest.flushOne(ch);
        return;
      case GUEST_TIMER:
        this.guest.completeDue(ch, this.clock);
        return;
    }
  }

  /** Runs one scheduled task if any is ready. False when nothing is ready now. */
  private tick(): boolean {
    if (this.opts.chooser) return this.replayTick(this.opts.chooser);
    const inject = this.opts.inject;
    if (inject && !this.injected && this.steps === inject.at && this.vm === 'running') this.runInjected(inject.op);
    // Shown where `inject` would act: the first time the VM runs at this step count.
    const atSavePoint = this.opts.atSavePoint;
    if (atSavePoint && this.vm === 'running' && this.steps > this.lastSavePoint) {
      this.lastSavePoint = this.steps;
      if (atSavePoint(this.steps, this.savePoint) === 'stop') {
        this.stopped = true;
        return false;
      }
    }
    const n = this.collectTasks();
    if (n === 0) return false;
    if (this.steps >= this.maxSteps) {
      this.hang = { reason: `no end after ${this.maxSteps} scheduler steps` };
      return false;
    }
    this.runTask(this.tasks[this.schedule.pick(n)]!);
    this.steps++;
    return true;
  }

  private replayTick(chooser: Chooser): boolean {
    const pick = chooser.choose(this.replayModel);
    if (pick === null) return false;
    const ch = this.chIds[pick.task >> 3]!;
    if ((pick.task & 7) === HOST_TIMER) this.host!.vsps.get(ch)!.completeHeld(pick.tx);
    else if ((pick.task & 7) === GUEST_TIMER) this.guest.completeHeld(ch, pick.tx);
    else this.runTask(pick.task);
    this.steps++;
    return true;
  }

  private readonly replayModel: ReplayModel = {
    options: () => this.replayOptions(),
    heldOption: (side, ch, tx) => {
      const i = this.chIds.indexOf(ch);
      if (i < 0) return null;
      if (side === 'host') {
        const v = this.host?.vsps.get(ch);
        if (!v || !v.isHeld(tx)) return null;
        return { task: HOST_TIMER + i * 8, tx, side, ev: 'pkt.complete', ch, dir: 'g2h' };
      }
      if (!this.guestRuns() || !this.guest.isHeld(ch, tx)) return null;
      return { task: GUEST_TIMER + i * 8, tx, side, ev: 'pkt.complete', ch, dir: 'h2g' };
    },
    guestQueued: (ch) => this.guest.queued?.(ch) ?? 0,
  };

  /** replayOptions' list, and every option object made so far (refilled, not made anew) */
  private readonly optionList: TaskOption[] = [];
  private readonly optionPool: TaskOption[] = [];

  /** What each ready delivery would write first, and the flushes (holds: see heldOption). */
  private replayOptions(): readonly TaskOption[] {
    let n = 0;
    const guestRuns = this.guestRuns();
    const host = this.host;
    if (host) this.cacheStepVsps(host);
    for (let i = 0; i < this.chIds.length; i++) {
      const ch = this.chIds[i]!;
      if (host) {
        const v = stepVsps[i]!;
        if (v.channel.canDeliver()) {
          const p = v.peekDelivery();
          if (p) n = this.option(n, HOST_DELIVER + i * 8, p.tx, 'host', p.ev, ch, p.dir);
        }
        if (v.channel.canFlush()) n = this.option(n, HOST_FLUSH + i * 8, 0, 'host', null, ch, 'h2g');
      }
      if (guestRuns) {
        if (this.guest.canDeliver(ch)) {
          const p = this.guest.peekDelivery(ch);
          if (p) n = this.option(n, GUEST_DELIVER + i * 8, p.tx, 'guest', p.ev, ch, p.dir);
        }
        if (this.guest.canFlush(ch)) n = this.option(n, GUEST_FLUSH + i * 8, 0, 'guest', null, ch, 'g2h');
      }
    }
    const list = this.optionList;
    if (list.length !== n) list.length = n;
    return list;
  }

  /** Puts option n of the list (reusing its object) and returns n + 1. */
  private option(n: number, task: number, tx: TxId, side: TaskOption['side'], ev: TaskOption['ev'], ch: number, dir: TaskOption['dir']): number {
    let o = this.optionPool[n];
    if (o === undefined) {
      this.optionPool[n] = o = { task, tx, side, ev, ch, dir };
    } else {
      o.task = task;
      o.tx = tx;
      o.side = side;
      o.ev = ev;
      o.ch = ch;
      o.dir = dir;
    }
    this.optionList[n] = o;
    return n + 1;
  }

  private readonly savePoint: SavePoint = (() => {
    const x = this; // inside the getter below, `this` would be the handle, not the run
    return {
      key: (opts?: { explain?: boolean; transient?: boolean; into?: StateKey }) =>
        x.stateKey(opts?.explain ?? false, opts?.transient ?? false, opts?.into),
      run: (op: InjectedOp) => x.runOp(op),
      get live() {
        return { host: x.host, guest: x.guest, memory: x.memory };
      },
    };
  })();

  /** Everything that decides how the run goes on (run-key.ts), from the run's parts. */
  private stateKey(explain: boolean, transient: boolean, into: StateKey | undefined): StateKey {
    const k = runKey(
      {
        bench: {
          clock: this.clock, steps: this.steps, vm: this.vm, hang: this.hang, schedule: this.schedule.state(),
          nextHostTx: this.nextHostTx, savedBlob: this.savedBlob, faultsFired: [...this.faults.fired], faultsUsed: this.faults.used,
          refusedRestores: this.refusedRestores.length,
        },
        checkpoints: this.checkpoints,
        scenarioUsesExploreCheckpoint: this.usesExploreCheckpoint,
        exploreCheckpoint: EXPLORE_CHECKPOINT,
        memory: this.memory,
        guest: this.guest,
        host: this.host,
        drivers: this.keyedDrivers(),
      },
      { explain, transient, into, sizeHint: this.lastKeySize },
    );
    // The next key, one step on, is about as large: room for it at once spares regrowing.
    this.lastKeySize = k.size * 2;
    return k;
  }

  /**
   * devices: c: the C drivers the run key holds. The current host's, unnamed: as with
   * the twins, the host's name only names hosts in events. Another host's driver
   * outlives the VM's stay there (what a save left in it), so it is keyed by name, but
   * only where a migrate step of the scenario could take the VM back to it: explore's
   * own hosts are never such, so a migration there leaves the key as it found it.
   */
  private keyedDrivers(): RunParts['drivers'] {
    const key = this.device.keyDriver;
    if (!this.cDrivers || !key) return undefined;
    const here = this.host?.name;
    const list: Array<readonly [string, unknown]> = [];
    const current = here === undefined ? undefined : this.cDrivers.get(here);
    if (current !== undefined) list.push(['', current]);
    for (const [name, driver] of this.cDrivers) if (name !== here && this.migrationTargets.has(name)) list.push([name, driver]);
    return { list, key };
  }

  private runInjected(op: InjectedOp): void {
    this.injected = true;
    this.runOp(op);
  }

  private runOp(op: InjectedOp): void {
    switch (op) {
      case 'save-restore':
        this.step({ op: 'save' });
        this.step({ op: 'restore' });
        return;
      case 'migrate':
        this.migrate(this.host!.name === 'explore-b' ? 'explore-a' : 'explore-b');
        return;
      case 'checkpoint':
        this.checkpoint(EXPLORE_CHECKPOINT);
        return;
      case 'checkpoint-apply':
        this.checkpoint(EXPLORE_CHECKPOINT);
        this.applyCheckpoint(EXPLORE_CHECKPOINT);
        return;
    }
  }

  private nextTimer(): number | null {
    let min: number | null = null;
    const host = this.host;
    const running = this.guestRuns();
    for (const ch of this.chIds) {
      if (host) {
        const d = host.vsps.get(ch)!.nextDue();
        if (d !== null && (min === null || d < min)) min = d;
      }
      if (running) {
        const d = this.guest.nextDue(ch);
        if (d !== null && (min === null || d < min)) min = d;
      }
    }
    return min;
  }

  /** Advances the clock by `ms`, doing all work that becomes ready on the way. */
  private runFor(ms: number): void {
    const target = this.clock + ms;
    for (;;) {
      while (this.tick());
      if (this.hang || this.stopped) return;
      if (this.opts.chooser) {
        this.clock = target;
        return;
      }
      const next = this.nextTimer();
      if (next === null || next > target) {
        this.clock = target;
        return;
      }
      this.clock = Math.max(this.clock, next);
    }
  }

  /** Runs until nothing is ready and no hold is pending. */
  private settle(): void {
    for (;;) {
      while (this.tick());
      if (this.hang || this.stopped || this.opts.chooser) return;
      const next = this.nextTimer();
      if (next === null) return;
      this.clock = Math.max(this.clock, next);
    }
  }

  /**
   * Hands every ring's bytes to --dump-rings. Labels are numbered in the order the dumps
   * happen (001-save, 002-save, ..., 00n-end): a file per label, so a scenario that saves
   * five times keeps five dumps instead of the last one.
   */
  private dump(label: string): void {
    const d = this.opts.dumpRing;
    if (!d) return;
    const numbered = `${String(++this.dumps).padStart(3, '0')}-${label}`;
    for (const ch of this.chIds) {
      d(numbered, ch, 'g2h', this.memory.ringImage(ch, 'g2h'));
      d(numbered, ch, 'h2g', this.memory.ringImage(ch, 'h2g'));
    }
  }
}

/**
 * devices: c: the C VSP drivers of the run, one per host name, made as hosts are first
 * used. Their saved states travel in the VM's saved state (devices/sample/c/host-vsp.ts), so saves,
 * migrations, checkpoints and explore's injected operations all run. Refused: replay
 * (`bench check`'s model is the twins, whatever devices the checked run had), and
 * explore's walk where the device cannot key its C drivers (cDriversKeyed).
 */
function cDeviceDrivers(s: Scenario, opts: ExecuteOptions, device: EmulatorDevice): Map<string, unknown> {
  if (!device.cHost) throw new InputError(`device ${deviceOf(devicePath(s)).name} has no C VSP built for the emulator (its module has no emulator.cHost)`, { file: s.source?.file, field: 'devices' });
  if (opts.chooser) throw new InputError('devices: c cannot be the model of bench check: the model is the TypeScript twins');
  if (opts.atSavePoint && !device.keyDriver) throw new InputError(`devices: c: explore's walk needs a key of the C drivers' state, and device ${deviceOf(devicePath(s)).name} has none (emulator.keyDriver)`);
  return new Map();
}

/** Whether explore's walk can key a devices: c run of `s` (else it runs every schedule from the start). */
export function cDriversKeyed(s: Scenario): boolean {
  return emulatorOf(s).keyDriver !== undefined;
}

/**
 * A rescind, a guest close, a failing restore or forceNewChannel needs a device whose twins
 * handle a rescind (GuestDriver.rescind and reopen, HostVsp.rescind; a guest close uses the
 * guest's rescind as its close, and HostVsp.guestClosed and retireClosed): refused up front
 * otherwise.
 */
function refuseRescindsWithout(s: Scenario, guest: GuestDriver): void {
  const i = s.steps.findIndex((st) => st.op === 'rescind' || st.op === 'guest-close' || (st.op === 'restore' && st.fail !== undefined && st.fail.length > 0));
  const c = s.channels.findIndex((x) => x.forceNewChannel);
  if (i < 0 && c < 0) return;
  if (guest.rescind && guest.reopen) return;
  const where = i >= 0 ? { file: s.source?.file, line: s.source?.stepLines[i], field: `steps[${i}].op` } : { file: s.source?.file, field: `channels[${c}].forceNewChannel` };
  throw new InputError(`device ${deviceOf(devicePath(s)).name} cannot be rescinded or closed by its guest: its guest twin has no rescind and reopen`, where);
}

/**
 * The run's guest side: the device's twin guest, or (devices: c-linux, c-windows) its C
 * guest driver, which has the run's clock. Refused (exit 2) where a C guest cannot be the
 * guest: a loopback job (its client is a KMCL client in the host), a first tx other than 1
 * (the driver numbers from 1 and no control command changes that), and whatever the
 * guest itself refuses (EmulatorGuest.refuses: the C Windows guest, a step that closes every channel).
 */
function cGuestSide(s: Scenario, devices: Scenario['devices'], device: EmulatorDevice, now: () => number, choices: GapChoices, opts: ExecuteOptions): EmulatorGuest {
  const os = cGuestOf(devices);
  // A test's option, never a user's: silently ignored, the test would show nothing.
  if (opts.cGuestRemovalRace && os !== 'windows') throw new Error(`cGuestRemovalRace needs devices: c-windows (the run's devices are ${devices})`);
  if (!os) return device;
  const name = deviceOf(devicePath(s)).name;
  if (!device.cGuest) throw new InputError(`device ${name} has no C guest driver built for the emulator (its module has no emulator.cGuest)`, { file: s.source?.file, field: 'devices' });
  if (s.topology === 'loopback') throw new InputError(`devices: ${devices} has no loopback form: a loopback job's client is a KMCL client in the host, not the guest driver`, { file: s.source?.file, field: 'devices' });
  const odd = s.channels.findIndex((c) => c.firstTx !== undefined && String(c.firstTx) !== '1');
  if (odd >= 0) throw new InputError(`devices: ${devices} cannot set firstTx: the C guest driver numbers its transactions from 1`, { file: s.source?.file, field: `channels[${odd}].firstTx` });
  const guest = device.cGuest(os, { now, choices, replace: opts.cGuestReplace, kmclFaults: opts.cGuestKmclFaults, removalRace: opts.cGuestRemovalRace });
  const no = guest.refuses?.(s);
  if (no) throw new InputError(`devices: ${devices}: ${no.reason}`, { file: s.source?.file, line: no.step === undefined ? undefined : s.source?.stepLines[no.step], field: no.field });
  return guest;
}

/** The scenario's device twins; a device without them runs on real labs only. */
function emulatorOf(s: Scenario): EmulatorDevice {
  const m = deviceOf(devicePath(s));
  if (!m.emulator) throw new InputError(`device ${m.name} has no twins for the emulator (its module has no "emulator"); it runs on real labs only`, { file: s.source?.file, field: 'device' });
  return m.emulator;
}

/** Loopback has no VM: what only a VM can do is refused, with the step's place. */
function refuseVmOnlySteps(s: Scenario, opts: ExecuteOptions): void {
  const p = loopbackStepProblem(s);
  if (p) throw new InputError(`topology: loopback cannot run step ${p.step + 1}: ${p.reason}`, { file: s.source?.file, line: s.source?.stepLines[p.step], field: `steps[${p.step}].op` });
  const c = s.channels.findIndex((x) => x.forceNewChannel);
  if (c >= 0) throw new InputError('topology: loopback cannot run forceNewChannel: its restore falls back to a rescind, which a loopback job does not drive yet', { file: s.source?.file, field: `channels[${c}].forceNewChannel` });
  if (opts.inject || opts.atSavePoint) throw new InputError('topology: loopback runs under bench emulate and check (not yet under explore)');
}

/**
 * One channel's saved KMCL stream into a new host's VSP. False when the channel is not
 * restored and must be offered anew: it sets FORCE_NEW_CHANNEL (its saved state is
 * abandoned unread), or its restore failed (the library or the VSP refused the stream).
 * `fail` (a scenario's `restore` with `fail`): the VSP refuses its saved state, as one
 * that cannot parse its own record would: its EvtVmbChannelRestorePacket fails on the
 * second packet, and with fewer the VSP gives the restore up at its end. A record for a
 * channel the scenario does not have is a RestoreError.
 */
function restoreVsp(host: EmulatedHost, c: SavedVmV1['channels'][number], scenario: string, fail: boolean): boolean {
  const vsp = host.vsps.get(c.ch);
  if (!vsp) throw new RestoreError('bad-record', `the saved VM holds channel ${c.ch}, which scenario ${scenario} does not have`);
  // (A C VSP's channel object exists only once restored: it answers FORCE_NEW_CHANNEL by
  // refusing the restore itself, and its restore callback is refused inside the shim.)
  if (!host.cDevices) {
    if ((vsp.channel.config.serverFlags & SERVER_INIT_FLAG_FORCE_NEW_CHANNEL) !== 0) return false;
    if (fail) refuseSecondPacket(vsp.channel);
  } else if (fail) {
    vsp.refuseRestoreFromSecondPacket?.();
  }
  try {
    vsp.restore(c.kmclBuffers);
    return !fail;
  } catch (e) {
    if (e instanceof DeviceError) return false;
    throw e;
  }
}

/** Makes the VSP's restore-packet callback fail from its second call on (restoreVsp's `fail`). */
function refuseSecondPacket(ch: Channel): void {
  const callback = ch.restorePacket;
  if (!callback) return;
  let calls = 0;
  ch.restorePacket = (c, lib, save) => (++calls >= 2 ? STATUS.INVALID_PARAMETER : callback(c, lib, save));
}

/** Whether `mem` holds the completion wrong-status changed, unread in the ring it was written to. */
function changeUnreadIn(mem: GuestMemory, c: { ringAt: number; transId: TxId }): boolean {
  const slot = mem.slots.find((x) => x.h2gOffset === c.ringAt);
  return slot !== undefined && holdsCompletion(mem.h2g(slot.ch), c.transId);
}

/** Whether the ring holds, unread, a completion of transaction `transId`. */
function holdsCompletion(mem: RingMemory, transId: TxId): boolean {
  return holdsUnread(mem, (v) => v.type === PacketType.completion && v.transId === transId);
}

/** Whether a ring holds an unread packet other than a completion: work its next reader would take up. */
function holdsUnreadWork(mem: RingMemory): boolean {
  return holdsUnread(mem, (v) => v.type !== PacketType.completion);
}

/** Whether the ring holds an unread packet that `match` takes; the ring's indices are left as they were. */
function holdsUnread(mem: RingMemory, match: (v: PacketView) => boolean): boolean {
  if (mem.index(ControlWord.writeIndex) === mem.index(ControlWord.readIndex)) return false;
  const r = new IncomingRing(mem);
  for (let v = r.peek(); v; v = r.peek()) {
    if (match(v)) return true;
    r.advance(v);
  }
  return false;
}
