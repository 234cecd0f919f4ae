// Trace validation (`bench check`): is every event of an observed trace explained by the
// emulator, in an order the model allows?
//
// This is not a diff of two logs. The scenario runs on the emulator in replay mode: at
// every point where the model has a choice (which side delivers next, when a hold ends,
// whether a queued packet is written now), the choice is the one the observed trace
// implies: the task whose first event is the next unexplained event of its side. Holds
// end when the trace says, not when the emulator's clock does. Each event the model
// writes must then equal the next observed event of the same side (host, guest, bench);
// host and guest may interleave freely between two bench events, because the two files
// of a real run are only ordered by the bench's VM operations.
//
// The first observed event the model cannot explain, or the first model event the trace
// lacks, is the divergence. Its class comes from the properties when the observed trace
// itself breaks one there (a second receive is "duplicated" whatever the model says),
// else from how the two events differ.
//
// The observed trace is read lazily, only as far as the next event of the side the
// model asks about, so memory is bounded by how far apart the host's and the guest's
// events lie in the file, not by the trace's length.

import type { TxId } from '../vmbus/tx-id.ts';
import { executeScenario, type ReplayModel, type TaskOption } from '../scenario/execute.ts';
import { cGuestOf, devicePath, type Scenario } from '../scenario/model.ts';
import { deviceOf } from '../device-api/load.ts';
import type { DeviceControl } from '../device-api/device-module.ts';
import type { TraceSink } from '../trace/sink.ts';
import type { EventBody, TraceEvent } from '../trace/schema.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import { PropertyChecker, statusRuleOf, type DivergenceClass, type PropertyName } from './properties.ts';
import type { ObservedEvent, ObservedSource } from './observed.ts';
import { InputError } from '../errors.ts';
import { fifo, fifoClear, fifoLength, fifoPeek, fifoPush, fifoShift, type Fifo } from '../vmbus/fifo.ts';

export type CheckResult =
  | { verdict: 'pass'; events: number; failedProperties: PropertyName[] }
  | {
      verdict: 'diverge';
      class: DivergenceClass;
      message: string;
      /** null when the divergence is something the trace lacks at its end */
      firstUnexplained: ObservedEvent | null;
      /** what the model would have done there */
      expected: string[];
      failedProperties: PropertyName[];
      events: number;
    };

class Diverged extends Error {
  readonly result: Extract<CheckResult, { verdict: 'diverge' }>;
  constructor(result: Extract<CheckResult, { verdict: 'diverge' }>) {
    super(result.message);
    this.result = result;
  }
}

export interface CheckTraceOptions {
  choices?: Partial<GapChoices> | undefined;
  /**
   * Run the property checker on the observed events (default). Without it the verdict
   * is the same (see checkReplayFirst) but a divergence's class and failed properties
   * are not worked out.
   */
  properties?: boolean | undefined;
  /**
   * What the traced guest's send does when its ring is full (GuestSends). Absent: from the
   * scenario's `devices` (c-linux: `wait`), else `queue`.
   */
  guestSends?: GuestSends | undefined;
}

/**
 * What a guest's send does when the guest-to-host ring has no room: `queue`, as KMCL's
 * VmbPacketSend does (the packet waits in the library and the call returns: the twins,
 * a Windows guest driver), or `wait`, as a Linux guest driver's does (vmbus_sendpacket
 * fails with -EAGAIN on a full ring, and the driver sleeps and tries again until the host
 * has read enough: its send step ends only once every packet is in the ring, and it
 * traces each send as its packet enters the ring).
 */
export type GuestSends = 'queue' | 'wait';

/**
 * The guest's ring-full behaviour a run of `s` had (CheckTraceOptions.guestSends): the C
 * Linux guest's is its device's (linuxGuestSends); the twin, the C Windows guest and a
 * loopback job's client (a KMCL client in the host) queue.
 */
export function guestSendsOf(s: Pick<Scenario, 'devices' | 'topology' | 'device'>): GuestSends {
  return s.topology !== 'loopback' && cGuestOf(s.devices) === 'linux' ? linuxGuestSends(deviceOf(devicePath(s)).control) : 'queue';
}

/** What a device's Linux guest driver's send does on a full ring: its control's `linuxGuest.fullRing`, else `wait`. */
export function linuxGuestSends(control: Pick<DeviceControl, 'linuxGuest'> | undefined): GuestSends {
  return control?.linuxGuest?.fullRing ?? 'wait';
}

/** Where an observed event stands in the trace read (observed.ts `order`, else its line in the one file). */
function placeOf(o: ObservedEvent): number {
  return o.order ?? o.line;
}

export function checkTrace(scenario: Scenario, source: ObservedSource, opts: CheckTraceOptions = {}): CheckResult {
  return new Replay(scenario, source, opts.properties ?? true, opts.guestSends ?? guestSendsOf(scenario)).run(opts.choices);
}

/**
 * checkTrace's result, without the property checker's cost when the trace passes (most
 * traces: a fifth of a long check's time was the checker).
 *
 * A trace the replay explains event for event, field for field, is one the model wrote
 * under some schedule; the model keeps every property under every schedule (explore
 * checks each one, and the fault-mode tests check that no clean run is flagged). On a
 * trace that passes the properties have nothing to add, so the replay runs first without
 * them. Only when it diverges is the trace checked again, from a fresh `open()`, with the
 * properties, whose verdicts name the divergence's class: a diverging result is exactly
 * checkTrace's.
 */
export function checkReplayFirst(scenario: Scenario, open: () => ObservedSource, opts: Omit<CheckTraceOptions, 'properties'> = {}): CheckResult {
  const quick = checkTrace(scenario, open(), { ...opts, properties: false });
  return quick.verdict === 'pass' ? quick : checkTrace(scenario, open(), opts);
}

/**
 * A KMCL client guest's own state before the model's next one: Enabled before Opened, and
 * on a channel whose guest traced its own Enabled (`clients`), Started before Active and
 * Paused before Closed (KMCL suspends a client on its way to Closed): a guest that opens
 * an offered channel (a Linux driver) never enables it, so a Started or Paused of its own
 * is still a wrong state.
 */
function isClientOwnState(o: TraceEvent, m: EventBody, clients: ReadonlySet<number>): boolean {
  if (o.ev !== 'ch.state' || m.ev !== 'ch.state' || o.ch !== m.ch) return false;
  if (o.state === 'Enabled' && m.state === 'Opened') return true;
  return clients.has(o.ch) && ((o.state === 'Started' && m.state === 'Active') || (o.state === 'Paused' && m.state === 'Closed'));
}

/** One line per event, for messages and the `expected` list. */
export function describeEvent(e: EventBody): string {
  const parts: string[] = [e.side, e.ev];
  const o = e as unknown as Record<string, unknown>;
  for (const k of ['ch', 'dir', 'tx', 'state', 'status', 'len', 'digest', 'saveDigest', 'name', 'from', 'to']) {
    if (o[k] !== undefined) parts.push(`${k}=${String(o[k])}`);
  }
  return parts.join(' ');
}

function describeOption(o: TaskOption): string {
  return o.ev === null ? `${o.side} writes a packet it queued (ch=${o.ch})` : `${o.side} ${o.ev} ch=${o.ch} dir=${o.dir} tx=${o.tx}`;
}

/**
 * The fields the trace schema gives meaning that the replay does not compare, each with
 * its reason: the one list of them. Every other field of every event is compared in
 * sameEvent (v, seq and src are stamped by the writer, not part of an event's meaning),
 * and test/check/replay.test.ts changes each field of each event kind in turn.
 */
export const NOT_COMPARED: Readonly<Record<string, string>> = {
  'scenario.begin seed': "the lab run's own seed: the observed events, not a seed, choose the model's schedule",
  'scenario.end seed': "the lab run's own seed: the observed events, not a seed, choose the model's schedule",
  'pkt.save libLen': "KMCL's private LibBuf size: a real VSP cannot see it",
};

/**
 * Whether a model event explains an observed one: the same event with the same fields,
 * as listed per event below (all of them but NOT_COMPARED). One comparison per field, written out, because this runs
 * for every event of the trace (a table walked by field name cost several times more).
 */
function sameEvent(o: TraceEvent, m: EventBody): boolean {
  if (o.ev !== m.ev || o.side !== m.side) return false;
  // Both have the same ev here; TypeScript cannot narrow the pair, so `m` is cast per case.
  switch (o.ev) {
    case 'pkt.send': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.len === n.len && o.digest === n.digest && o.wantCompletion === n.wantCompletion;
    }
    case 'pkt.recv': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.len === n.len && o.digest === n.digest;
    }
    case 'pkt.complete': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.status === n.status && o.len === n.len && o.digest === n.digest;
    }
    case 'pkt.completion': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.status === n.status && o.digest === n.digest;
    }
    case 'pkt.save': {
      // libLen is KMCL's private size: a real VSP cannot see it, so it is not compared.
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.saveLen === n.saveLen && o.saveDigest === n.saveDigest;
    }
    case 'pkt.restore': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.saveDigest === n.saveDigest;
    }
    case 'pkt.fail': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.status === n.status;
    }
    case 'pkt.cancel': {
      const n = m as typeof o;
      return o.ch === n.ch && o.tx === n.tx && o.dir === n.dir && o.status === n.status;
    }
    case 'ch.rescind':
    case 'ch.offer':
      return o.ch === (m as typeof o).ch;

    case 'ch.state': {
      const n = m as typeof o;
      return o.ch === n.ch && o.state === n.state;
    }
    case 'scenario.begin':
    case 'scenario.end':
    case 'vm.checkpoint.begin':
    case 'vm.checkpoint.end':
    case 'vm.checkpoint.apply.begin':
    case 'vm.checkpoint.apply.end':
      return o.name === (m as typeof o).name;
    case 'vm.migrate.begin':
    case 'vm.migrate.end': {
      const n = m as typeof o;
      return o.from === n.from && o.to === n.to;
    }
    default:
      return true; // the VM events without fields (pkt.queued is not matched in order: see readOne)
  }
}

/** The replay is the model's trace sink: model events are compared, never stamped or kept. */
class Replay implements TraceSink {
  private readonly s: Scenario;
  private readonly source: ObservedSource;
  /** the current segment: unexplained observed events read so far, per side */
  private readonly host: Fifo<ObservedEvent> = fifo();
  private readonly guest: Fifo<ObservedEvent> = fifo();
  /** the bench event that ends the segment, once read */
  private boundary: ObservedEvent | null = null;
  /** the segment's end was read (a bench event, or the end of the trace) */
  private segmentRead = false;
  private readonly checker: PropertyChecker;
  /** whether the checker is fed (checkTrace, `properties`) */
  private readonly properties: boolean;
  private consumed = 0;
  /** flushes tried since the last delivery, so a useless flush is not tried forever */
  private readonly flushed = new Set<number>();
  /** Packets read as sent and not yet as received: what a pkt.queued may name. */
  private readonly inFlight = new InFlight();
  private lastOptions: readonly TaskOption[] = [];
  /** the model as the last scheduling point saw it (what WaitingSends asks between them) */
  private lastModel: ReplayModel | null = null;
  private sawScenarioEnd = false;
  /** channels whose guest traced its own Enabled: a KMCL client (the C Windows guest driver), which also traces its own Started */
  private readonly clientChannels = new Set<number>();
  /** guestSends 'wait': the model's sends are matched as their packets enter the ring (WaitingSends) */
  private readonly waits: WaitingSends | null;
  /** the trace's bench.marks the model's steps have not yet ended at */
  private readonly cuts = new SettleCuts();

  constructor(s: Scenario, source: ObservedSource, properties: boolean, guestSends: GuestSends) {
    this.s = s;
    this.source = source;
    this.properties = properties;
    this.checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
    this.waits = guestSends === 'wait' ? new WaitingSends() : null;
  }

  run(choices?: Partial<GapChoices>): CheckResult {
    try {
      this.loadSegment();
      const seed = 0; // the chooser, not a seed, decides every interleaving
      const r = executeScenario(this.s, {
        seed,
        sink: this,
        choices,
        // The model is the twins whatever drivers the traced run had; `devices` says only
        // which guest wrote the trace (guestSends).
        devices: 'twin',
        guestSendWaits: this.waits !== null,
        chooser: { choose: (model) => this.choose(model), sendBlocked: (model, ch, n) => this.sendBlocked(model, ch, n), settled: () => this.cuts.pass() },
      });
      this.waits?.settle(this.lastModel, (m) => this.explainModel(m));
      const extra = this.earliestUnexplained() ?? this.readBoundary() ?? this.source.next();
      if (extra) {
        this.feed(extra);
        throw this.diverge(extra, [], 'the trace goes on after the scenario ended');
      }
      const violations = this.checker.finish(this.sawScenarioEnd ? null : { reason: 'the trace has no scenario.end' });
      if (r.pendingAtEnd > 0 || violations.length > 0) {
        const v = violations[0];
        return {
          verdict: 'diverge',
          class: v?.class ?? 'lost',
          message: v?.message ?? `the model still had ${r.pendingAtEnd} transaction(s) to finish that the trace never shows`,
          firstUnexplained: null,
          expected: this.lastOptions.map(describeOption),
          failedProperties: [...new Set(violations.map((x) => x.property))],
          events: this.consumed,
        };
      }
      return { verdict: 'pass', events: this.consumed, failedProperties: [] };
    } catch (e) {
      if (e instanceof Diverged) return e.result;
      throw e;
    } finally {
      this.source.close();
    }
  }

  // ------------------------------------------------------------ the observed side

  /** Starts the next segment; its events are read on demand. */
  private loadSegment(): void {
    this.cuts.clear();
    fifoClear(this.host);
    fifoClear(this.guest);
    this.boundary = null;
    this.segmentRead = false;
  }

  /** Reads one more event of the segment. False when the segment's end was reached. */
  private readOne(): boolean {
    if (this.segmentRead) return false;
    for (let o = this.source.next(); o !== null; o = this.source.next()) {
      const side = o.event.side;
      if (side === 'bench') {
        // A bench.mark is no VM operation, and the model writes none: it cut the files
        // when they were merged, at the end of a step (SettleCuts), and the order it made
        // is the trace's, which choose() follows (placeOf).
        if (o.event.ev === 'bench.mark') {
          this.feed(o);
          this.cuts.read(placeOf(o));
          continue;
        }
        this.boundary = o;
        this.segmentRead = true;
        return false;
      }
      // pkt.queued says where a packet waited, which the model decides from ring space;
      // the saves show whether it mattered, so it is not matched against the model's
      // order. Its fields are still explained: it names a packet its side sent and the
      // other side has not received (a wrong channel or id passed before, issue 16).
      const e = o.event;
      if (e.ev === 'pkt.send') this.inFlight.sent(e.ch, e.dir, e.tx);
      else if (e.ev === 'pkt.recv') this.inFlight.received(e.ch, e.dir, e.tx);
      else if (e.ev === 'pkt.queued') {
        this.feed(o);
        if (!this.inFlight.has(e.ch, e.dir, e.tx)) {
          throw this.diverge(o, [], `${e.side} says it queued ${e.ch}/${e.dir}/${e.tx}, a packet it has not sent or the peer already received`, 'spurious');
        }
        continue;
      }
      // The model's peers write only packets a reader accepts: a packet the observed
      // reader had to step over is a divergence of its own (the properties name it).
      if (o.event.ev === 'ring.format') {
        this.feed(o);
        throw this.diverge(o, [], 'the reader met a packet of a type or with flags no reader accepts', 'ring-format');
      }
      // The model's drivers keep the KMCL rules: a rule break in the trace is one of its own.
      if (o.event.ev === 'kmcl.violation') {
        this.feed(o);
        throw this.diverge(o, [], 'the driver broke a KMCL rule', 'kmcl-misuse');
      }
      fifoPush(side === 'host' ? this.host : this.guest, o);
      return true;
    }
    this.segmentRead = true;
    return false;
  }

  private readBoundary(): ObservedEvent | null {
    while (this.readOne());
    return this.boundary;
  }

  private feed(o: ObservedEvent): void {
    this.consumed++;
    if (this.properties) this.checker.onEvent(o.event);
    if (o.event.ev === 'scenario.end') this.sawScenarioEnd = true;
  }

  private head(side: 'host' | 'guest'): ObservedEvent | undefined {
    const q = side === 'host' ? this.host : this.guest;
    while (fifoLength(q) === 0 && this.readOne());
    return fifoPeek(q);
  }

  private take(side: 'host' | 'guest'): void {
    this.feed(fifoShift(side === 'host' ? this.host : this.guest)!);
  }

  // ------------------------------------------------------------ the model side

  /** TraceSink: the model wrote `m` (not stamped with v, seq and src, which are not compared). */
  emit(m: EventBody): void {
    const w = this.waits;
    if (w !== null) {
      // A waiting guest traces a send once its packet is in the ring: the model's send is
      // held until the model says whether it queued it (WaitingSends).
      // (First the sends a flush has since put in the ring: they come before `m`.)
      const explain = (x: EventBody): void => this.explainModel(x);
      w.written(this.lastModel, explain);
      if (w.model(m, explain)) return;
    }
    this.explainModel(m);
  }

  /** Explains the model's event `m` by the next observed event of its side. */
  private explainModel(m: EventBody): void {
    if (m.ev === 'pkt.queued') return;
    if (m.side === 'bench') {
      const left = this.earliestUnexplained();
      if (left) {
        this.feed(left);
        throw this.diverge(left, [describeEvent(m)], `the model reached ${m.ev} with this event unexplained`, this.classOfStall());
      }
      const b = this.readBoundary();
      if (!b) {
        throw new Diverged({
          verdict: 'diverge',
          class: m.ev === 'scenario.end' ? 'hang' : 'missing-event',
          message: `the trace ends where the model writes ${m.ev}${m.ev === 'scenario.end' ? ': the run did not finish' : ''}`,
          firstUnexplained: null,
          expected: [describeEvent(m)],
          failedProperties: m.ev === 'scenario.end' ? ['progress'] : [],
          events: this.consumed,
        });
      }
      if (m.ev === 'scenario.begin' && b.event.ev === 'scenario.begin' && b.event.name !== m.name) {
        throw new InputError(`this trace is of scenario "${b.event.name}", not "${m.name}"`, { file: b.file, line: b.line, field: 'name' }, {
          hint: 'give --scenario the scenario the trace was recorded from',
        });
      }
      this.feed(b);
      if (!sameEvent(b.event, m)) {
        throw this.diverge(b, [describeEvent(m)], `the model's next bench event is "${describeEvent(m)}"`, 'missing-event');
      }
      this.loadSegment();
      return;
    }
    const side = m.side;
    let o = this.head(side);
    // A KMCL client as the VM's guest (lab/drivers/guest-windows) traces its own Enable
    // before the Opened the model writes, its own Start before Active and its Suspend before
    // Closed: states a guest that opens an offered channel (the model's, the Linux
    // driver's) does not write.
    // They are the client's own, explained here; the properties still check their order.
    while (o !== undefined && side === 'guest' && m.ev === 'ch.state' && isClientOwnState(o.event, m, this.clientChannels)) {
      if (o.event.ev === 'ch.state' && o.event.state === 'Enabled') this.clientChannels.add(o.event.ch);
      this.take(side);
      o = this.head(side);
    }
    if (!o) {
      throw new Diverged({
        verdict: 'diverge',
        class: classOfMissing(m),
        message: `the model writes "${describeEvent(m)}" but the trace has no such event before ${this.boundary ? `${this.boundary.event.ev} (${this.boundary.file}:${this.boundary.line})` : 'its end'}`,
        firstUnexplained: this.boundary,
        expected: [describeEvent(m)],
        failedProperties: [],
        events: this.consumed,
      });
    }
    this.take(side);
    if (!sameEvent(o.event, m)) throw this.diverge(o, [describeEvent(m)], `the model has "${describeEvent(m)}" here`, this.classOfMismatch(o.event, m));
    // (Set.clear makes a new table even when empty: checked first, it runs per event.)
    if (m.ev !== 'pkt.send' && m.ev !== 'ch.state' && this.flushed.size > 0) this.flushed.clear();
  }

  /** The replay's scheduling decision: the task that explains the next observed event. */
  private choose(model: ReplayModel): TaskOption | null {
    this.lastModel = model;
    this.waits?.settle(model, (m) => this.explainModel(m));
    const options = model.options();
    this.lastOptions = options;
    // The side whose next event comes first in the file is tried first; if nothing
    // explains it, the other side's. What lies past a cut the model's step has not reached
    // the end of happened after that step: not yet (SettleCuts).
    const nextHost = this.head('host');
    const nextGuest = this.head('guest');
    const h = this.cuts.before(nextHost);
    const g = this.cuts.before(nextGuest);
    const hostFirst = h !== undefined && (g === undefined || placeOf(h) < placeOf(g));
    // The guest gave up a send waiting for room: what the trace shows after the give-up
    // came after it, so the model may not run it first (a host read would free the room
    // the driver no longer waits for). The send step stops here (sendBlocked), unless
    // the host has freed room already: then the model writes the packet, as the retrying
    // driver would have, and the give-up is not explained.
    if (g !== undefined && g.event.ev === 'pkt.timeout' && this.waits?.next(g.event.ch)?.tx === g.event.tx) {
      const ch = g.event.ch;
      return options.find((o) => o.ev === null && o.side === 'guest' && o.ch === ch) ?? (hostFirst ? this.explain(model, options, 'host', h) : null);
    }
    const found = hostFirst ? (this.explain(model, options, 'host', h) ?? this.explain(model, options, 'guest', g)) : (this.explain(model, options, 'guest', g) ?? this.explain(model, options, 'host', h));
    if (found) return found;
    // All that is left came after the step's cut: the step ends here (no flush is wanted
    // for events the model may not take yet).
    if (h === undefined && g === undefined && (nextHost !== undefined || nextGuest !== undefined)) return null;
    // Nothing explains the next events yet: perhaps a packet the trace shows arriving is
    // still in the sender's library queue. A flush writes nothing to the trace.
    for (const opt of options) {
      if (opt.ev === null && !this.flushed.has(opt.task)) {
        this.flushed.add(opt.task);
        return opt;
      }
    }
    return null;
  }

  /** The option that writes `o` first, if any (`o` is the next unexplained event of `side`). */
  private explain(model: ReplayModel, options: readonly TaskOption[], side: 'host' | 'guest', o: ObservedEvent | undefined): TaskOption | null {
    if (o === undefined) return null;
    const e = o.event as unknown as { ev: string; ch: number; dir: string; tx: TxId };
    if (e.ev === 'pkt.complete') {
      const held = model.heldOption(side, e.ch, e.tx);
      if (held) return held;
    }
    // A waiting guest's send is written when the flush puts its packet in the ring.
    if (e.ev === 'pkt.send' && this.waits?.next(e.ch)?.tx === e.tx) {
      for (const opt of options) if (opt.ev === null && opt.side === 'guest' && opt.ch === e.ch) return opt;
    }
    for (let i = 0; i < options.length; i++) {
      const opt = options[i]!;
      if (opt.side === side && opt.ev === e.ev && opt.ch === e.ch && opt.dir === e.dir && opt.tx === e.tx) return opt;
    }
    return null;
  }

  /**
   * The model's send step cannot end: `queued` packets wait for room the trace never frees.
   * A Linux driver gives up there once its send timeout passes (pkt.timeout): the trace's
   * give-up of the first waiting packet, with that packet's fields, ends the step (the rest
   * are never sent, and their ids go back: 'gave-up'). The trace has no clock, so that the
   * ring stayed full is what check can know, not for how long: the driver's own timeout
   * is trusted for that. Anything else diverges.
   */
  private sendBlocked(model: ReplayModel, ch: number, queued: number): 'gave-up' {
    this.waits?.settle(model, (m) => this.explainModel(m));
    const waiting = this.waits?.next(ch);
    const g = this.head('guest');
    if (waiting && g && g.event.ev === 'pkt.timeout' && g.event.ch === ch && g.event.dir === 'g2h' && g.event.tx === waiting.tx) {
      this.take('guest');
      if (g.event.len !== waiting.len || g.event.digest !== waiting.digest) {
        throw this.diverge(g, [`guest pkt.timeout ch=${ch} dir=g2h tx=${String(waiting.tx)} len=${waiting.len} digest=${waiting.digest}`], `the guest gave up a packet other than the one its send waits with`, 'payload');
      }
      this.waits!.abandon(ch);
      // The job cut the files right after the failed write: the step ends at that cut.
      this.cuts.pass();
      return 'gave-up';
    }
    const why = `the guest's send step on channel ${ch} still has ${queued} packet(s) waiting for room in its ring, and the trace shows the host freeing none: a send that waits for room resumes only once the host has read enough`;
    const h = this.head('host');
    const hostReads = h !== undefined && h.event.ev === 'pkt.recv' && h.event.ch === ch && h.event.dir === 'g2h';
    if (waiting && !hostReads && g && g.event.ev === 'pkt.send' && g.event.ch === ch && g.event.tx === waiting.tx) {
      // The guest traced the send anyway, and the host reads nothing more of its ring
      // here: the packet went in without room for it. (Were the host reading on, one it
      // skipped would be the trace's fault: lost, below.)
      this.feed(g);
      throw this.diverge(g, [], `${why}, yet it traced sending ${ch}/g2h/${String(waiting.tx)}`, 'spurious');
    }
    const left = this.earliestUnexplained() ?? this.readBoundary();
    if (left) {
      this.feed(left);
      throw this.diverge(left, [], why, this.classOfStall());
    }
    throw new Diverged({ verdict: 'diverge', class: 'hang', message: `${why} before the trace ends`, firstUnexplained: null, expected: [], failedProperties: ['progress'], events: this.consumed });
  }

  private earliestUnexplained(): ObservedEvent | undefined {
    const h = this.head('host');
    const g = this.head('guest');
    if (h && g) return placeOf(h) <= placeOf(g) ? h : g;
    return h ?? g;
  }

  // Classes name what the observed trace did relative to the model. Where the model and
  // the trace part, either the trace lacks what the model writes next (lost, not-saved,
  // not-restored, state-order, missing-event: classOfMissing) or it shows an event the
  // model does not write (spurious). Which one is decided by looking ahead in the rest of
  // the observed segment (up to the next bench event): a model event the segment never
  // shows was lost; one it shows later means the event before it is extra.

  /** Whether the rest of the segment on `side` has an event like `k` (same event and transaction). */
  private segmentHas(k: { side: 'host' | 'guest'; ev: string; ch?: number; dir?: string; tx?: TxId }): boolean {
    this.readBoundary();
    const q = k.side === 'host' ? this.host : this.guest;
    for (let i = q.head; i < q.items.length; i++) {
      const e = q.items[i]!.event as unknown as { ev: string; ch?: number; dir?: string; tx?: TxId; state?: string };
      if (e.ev === k.ev && e.ch === k.ch && e.dir === k.dir && e.tx === k.tx) return true;
    }
    return false;
  }

  /** A delivery the model could still make that the rest of the segment never shows, if any. */
  private lostOption(): TaskOption | null {
    for (const opt of this.lastOptions) {
      if (opt.ev !== null && !this.segmentHas(opt as { side: 'host' | 'guest'; ev: string; ch: number; dir: string; tx: TxId })) return opt;
    }
    return null;
  }

  /** The model stopped with observed events left: lost if it could still write something the segment lacks. */
  private classOfStall(): DivergenceClass {
    const lost = this.lostOption();
    return lost ? classOfMissing(lost as unknown as EventBody) : 'spurious';
  }

  /** The model writes `m` where the trace has `o`. */
  private classOfMismatch(o: TraceEvent, m: EventBody): DivergenceClass {
    // A give-up where the model's send went in (the host had freed room, or nothing of
    // the guest's waited): one the model does not write.
    if (o.ev === 'pkt.timeout') return 'spurious';
    const same = classOfFieldMismatch(o, m);
    if (same !== null) return same;
    const k = m as unknown as { side: 'host' | 'guest'; ev: string; ch?: number; dir?: string; tx?: TxId };
    if (!this.segmentHas(k)) return classOfMissing(m);
    // The model went on (to a state change of its own, or the next step's send or rescind)
    // past a delivery it could make that the trace never shows: that one was lost.
    if (m.ev === 'ch.state' || m.ev === 'pkt.send' || m.ev === 'ch.rescind') {
      const lost = this.lostOption();
      if (lost) return classOfMissing(lost as unknown as EventBody);
    }
    // The model's event comes later: the trace has an extra one here.
    return o.ev === 'ch.state' ? 'state-order' : 'spurious';
  }

  /**
   * The first unexplained event of the other side than `o`'s that comes before `o` in the
   * file and breaks a property, fed to the property checker in file order; undefined when
   * there is none (or the checker is not fed: checkReplayFirst's first pass).
   */
  private earlierBreak(o: ObservedEvent): ObservedEvent | undefined {
    if (!this.properties || (o.event.side !== 'host' && o.event.side !== 'guest')) return undefined;
    const q = o.event.side === 'host' ? this.guest : this.host;
    for (let i = q.head; i < q.items.length; i++) {
      const e = q.items[i]!;
      if (placeOf(e) >= placeOf(o)) return undefined;
      this.checker.onEvent(e.event);
      if (this.checker.violations.some((x) => x.seq === e.event.seq)) return e;
    }
    return undefined;
  }

  private diverge(at: ObservedEvent, expected: string[], why: string, fallback: DivergenceClass = 'spurious'): Diverged {
    // An event of the other side, earlier in the file and not yet explained, that itself
    // breaks a property (a receive of what was never sent, a second one) is where the trace
    // went wrong: the model, unable to explain it, went on without that side, and parted
    // from the trace only later (test/check/divergence-classes.test.ts).
    const early = this.earlierBreak(at);
    const o = early ?? at;
    // The properties, run on the observed trace so far, name the class when the trace
    // itself breaks one at this event.
    const v = this.checker.violations.find((x) => x.seq === o.event.seq);
    if (early) why = 'the model cannot explain it, and went on without it';
    const alternatives = expected.length > 0 ? expected : this.lastOptions.filter((x) => x.ev !== null).map(describeOption);
    return new Diverged({
      verdict: 'diverge',
      class: v?.class ?? fallback,
      message: `${o.file}:${o.line}: "${describeEvent(o.event)}" is not explained: ${why}${v ? ` (${v.message})` : ''}`,
      firstUnexplained: o,
      expected: alternatives,
      failedProperties: [...new Set(this.checker.violations.map((x) => x.property))],
      events: this.consumed,
    });
  }
}

function classOfMissing(m: EventBody): DivergenceClass {
  switch (m.ev) {
    case 'pkt.save':
      return 'not-saved';
    case 'pkt.restore':
      return 'not-restored';
    case 'ch.state':
      return 'state-order';
    case 'pkt.recv':
    case 'pkt.complete':
    case 'pkt.completion':
    // The model still had the transaction in flight at a rescind: its end (the completion,
    // or the cancel itself) is what the trace lacks.
    case 'pkt.cancel':
      return 'lost';
    default:
      return 'missing-event';
  }
}

/** The same event of the same transaction with other fields: which field says the class; null otherwise. */
function classOfFieldMismatch(o: TraceEvent, m: EventBody): DivergenceClass | null {
  if (o.ev !== m.ev) return null;
  const a = o as unknown as Record<string, unknown>;
  const b = m as unknown as Record<string, unknown>;
  if (o.ev === 'ch.state') return 'state-order';
  if (a.tx === b.tx && a.ch === b.ch && a.dir === b.dir) {
    if (o.ev === 'pkt.restore' || (o.ev === 'pkt.save' && a.saveDigest !== b.saveDigest)) return 'savebuf-mismatch';
    if (a.status !== b.status) return 'status';
    if (a.digest !== b.digest || a.len !== b.len) return 'payload';
    if (o.ev === 'pkt.save') return 'not-saved';
  }
  return null;
}

/**
 * The trace's cuts (bench.mark) the model has not passed, by place. A real job writes one
 * at the end of a step that the model's own step may end elsewhere: a Linux guest's send
 * given up (the host's later reads of the ring came after the give-up), and a `settle`,
 * which on a real VM is the drivers quiet for a while, not everything done: a VSP holding
 * a request longer leaves it outstanding, and the next step's events then race it in
 * files with no shared clock. The emulator's settle runs to quiescence; in the replay it
 * runs only as far as the trace shows before the settle's cut, and what came after the
 * cut is carried into the next steps, which may take it (as the real ones did); unless
 * the next step is a VM operation, whose bench event comes first: then the settle goes on
 * up to that event (execute.ts, settle), as only it can explain what lies before it.
 * Invariant: the model chooses no event placed after the first cut not passed (a task
 * once chosen still writes its events where the trace has them), and a cut is passed when
 * the model's step that made it ends (the give-up; `settled`), a step's end whose cut is
 * not read yet passing the next one read. Nothing is dropped: what the model does not take
 * before a cut it must still explain later, up to the next bench event and scenario.end,
 * as ever (test/check/replay-settle-cut.test.ts). A trace without marks (the emulator's)
 * has no cut, and its settles run as far as the trace explains.
 */
class SettleCuts {
  private readonly places: Fifo<number> = fifo();
  /** steps that ended at a cut not read yet */
  private owed = 0;
  read(place: number): void {
    if (this.owed > 0) this.owed--;
    else fifoPush(this.places, place);
  }
  pass(): void {
    if (fifoLength(this.places) > 0) fifoShift(this.places);
    else this.owed++;
  }
  /** `o` if it lies before the first cut not passed, else undefined */
  before(o: ObservedEvent | undefined): ObservedEvent | undefined {
    const cut = fifoPeek(this.places);
    return o === undefined || cut === undefined || placeOf(o) < cut ? o : undefined;
  }
  /** a bench event ends the segment: every cut was in it */
  clear(): void {
    fifoClear(this.places);
    this.owed = 0;
  }
}

/**
 * The packets of the observed trace sent and not yet received, keyed by channel,
 * direction and id (the direction names the sender). A receive read before its send
 * (host and guest files interleave freely within a segment) cancels the send when it
 * comes. Invariant: both sets hold packets in flight only, so they stay as small as
 * the run's in-flight window, however long the trace.
 */
class InFlight {
  private readonly open = new Set<string>();
  private readonly early = new Set<string>();
  sent(ch: unknown, dir: unknown, tx: unknown): void {
    const k = `${String(ch)}/${String(dir)}/${String(tx)}`;
    if (!this.early.delete(k)) this.open.add(k);
  }
  received(ch: unknown, dir: unknown, tx: unknown): void {
    const k = `${String(ch)}/${String(dir)}/${String(tx)}`;
    if (!this.open.delete(k)) this.early.add(k);
  }
  has(ch: unknown, dir: unknown, tx: unknown): boolean {
    return this.open.has(`${String(ch)}/${String(dir)}/${String(tx)}`);
  }
}

/**
 * guestSends 'wait': the model's guest sends, each matched against the trace when its
 * packet enters the ring, as a Linux guest driver traces it. The twin model traces a send
 * at the call and then, if the ring had no room, pkt.queued: so the latest send is held
 * until the model's next event says which; a queued one waits here until the model's queue
 * on its channel is shorter than this list (a flush wrote it). Invariant: per channel,
 * `waiting` lists exactly the model's queued sends, oldest first, once `settle` has run.
 */
class WaitingSends {
  private held: EventBody | null = null;
  private readonly waiting = new Map<number, Fifo<Extract<EventBody, { ev: 'pkt.send' }>>>();

  /** Takes the model's guest event `m` if it is a send or says a send was queued; false when `m` is for the caller. */
  model(m: EventBody, explain: (m: EventBody) => void): boolean {
    const held = this.held;
    if (held !== null) {
      this.held = null;
      if (m.ev === 'pkt.queued' && held.ev === 'pkt.send' && m.ch === held.ch && m.tx === held.tx && m.dir === held.dir) {
        let q = this.waiting.get(m.ch);
        if (!q) this.waiting.set(m.ch, (q = fifo()));
        fifoPush(q, held);
        return true;
      }
      explain(held);
    }
    if (m.ev === 'pkt.send' && m.side === 'guest') {
      this.held = m;
      return true;
    }
    return false;
  }

  /** Explains the held send (not queued: nothing said so) and each queued send the model has since written to its ring. */
  settle(model: ReplayModel | null, explain: (m: EventBody) => void): void {
    const held = this.held;
    if (held !== null) {
      this.held = null;
      explain(held);
    }
    this.written(model, explain);
  }

  /** Explains each queued send the model has since written to its ring. */
  written(model: ReplayModel | null, explain: (m: EventBody) => void): void {
    if (model === null || this.waiting.size === 0) return;
    for (const [ch, q] of this.waiting) {
      for (let written = fifoLength(q) - model.guestQueued(ch); written > 0; written--) explain(fifoShift(q)!);
    }
  }

  /** The oldest send of `ch` still waiting for room. */
  next(ch: number): { tx: TxId; len: number; digest: string } | undefined {
    const q = this.waiting.get(ch);
    return q ? fifoPeek(q) : undefined;
  }

  /** The guest gave up its waiting sends on `ch` (a send timeout): they will never be written. */
  abandon(ch: number): void {
    this.waiting.delete(ch);
  }
}
