// The executor's types: its options and result, the replay hooks trace validation
// drives it with, and the hand-off that carries a run to another thread at a migration.

import type { TxId } from '../vmbus/tx-id.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { ChangedCompletion, FaultMode } from '../vmbus/faults.ts';
import type { StateKey } from './state-key.ts';
import type { EmulatedHost } from './host.ts';
import type { GuestDriver, KmclFaults, RemovalRace } from '../device-api/device-module.ts';
import type { GuestMemory } from '../vmbus/partition.ts';
import type { DevicesMode } from './model.ts';

/**
 * A VM operation explore injects: a save and restore, a migration, a checkpoint taken
 * (the VM runs on from it, as the runningCheckpoint choice says), or one taken and
 * applied at once.
 */
export type InjectedOp = 'save-restore' | 'migrate' | 'checkpoint' | 'checkpoint-apply';

export interface ExecuteOptions {
  seed: number;
  sink: TraceSink;
  /** overrides the scenario's own gap choices (a host build's configuration) */
  choices?: Partial<GapChoices> | undefined;
  /** run this VM operation just before scheduler step `at` (explore) */
  inject?: { at: number; op: InjectedOp } | undefined;
  /** scheduler steps before the run is declared hung */
  maxSteps?: number | undefined;
  /**
   * Replay mode (trace validation): instead of the seeded schedule, `chooser` picks
   * each next task from what it would do, and holds are over whenever the chooser says
   * (a real trace's timing decides, not the emulator's clock).
   */
  chooser?: Chooser | undefined;
  /**
   * Replay mode: the traced guest's send waits for ring space instead of queueing (a Linux
   * driver: vmbus_sendpacket fails with -EAGAIN on a full ring and the driver sleeps and
   * tries again; KMCL's VmbPacketSend queues in the library and returns). A guest-send or
   * g2h notify step then ends only once every packet is in the ring, the scheduler running
   * meanwhile, and each send is written to the trace when its packet enters the ring
   * (src/check/replay.ts). Needs a guest twin with `queued` (device-module.ts).
   */
  guestSendWaits?: boolean | undefined;
  /** overrides the scenario's `devices` (`--devices c`): twins, the C VSP, or the C VSP and a C guest (model.ts DEVICES_MODES) */
  devices?: DevicesMode | undefined;
  /**
   * devices: c: the C VSP built with some of its sources replaced, by their path in the
   * device's recipe (a device author's changed file; a test's unfixed fixture)
   */
  cVspReplace?: Readonly<Record<string, string>> | undefined;
  /** devices: c-linux: the C guest driver built with some of its sources replaced (as cVspReplace) */
  cGuestReplace?: Readonly<Record<string, string>> | undefined;
  /**
   * devices: c-windows: answers the guest's KMCL client gives as a Driver-Verifier-style
   * run injects them (KmclShimOptions.faults, e.g. 'cancel-in-send'), for a test that shows
   * a driver defect only such an answer reaches
   */
  cGuestKmclFaults?: KmclFaults | undefined;
  /**
   * devices: c-windows, test-only: at each host rescind, a control command (a guest-send
   * through the command IOCTL) reaches the rescinded channel's device after the guest's KMCL
   * has suspended and closed its client and before PnP removes the device, as on a real
   * guest where the two are separate threads (devices/sample/c/guest-windows-vm.ts says what
   * is documented and what inferred). By default the removal runs as one: KMCL's part from
   * the driver's own VmbChannelDisable. For a test that shows a driver defect only that
   * order reaches (REVIEW D2); any other devices mode refuses it.
   */
  cGuestRemovalRace?: RemovalRace | undefined;
  /** platform bugs to imitate in this run (faults.ts) */
  faults?: readonly FaultMode[] | undefined;
  /**
   * explore: called once at every save point where the VM runs (before the scheduler's
   * next step), with a handle that keys the run's state and runs VM operations there.
   * 'stop' ends the run at once (its result then says `stopped`).
   */
  atSavePoint?: ((at: number, point: SavePoint) => 'go-on' | 'stop') | undefined;
  /** told how long each VM operation took (bench perf) */
  onVmOpTimed?: ((op: 'save' | 'restore', ms: number) => void) | undefined;
  /**
   * receives each ring's raw bytes at every save and at the end (--dump-rings); `label`
   * is numbered in order and unique within a run (001-save, 002-checkpoint-a, 003-end)
   */
  dumpRing?: ((label: string, ch: number, dir: 'g2h' | 'h2g', bytes: Uint8Array) => void) | undefined;
}

/** What explore can do at a save point (see ExecuteOptions.atSavePoint). */
export interface SavePoint {
  /**
   * Everything that decides how the run goes on from here (state-key.ts). `explain`
   * labels it; `transient`: the key will be compared before the run goes on, so guest
   * memory is keyed by reference rather than copied; `into`: a key no longer needed,
   * whose buffers the new one is built in.
   */
  key(opts?: { explain?: boolean; transient?: boolean; into?: StateKey }): StateKey;
  /** runs a VM operation here, as `inject` would */
  run(op: InjectedOp): void;
  /** the run's objects as they are now (tests change them as a faulty operation would) */
  readonly live: { readonly host: EmulatedHost | null; readonly guest: GuestDriver; readonly memory: GuestMemory };
}

export interface ExecuteResult {
  /** scheduler steps taken: the number of save points */
  steps: number;
  /** the run stopped making progress with work outstanding, or exceeded maxSteps */
  hang: null | { reason: string };
  injected: boolean;
  /** the host the VM ended on */
  host: string;
  /** the fault modes that actually acted in this run */
  faultsFired: FaultMode[];
  /** transactions and queued packets still unfinished when the run ended */
  pendingAtEnd: number;
  /** atSavePoint said 'stop': the run ended there, unfinished */
  stopped: boolean;
  /**
   * devices: c: a C driver broke a rule the shim checks and was stopped there, as Driver
   * Verifier stops the machine; the trace has it as kmcl.violation (a kmcl-misuse finding).
   */
  driverViolation?: string | undefined;
  /**
   * Channels whose saved state was refused at a restore the scenario did not ask to fail
   * (not in its `fail`, no FORCE_NEW_CHANNEL): the VSP or KMCL refused it, the channel fell
   * back to a rescind and re-offer, and what it had saved was abandoned. The trace shows a
   * legal rescind; only the run knows it was not asked for. The checker's not-restored
   * (PropertyChecker.finish), as the model says of the same trace.
   */
  refusedRestores: RefusedRestore[];
}

/** A restore the scenario did not ask to fail, refused for one channel (ExecuteResult.refusedRestores). */
export interface RefusedRestore {
  ch: number;
  /** the VM operation: a restore, a migration, a checkpoint (pulse) or a checkpoint apply */
  op: 'restore' | 'migration' | 'checkpoint' | 'checkpoint apply';
  /** the scheduler steps taken when it was refused (the save point) */
  atStep: number;
}

/** A task the scheduler could run, with the first event it would write (replay mode). */
export interface TaskOption {
  task: number;
  /** for holds: which transaction completes */
  tx: TxId;
  side: 'host' | 'guest';
  /** null: a silent step (a library queue flush) */
  ev: 'pkt.recv' | 'pkt.complete' | 'pkt.completion' | null;
  ch: number;
  dir: 'g2h' | 'h2g';
}

/** What the replay can ask the model at a scheduling point. */
export interface ReplayModel {
  /**
   * Ready deliveries (with the first event each would write) and library queue flushes.
   * The list and its options are the model's, valid until the next call (it refills
   * them rather than allocate a list per scheduler step).
   */
  options(): readonly TaskOption[];
  /** the task that ends the hold of transaction `tx` on that side, if it is held there */
  heldOption(side: 'host' | 'guest', ch: number, tx: TxId): TaskOption | null;
  /** how many of the guest's sends on `ch` wait in its queue behind a full ring */
  guestQueued(ch: number): number;
}

export interface Chooser {
  /** The option to run next, or null to stop and go on with the scenario's next step. */
  choose(model: ReplayModel): TaskOption | null;
  /**
   * Optional (guestSendWaits): the guest's send step on `ch` cannot end, `queued` of its
   * packets still waiting for room that nothing in the trace frees. Either the trace shows
   * the guest giving up the first of them there (`pkt.timeout`, a Linux driver's send
   * timeout): 'gave-up', and the step ends with the waiting sends never sent
   * (GuestDriver.abandonQueued); or the replay diverges (throws).
   */
  sendBlocked?(model: ReplayModel, ch: number, queued: number): 'gave-up';
  /**
   * Optional: a `settle` step of the scenario ended (not the one at its end). The replay
   * ends it where the trace's settle ended (a real job's settle is its drivers quiet for a
   * while, not everything done: src/check/replay.ts, SettleCuts).
   */
  settled?(): void;
}

/**
 * Everything a run needs to go on elsewhere after a migration's save: the blob, and the
 * bench's own state that lives outside the VM. Plain data, so it can cross to another
 * thread (src/run/workers/migrate-threads.ts), where the destination host continues the run.
 */
export interface MigrationHandoff {
  /** index of the step after the migrate step */
  next: number;
  from: string;
  to: string;
  blob: Uint8Array;
  clock: number;
  steps: number;
  migrations: number;
  nextHostTx: Record<string, TxId>;
  checkpoints: Array<[string, Uint8Array]>;
  schedule: number[];
  faultsFired: FaultMode[];
  /** the faults used so far, acted or not (Faults.used); absent in a hand-off written before it: faultsFired */
  faultsUsed?: FaultMode[] | undefined;
  /** where wrong-status's changed completion is (Faults.changedCompletion); absent in a hand-off written before it: unknown */
  faultChange?: ChangedCompletion | null | undefined;
  /** the run's refused restores so far (ExecuteResult.refusedRestores); absent in a hand-off written before them: none */
  refusedRestores?: RefusedRestore[] | undefined;
}

/** The outcome of running part of a scenario: it ended, or it stopped at a migration. */
export type Segment = { kind: 'done'; result: ExecuteResult } | { kind: 'handoff'; handoff: MigrationHandoff };
