// The property checker must flag every kind of broken trace, or the passing runs prove
// nothing. Each test breaks a real emulator trace in one way and expects one class.
import { describe, expect, it } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { statusRuleOf, PropertyChecker, sameVerdicts, type DivergenceClass } from '../../src/check/properties.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import type { GapChoices } from '../../src/vmbus/choices.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const suite = await loadScenarioPaths(['bench/scenarios']);

function traceOf(name: string, choices: Partial<GapChoices> = {}): TraceEvent[] {
  const sink = new MemorySink();
  executeScenario(suite.find((s) => s.name === name)!, { seed: 1, sink, choices });
  return sink.events;
}

function classes(events: TraceEvent[]): DivergenceClass[] {
  const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
  for (const e of events) c.onEvent(e);
  return [...new Set(c.finish(null).map((v) => v.class))];
}

const inflight = traceOf('inflight-host-transactions');
const checkpoint = traceOf('checkpoint-apply');
const idx = (events: TraceEvent[], pred: (e: TraceEvent) => boolean): number => {
  const i = events.findIndex(pred);
  if (i < 0) throw new Error('fixture trace lacks the event');
  return i;
};

describe('property checker', () => {
  it('passes the unmodified traces', () => {
    expect(classes(inflight)).toEqual([]);
    expect(classes(checkpoint)).toEqual([]);
  });

  it('flags a lost completion as lost', () => {
    const i = idx(inflight, (e) => e.ev === 'pkt.completion');
    expect(classes(inflight.filter((_, j) => j !== i))).toContain('lost');
  });

  it('flags a packet received twice as duplicated', () => {
    const i = idx(inflight, (e) => e.ev === 'pkt.recv');
    expect(classes([...inflight.slice(0, i + 1), inflight[i]!, ...inflight.slice(i + 1)])).toContain('duplicated');
  });

  it('flags a completion nobody sent as spurious', () => {
    const e = inflight.find((x) => x.ev === 'pkt.completion')!;
    expect(classes([...inflight, { ...e, tx: 999 } as TraceEvent])).toContain('spurious');
  });

  it('flags a changed payload digest as payload', () => {
    const out = inflight.map((e) => (e.ev === 'pkt.recv' && e.tx === 3 ? { ...e, digest: '0000000000000000' } : e));
    expect(classes(out)).toContain('payload');
  });

  it('flags a completion status that breaks the protocol rule as status', () => {
    const out = inflight.map((e) => (e.ev === 'pkt.complete' && e.tx === 2 ? { ...e, status: 'c0000001' } : e));
    expect(classes(out)).toContain('status');
  });

  it('flags an in-flight transaction that the save skipped as not-saved', () => {
    const i = idx(inflight, (e) => e.ev === 'pkt.save');
    expect(classes(inflight.filter((_, j) => j !== i))).toContain('not-saved');
  });

  it('names the transactions a save skipped in the order they were sent, however the sender numbered them', () => {
    // The host's transactions numbered backwards (the first sent gets the highest tx), up
    // to the end of the first save, with its pkt.save events gone.
    type WithTx = TraceEvent & { dir: string; tx: number };
    const isH2g = (e: TraceEvent): e is WithTx => (e as Partial<WithTx>).dir === 'h2g' && typeof (e as Partial<WithTx>).tx === 'number';
    const top = Math.max(...inflight.filter(isH2g).map((e) => e.tx)) + 1;
    const end = idx(inflight, (e) => e.ev === 'vm.save.end');
    const events = inflight.slice(0, end + 1).map((e) => (isH2g(e) ? { ...e, tx: top - e.tx } : e)).filter((e) => e.ev !== 'pkt.save');
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of events) c.onEvent(e);
    const named = c.violations.filter((v) => v.class === 'not-saved').map((v) => Number(/\/h2g\/(\d+)/.exec(v.message)![1]));
    const sent = events.filter((e) => e.ev === 'pkt.send' && isH2g(e)).map((e) => (e as WithTx).tx);
    expect(named.length).toBeGreaterThan(1);
    expect(named).toEqual(sent.filter((tx) => named.includes(tx)));
  });

  it('flags a saved transaction that was never restored as not-restored', () => {
    const i = idx(inflight, (e) => e.ev === 'pkt.restore');
    expect(classes(inflight.filter((_, j) => j !== i))).toContain('not-restored');
  });

  it('flags a SaveBuf that came back different as savebuf-mismatch', () => {
    const out = inflight.map((e) => (e.ev === 'pkt.restore' && e.tx === 1 ? { ...e, saveDigest: 'ffffffffffffffff' } : e));
    expect(classes(out)).toContain('savebuf-mismatch');
  });

  it('flags channel states out of KMCL order as state-order', () => {
    const i = idx(inflight, (e) => e.ev === 'ch.state' && e.side === 'host' && e.state === 'Started');
    expect(classes(inflight.filter((_, j) => j !== i))).toContain('state-order');
  });

  it('flags a completion from the discarded future after a checkpoint apply', () => {
    const applyEnd = idx(checkpoint, (e) => e.ev === 'vm.checkpoint.apply.end');
    // a completion for tx 20, which was sent after the checkpoint and discarded
    const fake = { ...checkpoint.find((e) => e.ev === 'pkt.completion' && e.dir === 'h2g')!, tx: 20 } as TraceEvent;
    expect(classes([...checkpoint.slice(0, applyEnd + 1), fake, ...checkpoint.slice(applyEnd + 1)])).toContain('spurious');
  });

  describe('a checkpoint of a running VM, either way a host takes it (runningCheckpoint)', () => {
    const pulse = traceOf('checkpoint-apply', { runningCheckpoint: 'pulse' });
    const taken = (events: TraceEvent[]) => [idx(events, (e) => e.ev === 'vm.checkpoint.begin'), idx(events, (e) => e.ev === 'vm.checkpoint.end')] as const;
    const inTaking = (events: TraceEvent[], pred: (e: TraceEvent) => boolean) => {
      const [b, e] = taken(events);
      return events.filter((x, j) => !(j > b && j < e && pred(x)));
    };

    it('passes a host that went on from the save on the same objects, and one that restored onto new objects', () => {
      // The default trace: Paused, pkt.save..., Started, Active; no pkt.restore until the apply.
      const [b, e] = taken(checkpoint);
      expect(checkpoint.slice(b, e).some((x) => x.ev === 'pkt.save')).toBe(true);
      expect(checkpoint.slice(b, e).some((x) => x.ev === 'pkt.restore')).toBe(false);
      expect(classes(checkpoint)).toEqual([]);
      expect(classes(pulse)).toEqual([]);
    });

    it('flags a host that restored onto new objects but left out what it saved as not-restored', () => {
      // Started and Active are there (on the new objects): that alone is no going on.
      expect(classes(inTaking(pulse, (e) => e.ev === 'pkt.restore'))).toContain('not-restored');
    });

    it('flags a channel that neither started again nor restored what it saved as not-restored', () => {
      const stuck = inTaking(checkpoint, (e) => e.ev === 'ch.state' && e.side === 'host' && e.state !== 'Paused');
      expect(classes(stuck)).toContain('not-restored');
    });

    it('still wants the checkpoint\'s saved transactions restored when it is applied', () => {
      const apply = idx(checkpoint, (e) => e.ev === 'vm.checkpoint.apply.begin');
      const restore = checkpoint.findIndex((e, j) => j > apply && e.ev === 'pkt.restore');
      expect(restore).toBeGreaterThan(apply);
      expect(classes(checkpoint.filter((_, j) => j !== restore))).toContain('not-restored');
    });

    it('leaves the mark as it was around a checkpoint the host went on from (explore decides it in place)', () => {
      const [b, e] = taken(checkpoint);
      const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
      for (const x of checkpoint.slice(0, b)) c.onEvent(x);
      const before = c.mark();
      for (const x of checkpoint.slice(b, e + 1)) c.onEvent(x);
      expect(sameVerdicts(before, c.mark())).toBe(true);
    });
  });

  it('reports a hung run as hang', () => {
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    expect(c.finish({ reason: 'stuck' }).map((v) => v.class)).toEqual(['hang']);
  });

  it('reports a restore the run saw refused, unasked, as not-restored, naming the channel and the operation', () => {
    // The trace of a refused restore is a legal rescind (the checker passes it on its own);
    // the run hands over what it knows: the scenario did not ask that restore to fail.
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of inflight) c.onEvent(e);
    const v = c.finish(null, [{ ch: 3, op: 'migration', atStep: 17 }]);
    expect(v.map((x) => x.class)).toEqual(['not-restored']);
    expect(v[0]!.message).toContain("channel 3's saved state was refused at a migration (save point 17)");
  });
});

describe('property checker: the mark explore compares around a VM operation', () => {
  // inflight-host-transactions saves and restores the VM with host transactions awaiting.
  const save = idx(inflight, (e) => e.ev === 'vm.save.begin');
  const restored = idx(inflight, (e) => e.ev === 'vm.restore.end');

  function marksAround(events: TraceEvent[], from: number, to: number) {
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of events.slice(0, from)) c.onEvent(e);
    const before = c.mark();
    for (const e of events.slice(from, to + 1)) c.onEvent(e);
    return { before, after: c.mark() };
  }

  it('is the same after a save and restore that brought every saved transaction back', () => {
    const { before, after } = marksAround(inflight, save, restored);
    expect(inflight.slice(save, restored).some((e) => e.ev === 'pkt.save')).toBe(true);
    expect(sameVerdicts(before, after)).toBe(true);
  });

  it('differs when a saved transaction was not restored', () => {
    const lost = idx(inflight, (e) => e.ev === 'pkt.restore');
    const { before, after } = marksAround(inflight.filter((_, j) => j !== lost), save, restored - 1);
    expect(after.settled).toBe(false);
    expect(sameVerdicts(before, after)).toBe(false);
  });

  it('differs when the operation broke a property', () => {
    const restore = idx(inflight, (e) => e.ev === 'pkt.restore');
    const twice = [...inflight.slice(0, restore + 1), inflight[restore]!, ...inflight.slice(restore + 1)];
    const { before, after } = marksAround(twice, save, restored + 1);
    expect(after.violations).toBeGreaterThan(before.violations);
    expect(sameVerdicts(before, after)).toBe(false);
  });

  it('differs when a channel was left in another state', () => {
    const { before } = marksAround(inflight, save, restored);
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of inflight.slice(0, save)) c.onEvent(e);
    c.onEvent({ v: 1, seq: 1e6, src: 'emulator', side: 'host', ev: 'ch.state', ch: 0, state: 'Paused' } as TraceEvent);
    expect(sameVerdicts(before, c.mark())).toBe(false);
  });
});

describe('property checker: exactly once across a rescind and re-offer', () => {
  // A rescind racing traffic, and a restore that fails and falls back to one (bench/scenarios).
  const rescinded = traceOf('rescind-and-reoffer');
  const find = (pred: (e: TraceEvent) => boolean): number => idx(rescinded, pred);
  const cancel = (side: 'host' | 'guest') => find((e) => e.ev === 'pkt.cancel' && e.side === side);

  it('passes the trace as the emulator writes it (cancels after the rescind, abandoned saved state not restored)', () => {
    expect(rescinded.some((e) => e.ev === 'pkt.cancel' && e.side === 'guest')).toBe(true);
    expect(rescinded.some((e) => e.ev === 'pkt.cancel' && e.side === 'host')).toBe(true);
    expect(classes(rescinded)).toEqual([]);
  });

  it('flags a transaction in flight at the rescind that its sender never ended as lost', () => {
    for (const side of ['host', 'guest'] as const) {
      const i = cancel(side);
      expect(classes(rescinded.filter((_, j) => j !== i)), side).toEqual(['lost']);
    }
  });

  it('flags a cancel written before the rescind (nothing had been rescinded) as spurious', () => {
    const i = cancel('guest');
    const r = find((e) => e.ev === 'ch.rescind' && (e as { ch: number }).ch === (rescinded[i] as { ch: number }).ch);
    const moved = [...rescinded.slice(0, r), rescinded[i]!, ...rescinded.slice(r, i), ...rescinded.slice(i + 1)];
    expect(classes(moved)).toContain('spurious');
  });

  it('flags a second cancel, and a completion after a cancel, as duplicated', () => {
    const i = cancel('guest');
    const twice = [...rescinded.slice(0, i + 1), rescinded[i]!, ...rescinded.slice(i + 1)];
    expect(classes(twice)).toContain('duplicated');
    const c = rescinded[i] as TraceEvent & { ch: number; tx: number };
    const completion = { ...rescinded.find((e) => e.ev === 'pkt.completion' && e.side === 'guest')!, ch: c.ch, tx: c.tx } as TraceEvent;
    const late = [...rescinded.slice(0, i + 1), completion, ...rescinded.slice(i + 1)];
    expect(classes(late)).toContain('duplicated');
  });

  it('flags a packet of the old instance received again after it ended as duplicated', () => {
    const i = cancel('guest');
    const c = rescinded[i] as TraceEvent & { ch: number; tx: number };
    const recv = rescinded.find((e) => e.ev === 'pkt.recv' && e.side === 'host' && (e as { ch: number }).ch === c.ch && (e as { tx: number }).tx === c.tx);
    expect(recv).toBeDefined();
    const end = find((e) => e.ev === 'scenario.end');
    expect(classes([...rescinded.slice(0, end), recv!, ...rescinded.slice(end)])).toContain('duplicated');
  });

  it('without the rescind, the restore that fell back leaves its saved transactions not-restored', () => {
    const restoreEnd = find((e) => e.ev === 'vm.restore.end');
    const r = rescinded.findLastIndex((e, j) => j < restoreEnd && e.ev === 'ch.rescind');
    expect(r).toBeGreaterThan(0);
    expect(classes(rescinded.filter((_, j) => j !== r))).toContain('not-restored');
  });
});
