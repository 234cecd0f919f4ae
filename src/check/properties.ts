// The properties every correct run satisfies (src/trace/TRACE-SCHEMA.md), checked online:
// events go in one at a time and nothing is kept but one record per transaction, so
// `bench explore` can check thousands of runs without storing their traces.
//
//   exactly-once-completion  one completion per transaction that asked for one, none without a send
//   exactly-once-delivery    each packet received exactly once across saves and migrations
//   payload                  digests equal end to end (send = recv, complete = completion)
//   saved-and-restored       a host->guest transaction awaiting completion at a save is saved,
//                            and restored with an identical SaveBuf digest, before it completes
//                            (a checkpoint's save that the host objects go on from, ch.state
//                            Paused -> Started with no new object, needs no restore)
//   status-rule              completion status follows the protocol's rule
//   state-machine            channel states follow the KMCL state machine
//   checkpoint               applying a checkpoint rolls every transaction back to its state then
//   progress                 the run finished (no hang)
//   kmcl-rules               no driver breaks a KMCL rule (kmcl.violation; vmbus/kmcl-rules.ts)
//   ring-format              every packet a ring's reader meets is one it accepts (known type, flags);
//                            the reader steps over any other (ring.format event) and this names it
//
// Across a rescind and re-offer (ch.rescind, ch.offer; PROTOCOL.md "Rescind and re-offer")
// exactly-once means: a transaction in flight on the rescinded instance is received at
// most once and never after on the new one, and its sender ends it exactly once: with its
// completion, or with pkt.cancel (only after the rescind, never beside a completion),
// unless its only state was a saved one the restore abandoned, which the rescind ends.
// A guest's close of the channel (its `ch.state` Closed, without a rescind: a scenario's
// guest-close; PROTOCOL.md "Guest close") ends what is in flight the same way: from then
// on each side may cancel its transactions, and nothing sent before it is received after.

import { nextTxId, type TxId } from '../vmbus/tx-id.ts';
import type { TraceEvent, Dir } from '../trace/schema.ts';
import type { StatusRule } from '../device-api/device-module.ts';
import { deviceOf } from '../device-api/load.ts';
import type { Scenario } from '../scenario/model.ts';
import { devicePath } from '../scenario/devices-mode.ts';
import type { RefusedRestore } from '../scenario/execute-types.ts';
import { TransactionTable } from '../vmbus/trans-table.ts';

export type DivergenceClass =
  | 'lost'
  | 'duplicated'
  | 'spurious'
  | 'payload'
  | 'status'
  | 'not-saved'
  | 'not-restored'
  | 'savebuf-mismatch'
  | 'state-order'
  | 'missing-event'
  | 'hang'
  | 'ring-format'
  | 'kmcl-misuse';

export type PropertyName =
  | 'exactly-once-completion'
  | 'exactly-once-delivery'
  | 'payload'
  | 'saved-and-restored'
  | 'status-rule'
  | 'state-machine'
  | 'checkpoint'
  | 'progress'
  | 'ring-format'
  | 'kmcl-rules';

export interface Violation {
  property: PropertyName;
  class: DivergenceClass;
  /** seq of the event that showed it; null for violations found at the end */
  seq: number | null;
  message: string;
}

interface TxRecord {
  /** when the record was made: reports list transactions in this order (the order they were sent) */
  born: number;
  tx: TxId;
  sends: number;
  sendDigest: string;
  len: number;
  wantCompletion: boolean;
  recvs: number;
  recvDigest: string | null;
  completes: number;
  completeStatus: string | null;
  completeDigest: string | null;
  completions: number;
  /** SaveBuf digest from the last save that covered it, while waiting for its restore */
  savedDigest: string | null;
  restoredAfterSave: boolean;
  /** in flight when its channel was rescinded (ch.rescind) */
  orphaned: boolean;
  /** saved and not restored when its channel was rescinded: its saved state was abandoned, which ends it */
  abandoned: boolean;
  /** its sender ended it with pkt.cancel */
  cancelled: boolean;
}

/**
 * Legal `ch.state` transitions per side; '' is "no state yet" (a new host object). The
 * host's KMCL runs Started before PostStarted (Active); the Linux-style guest has no
 * Started (a KMCL client does, and Enabled before Opened). A restored host channel may skip Opened (the `restoreCallbacks` choice).
 */
const TRANSITIONS: Record<'host' | 'guest', Record<string, readonly string[]>> = {
  host: {
    '': ['Enabled'],
    // (Enabled -> Enabled: a channel offered and never opened, torn down by a save, then its new object.)
    Enabled: ['Opened', 'Started', 'Disabled', 'Enabled'],
    Opened: ['Started', 'Closed'],
    Started: ['Active'],
    Active: ['Paused', 'Closed'],
    // After a save the host's objects are gone; the next ones start at Enabled.
    Paused: ['Started', 'Closed', 'Disabled', 'Enabled'],
    // (Closed -> Enabled: the torn-down objects of a save are followed by new ones.)
    Closed: ['Opened', 'Disabled', 'Enabled'],
    Disabled: ['Enabled'],
  },
  guest: {
    // A Windows KMCL client (guest-windows, a loopback job's client) traces its own Enable
    // and Start: Enabled -> Opened -> Started -> Active.
    '': ['Opened', 'Enabled'],
    Enabled: ['Opened'],
    Opened: ['Active', 'Started', 'Closed'],
    Started: ['Active'],
    Active: ['Paused', 'Closed'],
    Paused: ['Active', 'Closed'],
    // (Closed -> Enabled: a Windows client's channel reoffered is a new device, which enables its new client.)
    Closed: ['Opened', 'Enabled'],
  },
};

/**
 * Transactions that finished (received, and completed if they asked to be), per channel
 * and direction: every tx below `below`, plus `above` for those that finished out of
 * order. Finished records are dropped from the table, so memory follows the number of
 * transactions in flight, not the length of the trace; a late event for a finished
 * transaction is still recognised as a duplicate.
 */
interface Finished {
  below: TxId;
  above: Set<TxId>;
}

/**
 * One channel and direction. Records are found by number (channel, then direction, then
 * tx) rather than by a `ch/dir/tx` string: building that key for every event cost more
 * than the rest of the checking. The string is built only for messages.
 */
interface Lane {
  ch: number;
  dir: Dir;
  /** Open records by tx (a table made for consecutive ids: the checker looks one up per event). */
  open: TransactionTable<TxRecord>;
  /** null until the first transaction of the lane finishes */
  finished: Finished | null;
}

/** The lanes of one channel, by direction. */
interface ChannelLanes {
  g2h: Lane;
  h2g: Lane;
}

/**
 * The h2g transactions awaiting completion when a save began, in the order they were
 * sent, as (channel, tx) pairs in one flat list: [ch0, tx0, ch1, tx1, ...]. Explore
 * saves at every save point with hundreds awaiting; an object per pair was a twentieth
 * of what it allocated.
 */
type AwaitingList = TxId[];

type Snapshot = { channels: Map<number, ChannelLanes>; awaitingAtSave: AwaitingList };

const keyOf = (ch: number, dir: Dir, tx: TxId): string => `${ch}/${dir}/${tx}`;

/** A new save begins: the record is neither saved nor restored by it yet. */
function unmarkSave(r: TxRecord): void {
  r.savedDigest = null;
  r.restoredAfterSave = false;
}

export type { StatusRule };

/**
 * The status rule of a scenario's device (its module's `statusRule`), or null when the
 * device is opaque: then only the statuses' equality end to end (the receiver's completion
 * = the sender's) is checked. The module must be loaded in this thread (load.ts).
 */
export function statusRuleOf(s: Pick<Scenario, 'device'>): StatusRule | null {
  const r = deviceOf(devicePath(s)).statusRule;
  return r === 'opaque' ? null : r;
}

export class PropertyChecker {
  private channels = new Map<number, ChannelLanes>();
  /** records made so far: each record's `born` */
  private born = 0;
  private readonly states = new Map<string, string>();
  readonly violations: Violation[] = [];
  /** h2g transactions awaiting completion when the current save began, in the order they were sent */
  private awaitingAtSave: AwaitingList | null = null;
  private readonly checkpoints = new Map<string, Snapshot>();
  /**
   * The guest's channel states at each checkpoint: applying it revives the guest as it was
   * then (a channel it had closed is closed again, to be opened anew), with no event.
   */
  private readonly guestStatesAt = new Map<string, Map<string, string>>();
  /**
   * The records as they were at a checkpoint's first rescind (a FORCE_NEW_CHANNEL channel
   * offered anew by the checkpoint's restore, runningCheckpoint pulse): the checkpoint holds
   * the VM as saved, before that rescind, and applying it puts that state back.
   */
  private beforeRescind: Snapshot | null = null;
  /**
   * While a checkpoint is being taken: the host channels that started again (ch.state
   * Started) and those that showed a new host object (ch.state Enabled, or a pkt.restore).
   * A channel that started again without a new object went on from its save on the same
   * objects (runningCheckpoint save-and-continue): what it saved is still its own, and no
   * restore follows; so did one that showed no state at all (`touched`: offered and not
   * opened, it never flows). Any other is judged as restored onto new objects (pulse). Null
   * outside a checkpoint.
   */
  private takingCheckpoint: { restarted: Set<number>; renewed: Set<number>; touched: Set<number> } | null = null;
  private readonly limit: number;
  private readonly statusRule: StatusRule | null;

  /**
   * `statusRule`: the device's rule for the status its receiver completes a transaction
   * with (statusRuleOf); null or absent checks none (`--properties-only`, an opaque device).
   */
  constructor(opts: { maxViolations?: number; statusRule?: StatusRule | null } = {}) {
    this.limit = opts.maxViolations ?? 100;
    this.statusRule = opts.statusRule ?? null;
  }

  private fail(property: PropertyName, cls: DivergenceClass, seq: number | null, message: string): void {
    if (this.violations.length < this.limit) this.violations.push({ property, class: cls, seq, message });
  }

  private lane(ch: number, dir: Dir): Lane {
    let c = this.channels.get(ch);
    if (c === undefined) {
      c = { g2h: { ch, dir: 'g2h', open: new TransactionTable(), finished: null }, h2g: { ch, dir: 'h2g', open: new TransactionTable(), finished: null } };
      this.channels.set(ch, c);
    }
    return dir === 'g2h' ? c.g2h : c.h2g;
  }

  private isFinished(l: Lane, tx: TxId): boolean {
    const f = l.finished;
    return f !== null && (tx < f.below || f.above.has(tx));
  }

  /** Drops a record once nothing more may happen to it (see Finished). */
  private maybeFinish(l: Lane, r: TxRecord): void {
    if (r.orphaned) {
      // Rescinded in flight: received or not, it is over once its sender has ended it.
      if (r.wantCompletion && r.completions === 0 && !r.cancelled && !r.abandoned) return;
    } else {
      if (r.recvs === 0 || (r.wantCompletion && r.completions === 0)) return;
      if (r.savedDigest !== null && !r.restoredAfterSave) return;
    }
    const tx = r.tx;
    l.open.delete(tx);
    let f = l.finished;
    if (f === null) l.finished = f = { below: 1, above: new Set() };
    if (tx === f.below) {
      f.below = nextTxId(f.below);
      while (f.above.delete(f.below)) f.below = nextTxId(f.below);
    } else if (tx > f.below) {
      f.above.add(tx);
    }
  }

  /** Every lane, channel by channel. */
  private *lanes(): Iterable<Lane> {
    for (const c of this.channels.values()) {
      yield c.g2h;
      yield c.h2g;
    }
  }

  /** Every open record, in the order the transactions were sent. */
  private openRecords(): Array<{ lane: Lane; r: TxRecord }> {
    const out: Array<{ lane: Lane; r: TxRecord }> = [];
    for (const lane of this.lanes()) lane.open.forEach((r) => out.push({ lane, r }));
    return out.sort((a, b) => a.r.born - b.r.born);
  }

  private late(e: { ch: number; dir: Dir; tx: TxId; seq: number; ev: string }): void {
    this.fail(e.ev === 'pkt.send' ? 'exactly-once-delivery' : e.ev === 'pkt.recv' ? 'exactly-once-delivery' : 'exactly-once-completion',
      'duplicated', e.seq, `${keyOf(e.ch, e.dir, e.tx)}: ${e.ev} after the transaction had finished`);
  }

  onEvent(e: TraceEvent): void {
    switch (e.ev) {
      case 'pkt.send': {
        const l = this.lane(e.ch, e.dir);
        if (this.isFinished(l, e.tx)) return this.late(e);
        const r = l.open.get(e.tx);
        if (r) {
          r.sends++;
          this.fail('exactly-once-delivery', 'duplicated', e.seq, `${keyOf(e.ch, e.dir, e.tx)} sent twice`);
          return;
        }
        l.open.set(e.tx, {
          born: this.born++, tx: e.tx, sends: 1, sendDigest: e.digest, len: e.len, wantCompletion: e.wantCompletion, recvs: 0,
          recvDigest: null, completes: 0, completeStatus: null, completeDigest: null, completions: 0, savedDigest: null, restoredAfterSave: false,
          orphaned: false, abandoned: false, cancelled: false,
        });
        return;
      }
      case 'pkt.recv': {
        const l = this.lane(e.ch, e.dir);
        const r = l.open.get(e.tx);
        if (!r) {
          if (this.isFinished(l, e.tx)) return this.late(e);
          return this.fail('exactly-once-delivery', 'spurious', e.seq, `${keyOf(e.ch, e.dir, e.tx)} received but never sent`);
        }
        r.recvs++;
        if (r.recvs > 1) return this.fail('exactly-once-delivery', 'duplicated', e.seq, `${keyOf(e.ch, e.dir, e.tx)} received ${r.recvs} times`);
        r.recvDigest = e.digest;
        if (e.digest !== r.sendDigest) this.fail('payload', 'payload', e.seq, `${keyOf(e.ch, e.dir, e.tx)} received digest ${e.digest}, sent ${r.sendDigest}`);
        this.maybeFinish(l, r);
        return;
      }
      case 'pkt.complete': {
        const l = this.lane(e.ch, e.dir);
        const r = l.open.get(e.tx);
        if (!r || r.recvs === 0) {
          if (!r && this.isFinished(l, e.tx)) return this.late(e);
          // Classed by what the trace did: a transaction never sent has a spurious complete;
          // one sent whose receiver completes it unreceived lost its receive (the receiver
          // writes both, in order).
          if (!r) return this.fail('exactly-once-completion', 'spurious', e.seq, `${keyOf(e.ch, e.dir, e.tx)} completed but never sent`);
          return this.fail('exactly-once-delivery', 'lost', e.seq, `${keyOf(e.ch, e.dir, e.tx)} completed but its receive is missing`);
        }
        r.completes++;
        if (r.completes > 1) {
          return this.fail('exactly-once-completion', 'duplicated', e.seq, `${keyOf(e.ch, e.dir, e.tx)} completed ${r.completes} times by the receiver`);
        }
        r.completeStatus = e.status;
        r.completeDigest = e.digest;
        // (statusHex formats each status once: a run uses only a few.)
        const expected = this.statusRule === null ? e.status : this.statusRule(e.tx, r.recvDigest === r.sendDigest);
        if (e.status !== expected) this.fail('status-rule', 'status', e.seq, `${keyOf(e.ch, e.dir, e.tx)} completed with ${e.status}, the protocol says ${expected}`);
        return;
      }
      case 'pkt.completion': {
        const l = this.lane(e.ch, e.dir);
        const r = l.open.get(e.tx);
        if (!r && this.isFinished(l, e.tx)) return this.late(e);
        if (!r || !r.wantCompletion) return this.fail('exactly-once-completion', 'spurious', e.seq, `completion for ${keyOf(e.ch, e.dir, e.tx)}, which asked for none`);
        const key = (): string => keyOf(e.ch, e.dir, e.tx);
        if (r.cancelled) return this.fail('exactly-once-completion', 'duplicated', e.seq, `${key()} got a completion after its sender cancelled it`);
        r.completions++;
        if (r.completions > 1) return this.fail('exactly-once-completion', 'duplicated', e.seq, `${key()} got ${r.completions} completions`);
        // The sender saw a completion the trace never shows the receiver making: the
        // receiver's complete is missing (lost) at this point.
        if (r.completes === 0) return this.fail('exactly-once-completion', 'lost', e.seq, `${key()} got a completion, but the receiver's complete is missing`);
        if (e.status !== r.completeStatus) this.fail('status-rule', 'status', e.seq, `${key()} completion status ${e.status}, the receiver sent ${r.completeStatus}`);
        if (e.digest !== r.completeDigest) this.fail('payload', 'payload', e.seq, `${key()} completion digest ${e.digest}, the receiver sent ${r.completeDigest}`);
        if (r.savedDigest !== null && !r.restoredAfterSave) {
          this.fail('saved-and-restored', 'not-restored', e.seq, `${key()} completed after a save without being restored`);
        }
        this.maybeFinish(l, r);
        return;
      }
      case 'pkt.save': {
        const l = this.lane(e.ch, e.dir);
        const r = l.open.get(e.tx);
        if (!r && this.isFinished(l, e.tx)) return this.late(e);
        if (!r) return this.fail('saved-and-restored', 'spurious', e.seq, `saved ${keyOf(e.ch, e.dir, e.tx)}, which was never sent`);
        r.savedDigest = e.saveDigest;
        r.restoredAfterSave = false;
        return;
      }
      case 'pkt.restore': {
        const l = this.lane(e.ch, e.dir);
        const r = l.open.get(e.tx);
        if (!r && this.isFinished(l, e.tx)) return this.late(e);
        if (!r) return this.fail('saved-and-restored', 'spurious', e.seq, `restored ${keyOf(e.ch, e.dir, e.tx)}, which was never sent`);
        if (r.savedDigest === null) return this.fail('saved-and-restored', 'not-saved', e.seq, `restored ${keyOf(e.ch, e.dir, e.tx)}, but its save is missing`);
        if (r.restoredAfterSave) return this.fail('saved-and-restored', 'duplicated', e.seq, `${keyOf(e.ch, e.dir, e.tx)} restored twice from one save`);
        if (e.saveDigest !== r.savedDigest) {
          this.fail('saved-and-restored', 'savebuf-mismatch', e.seq, `${keyOf(e.ch, e.dir, e.tx)} restored SaveBuf ${e.saveDigest}, saved ${r.savedDigest}`);
        }
        r.restoredAfterSave = true;
        this.takingCheckpoint?.renewed.add(e.ch);
        this.maybeFinish(l, r);
        return;
      }
      case 'ch.state': {
        if (e.side === 'host' && this.takingCheckpoint) {
          this.takingCheckpoint.touched.add(e.ch);
          if (e.state === 'Started') this.takingCheckpoint.restarted.add(e.ch);
          else if (e.state === 'Enabled') this.takingCheckpoint.renewed.add(e.ch);
        }
        const key = `${e.side}/${e.ch}`;
        const from = this.states.get(key) ?? '';
        if (!(TRANSITIONS[e.side][from] ?? []).includes(e.state)) {
          this.fail('state-machine', 'state-order', e.seq, `${key} went ${from || '(new)'} -> ${e.state}`);
        }
        this.states.set(key, e.state);
        // The guest closed the channel: what is in flight is orphaned, as at a rescind
        // (whose own guest Closed comes after ch.rescind and finds it done already).
        if (e.side === 'guest' && e.state === 'Closed') this.rescind(e.ch, true);
        return;
      }
      case 'ch.rescind':
        this.rescind(e.ch);
        return;
      case 'ch.offer':
        // A new channel object: its states start again.
        this.states.delete(`host/${e.ch}`);
        return;
      case 'pkt.cancel': {
        const l = this.lane(e.ch, e.dir);
        const r = l.open.get(e.tx);
        const key = keyOf(e.ch, e.dir, e.tx);
        if (!r) {
          if (this.isFinished(l, e.tx)) return this.fail('exactly-once-completion', 'duplicated', e.seq, `${key} cancelled after it had ended`);
          return this.fail('exactly-once-completion', 'spurious', e.seq, `${key} cancelled but never sent`);
        }
        if (r.cancelled) return this.fail('exactly-once-completion', 'duplicated', e.seq, `${key} cancelled twice`);
        if (r.completions > 0) return this.fail('exactly-once-completion', 'duplicated', e.seq, `${key} cancelled after its completion`);
        if (!r.orphaned) return this.fail('exactly-once-completion', 'spurious', e.seq, `${key} cancelled, but channel ${e.ch} was neither rescinded nor closed by the guest since it was sent`);
        r.cancelled = true;
        this.maybeFinish(l, r);
        return;
      }
      case 'pkt.timeout': {
        // A give-up: the packet never entered the ring, so its id must not be in flight
        // (sent and not ended). A receive of it after this is one of a packet never sent.
        const l = this.lane(e.ch, e.dir);
        if (l.open.has(e.tx)) return this.fail('exactly-once-delivery', 'spurious', e.seq, `${keyOf(e.ch, e.dir, e.tx)} given up (pkt.timeout) after it was sent`);
        return;
      }
      case 'kmcl.violation':
        this.fail('kmcl-rules', 'kmcl-misuse', e.seq,
          `${e.side} ch ${e.ch}: ${e.call}${e.packet ? ` (packet ${e.packet})` : ''} broke KMCL rule ${e.rule}: ${e.message}`);
        return;
      case 'ring.format':
        this.fail('ring-format', 'ring-format', e.seq,
          `${e.side} ch ${e.ch} ${e.dir}: the packet at offset ${e.offset} of the ring's data has type 0x${e.type.toString(16)}, flags 0x${e.flags.toString(16)}, which no reader accepts (skipped)`);
        return;
      case 'vm.checkpoint.begin':
        this.takingCheckpoint = { restarted: new Set(), renewed: new Set(), touched: new Set() };
        this.beginSave();
        return;
      case 'vm.save.begin':
      case 'vm.migrate.begin':
        this.beginSave();
        return;
      case 'vm.checkpoint.end': {
        this.endSave(e.seq);
        // The checkpoint holds what was saved: applying it must restore that.
        this.checkpoints.set(e.name, this.beforeRescind ?? this.snapshot());
        this.guestStatesAt.set(e.name, new Map([...this.states].filter(([k]) => k.startsWith('guest/'))));
        this.beforeRescind = null;
        const taking = this.takingCheckpoint;
        this.takingCheckpoint = null;
        // (A channel offered and not opened never flows: a save that goes on leaves it
        // without a state change at all, and it goes on as one that started again.)
        const continued = (ch: number): boolean => taking !== null && !taking.renewed.has(ch) && (taking.restarted.has(ch) || !taking.touched.has(ch));
        this.goOnFromSave(continued);
        // A channel restored onto new host objects (pulse) must have restored all it saved.
        this.checkRestored(e.seq, continued);
        return;
      }
      case 'vm.save.end':
      case 'vm.migrate.end':
        this.endSave(e.seq);
        // A migration restores onto new host objects before it ends.
        if (e.ev !== 'vm.save.end') this.checkRestored(e.seq);
        return;
      case 'vm.restore.begin':
        this.newHostObjects();
        return;
      case 'vm.restore.end':
        this.checkRestored(e.seq);
        return;
      case 'vm.checkpoint.apply.begin': {
        const snap = this.checkpoints.get(e.name);
        if (!snap) return this.fail('checkpoint', 'missing-event', e.seq, `checkpoint "${e.name}" applied but never taken`);
        // Everything after the checkpoint never happened: go back to the records then.
        const copy = this.cloneSnapshot(snap);
        this.channels = copy.channels;
        this.awaitingAtSave = copy.awaitingAtSave;
        for (const l of this.lanes()) l.open.forEachUnordered((r) => (r.restoredAfterSave = false));
        for (const [k, v] of this.guestStatesAt.get(e.name) ?? []) this.states.set(k, v);
        this.newHostObjects();
        return;
      }
      case 'vm.checkpoint.apply.end':
        this.checkRestored(e.seq);
        return;
      default:
        return;
    }
  }

  /**
   * Channel `ch`'s instance is rescinded: what is in flight on it now is orphaned (see the
   * header). A record saved and not restored has lost its only state with the restore the
   * rescind replaces: it ends here. `byGuest`: the guest closed the channel (its Closed),
   * which ends what is in flight but not a saved state only the host can abandon: a record
   * still waiting for its restore keeps waiting (and is not-restored if none comes).
   */
  private rescind(ch: number, byGuest = false): void {
    if (!byGuest && this.takingCheckpoint !== null && this.beforeRescind === null) this.beforeRescind = this.snapshot();
    const c = this.channels.get(ch);
    if (!c) return;
    for (const l of [c.g2h, c.h2g]) {
      const open: TxRecord[] = [];
      l.open.forEachUnordered((r) => open.push(r));
      for (const r of open) {
        if (byGuest && r.savedDigest !== null && !r.restoredAfterSave) continue;
        r.orphaned = true;
        if (r.savedDigest !== null && !r.restoredAfterSave) r.abandoned = true;
        this.maybeFinish(l, r);
      }
    }
  }

  private beginSave(): void {
    // The last save's list is read no more (a checkpoint's snapshot holds a copy): fill it
    // again rather than grow a new one, as explore saves at every save point.
    // (Written over by index and cut to length after: emptying it first would free its storage.)
    const awaiting: AwaitingList = this.awaitingAtSave ?? [];
    let n = 0;
    // A lane is walked by tx. Senders number their transactions in the order they send
    // them, so that is the order the records were made in, and one channel's list is in
    // send order already (explore saves at every save point: no sort of every record).
    // A trace that numbered them otherwise is sorted.
    let lastBorn = -1;
    let inSendOrder = this.channels.size <= 1;
    for (const l of this.lanes()) {
      if (l.dir === 'g2h') {
        l.open.forEachUnordered(unmarkSave);
        continue;
      }
      l.open.forEach((r) => {
        if (r.wantCompletion && r.completions === 0 && !r.orphaned) {
          awaiting[n++] = l.ch;
          awaiting[n++] = r.tx;
          if (r.born < lastBorn) inSendOrder = false;
          lastBorn = r.born;
        }
        unmarkSave(r);
      });
    }
    awaiting.length = n;
    this.awaitingAtSave = inSendOrder ? awaiting : this.bySendOrder(awaiting);
  }

  /** The pairs of `list` in the order their records were made. */
  private bySendOrder(list: AwaitingList): AwaitingList {
    const born = (i: number): number => this.lane(list[i] as number, 'h2g').open.get(list[i + 1]!)!.born;
    const at = Array.from({ length: list.length / 2 }, (_, k) => 2 * k).sort((a, b) => born(a) - born(b));
    return at.flatMap((i) => [list[i]!, list[i + 1]!]);
  }

  /** At the end of a save: each transaction that was awaiting must have been saved. */
  private endSave(seq: number): void {
    this.eachAwaiting((ch, tx, r) => {
      // The guest's completion may have reached the host before the channel paused.
      if (r.completions === 0 && r.savedDigest === null) {
        this.fail('saved-and-restored', 'not-saved', seq, `${keyOf(ch, 'h2g', tx)} was awaiting completion at the save but was not saved`);
      }
    });
  }

  /** Each transaction awaiting at the last save whose record is still open, with it. */
  private eachAwaiting(visit: (ch: number, tx: TxId, r: TxRecord) => void): void {
    const list = this.awaitingAtSave;
    if (!list) return;
    for (let i = 0; i < list.length; i += 2) {
      const r = this.lane(list[i] as number, 'h2g').open.get(list[i + 1]!);
      if (r) visit(list[i] as number, list[i + 1]!, r);
    }
  }

  private newHostObjects(): void {
    for (const key of [...this.states.keys()]) if (key.startsWith('host/')) this.states.delete(key);
  }

  /**
   * The channels `continued(ch)` went on from a checkpoint's save on the same host objects
   * (save-and-continue): each transaction they saved is still in flight on the objects
   * that saved it, not waiting for a restore. Its save mark goes; the checkpoint's
   * snapshot keeps it.
   */
  private goOnFromSave(continued: (ch: number) => boolean): void {
    for (const c of this.channels.values()) {
      const l = c.h2g;
      if (!continued(l.ch)) continue;
      const done: TxRecord[] = [];
      l.open.forEachUnordered((r) => {
        if (r.savedDigest !== null && !r.restoredAfterSave) {
          r.savedDigest = null;
          done.push(r);
        }
      });
      for (const r of done) this.maybeFinish(l, r);
    }
  }

  /** After a restore: each transaction saved (on a channel not `skip`ped) was restored. */
  private checkRestored(seq: number, skip?: (ch: number) => boolean): void {
    this.eachAwaiting((ch, tx, r) => {
      if (skip?.(ch)) return;
      // (A rescinded channel's saved state was abandoned: nothing is restored from it.)
      if (r.completions === 0 && r.savedDigest !== null && !r.restoredAfterSave && !r.orphaned) {
        this.fail('saved-and-restored', 'not-restored', seq, `${keyOf(ch, 'h2g', tx)} was saved but not restored`);
      }
    });
  }

  private snapshot(): Snapshot {
    return this.cloneSnapshot({ channels: this.channels, awaitingAtSave: this.awaitingAtSave ?? [] });
  }
  private cloneSnapshot(s: Snapshot): Snapshot {
    const copyLane = (l: Lane): Lane => {
      const open = new TransactionTable<TxRecord>();
      l.open.forEachUnordered((r, tx) => open.set(tx, { ...r }));
      const finished = l.finished === null ? null : { below: l.finished.below, above: new Set(l.finished.above) };
      return { ch: l.ch, dir: l.dir, open, finished };
    };
    const channels = new Map<number, ChannelLanes>();
    for (const [ch, c] of s.channels) channels.set(ch, { g2h: copyLane(c.g2h), h2g: copyLane(c.h2g) });
    return { channels, awaitingAtSave: s.awaitingAtSave.slice() };
  }

  /** End of the run: everything sent was received, every transaction completed. */
  /**
   * `refused`: restores the run saw refused that its scenario did not ask to fail
   * (ExecuteResult.refusedRestores). Their trace is a legal rescind that abandons what
   * was saved; only the run knows the restore was expected to succeed, so it says so here,
   * as the model says not-restored of the same trace.
   */
  finish(hang: { reason: string } | null, refused: readonly RefusedRestore[] = []): Violation[] {
    if (hang) this.fail('progress', 'hang', null, `the run hung: ${hang.reason}`);
    for (const r of refused) {
      this.fail('saved-and-restored', 'not-restored', null, `channel ${r.ch}'s saved state was refused at a ${r.op} (save point ${r.atStep}) that the scenario did not ask to fail: the channel was rescinded and offered anew, and what it had saved was not restored`);
    }
    for (const { lane, r } of this.openRecords()) {
      const key = keyOf(lane.ch, lane.dir, r.tx);
      if (r.orphaned) {
        // maybeFinish drops every orphaned record its sender ended: this one was not.
        this.fail('exactly-once-completion', 'lost', null, `${key} was in flight when channel ${lane.ch} was rescinded or closed, and its sender never ended it (no completion, no pkt.cancel)`);
        continue;
      }
      if (r.recvs === 0) this.fail('exactly-once-delivery', 'lost', null, `${key} was sent but never received`);
      else if (r.wantCompletion && r.completions === 0) {
        this.fail('exactly-once-completion', 'lost', null, `${key} never got its completion`);
      }
    }
    return this.violations;
  }

  /**
   * For explore (explore.ts): a mark of the checker at a save point, to tell after a VM
   * operation whether the checker would judge the rest of the run as it would have
   * without the operation. The events of a save and restore (pkt.save, pkt.restore,
   * ch.state and vm.*; the caller makes sure there were no others) change only the save
   * marks of records, the channel states, the set awaiting at the last save, the
   * checkpoint snapshots and the violations. So the checker is as it was when:
   *  - no violation was added;
   *  - no record was left saved but not restored, before or after: a record saved and
   *    then restored reads as one never saved to everything after (the next save clears
   *    both marks before either is read), and with none pending on its restore, no
   *    pkt.restore can finish (and drop) a record;
   *  - every channel is in the state it was in (a restore re-creates the host's);
   * while the awaiting set is set afresh by every save before it is read, and the only
   * snapshot added is explore's own checkpoint (the run's key covers a scenario that
   * uses that name too).
   */
  mark(): CheckerMark {
    let settled = true;
    for (const l of this.lanes()) {
      l.open.forEachUnordered((r) => {
        if (r.savedDigest !== null && !r.restoredAfterSave && !r.orphaned) settled = false;
      });
    }
    const states = [...this.states].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).join(';');
    return { violations: this.violations.length, settled, states };
  }
}

export interface CheckerMark {
  violations: number;
  /** no record saved and not yet restored */
  settled: boolean;
  /** every channel's state, in one string */
  states: string;
}

/** Whether a VM operation between two marks left the checker's verdicts to come unchanged (see mark). */
export function sameVerdicts(before: CheckerMark, after: CheckerMark): boolean {
  return before.settled && after.settled && before.violations === after.violations && before.states === after.states;
}
