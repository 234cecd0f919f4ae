import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import type { LocatedEvent, SourceEvent } from '../../src/trace/reader.ts';
import { fileSource, formatRef, normaliseInRuns, normaliseToArray, type NormalisedEvent, type TraceSource } from '../../src/trace/normalise.ts';
import { sampleOf } from './arbitraries.ts';

const MERGE = join(import.meta.dirname, '../fixtures/trace/merge');
const at = (name: string) => join(MERGE, name);

/** "side ev dir tx" per event, plus its refs as file:line with the file's base name. */
function summary(events: NormalisedEvent[]): string[] {
  return events.map(({ event: e, refs }) => {
    const p = e as unknown as Record<string, unknown>;
    const what = [e.side, e.ev, p.dir, p.tx].filter((x) => x !== undefined).join(' ');
    return `${what} @ ${refs.map((r) => formatRef({ ...r, file: r.file.slice(MERGE.length + 1) })).join(',')}`;
  });
}

// The run in the fixtures: a guest request, a host transaction saved and restored in
// flight, then both complete. Causes come first where the files allow.
const MERGED = [
  'bench scenario.begin',
  'host ch.state',
  'guest ch.state',
  'guest pkt.send g2h 1',
  'host pkt.recv g2h 1',
  'host pkt.send h2g 1',
  'bench vm.save.begin',
  'host pkt.save h2g 1',
  'bench vm.save.end',
  'bench vm.restore.begin',
  'host pkt.restore h2g 1',
  'bench vm.restore.end',
  'host pkt.complete g2h 1',
  'guest pkt.recv h2g 1',
  'guest pkt.complete h2g 1',
  'host pkt.completion h2g 1',
  'guest pkt.completion g2h 1',
  'bench scenario.end',
];
const strip = (lines: string[]) => lines.map((l) => l.split(' @ ')[0]!);

describe('normaliseTraces', () => {
  it('merges host and guest files on the bench events they both hold, keeping file:line of each', async () => {
    const host = fileSource(at('host-with-bench-events.jsonl')).source;
    const guest = fileSource(at('guest-with-bench-events.jsonl'), { ids: { ch: 'guid', tx: 'auto' } }).source;
    const out = summary(await normaliseToArray([host, guest]));
    expect(strip(out)).toEqual(MERGED);
    expect(out[0]).toBe('bench scenario.begin @ host-with-bench-events.jsonl:1,guest-with-bench-events.jsonl:1');
    expect(out[3]).toBe('guest pkt.send g2h 1 @ guest-with-bench-events.jsonl:3');
    expect(out[4]).toBe('host pkt.recv g2h 1 @ host-with-bench-events.jsonl:3');
  });

  it('whichever file comes first, keeps each file\'s order and puts every cause before its effect', async () => {
    for (const hostFirst of [true, false]) {
      const host = fileSource(at('host-with-bench-events.jsonl')).source;
      const guest = fileSource(at('guest-with-bench-events.jsonl'), { ids: { ch: 'guid', tx: 'auto' } }).source;
      const out = await normaliseToArray(hostFirst ? [host, guest] : [guest, host]);
      expect(out).toHaveLength(MERGED.length);
      for (const file of [host.file, guest.file]) {
        const lines = out.flatMap((e) => e.refs.filter((r) => r.file === file).map((r) => r.line));
        expect(lines).toEqual([...lines].sort((a, b) => a - b));
        expect(new Set(lines).size).toBe(lines.length);
      }
      expect(causesFirst(out)).toEqual([]);
    }
  });

  it('puts every cause before its effect for any real interleaving of two sides', async () => {
    // A run: requests from the guest and transactions from the host, each the chain
    // send -> recv -> complete -> completion, interleaved in any order that keeps chains.
    const chain = (dir: 'g2h' | 'h2g', tx: number) => {
      const [sender, receiver] = dir === 'g2h' ? (['guest', 'host'] as const) : (['host', 'guest'] as const);
      return [
        { side: sender, ev: 'pkt.send', len: 24, digest: '0011223344556677', wantCompletion: true },
        { side: receiver, ev: 'pkt.recv', len: 24, digest: '0011223344556677' },
        { side: receiver, ev: 'pkt.complete', status: '00000000', len: 32, digest: '8899aabbccddeeff' },
        { side: sender, ev: 'pkt.completion', status: '00000000', digest: '8899aabbccddeeff' },
      ].map((e) => ({ ...e, ch: 1, tx, dir }));
    };
    const run = fc
      .array(fc.constantFrom<'g2h' | 'h2g'>('g2h', 'h2g'), { minLength: 1, maxLength: 8 })
      .chain((dirs) => {
        const chains = dirs.map((d, i) => chain(d, i + 1));
        const picks = fc.array(fc.nat(dirs.length - 1), { minLength: dirs.length * 4, maxLength: dirs.length * 4 });
        return picks.map((order) => {
          const at = chains.map(() => 0);
          const out: object[] = [];
          for (const want of order) {
            // take from the wanted chain, or the next one that has events left
            for (let k = 0; k < chains.length; k++) {
              const c = (want + k) % chains.length;
              if (at[c]! < 4) {
                out.push(chains[c]![at[c]!++]!);
                break;
              }
            }
          }
          return out;
        });
      });
    await fc.assert(
      fc.asyncProperty(run, fc.boolean(), async (events, hostFirst) => {
        const split = (side: string) =>
          events.filter((e) => (e as { side: string }).side === side).map((e, i) => ({ v: 1, seq: i + 1, src: 'x', ...e }));
        const host = memory('host.jsonl', split('host'));
        const guest = memory('guest.jsonl', split('guest'));
        const out = await normaliseToArray(hostFirst ? [host, guest] : [guest, host]);
        expect(out).toHaveLength(events.length);
        expect(causesFirst(out)).toEqual([]);
        for (const file of ['host.jsonl', 'guest.jsonl']) {
          const lines = out.flatMap((e) => e.refs.filter((r) => r.file === file).map((r) => r.line));
          expect(lines).toEqual(lines.map((_, i) => i + 1));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('re-merges each emulated scenario split into a host and a guest file with the bench events in both', async () => {
    const suite = await loadScenarioPaths([join(import.meta.dirname, '../../bench/scenarios')]);
    for (const scenario of suite) {
      const sink = new MemorySink('emulator');
      executeScenario(scenario, { seed: 3, sink });
      const side = (s: string) => sink.events.filter((e) => e.side === s || e.side === 'bench');
      const out = await normaliseToArray([memory('host.jsonl', side('host')), memory('guest.jsonl', side('guest'))]);
      expect(out).toHaveLength(sink.events.length);
      expect(out.filter((e) => e.event.side === 'bench').map((e) => e.event)).toEqual(sink.events.filter((e) => e.side === 'bench'));
      expect(causesFirst(out), scenario.name).toEqual([]);
      // Between two bench events: the same events as the emulator wrote, in a causal order.
      const segments = (events: { side: string; seq: number }[]) => {
        const out: number[][] = [[]];
        for (const e of events) if (e.side === 'bench') out.push([]);
        else out.at(-1)!.push(e.seq);
        return out.map((seg) => seg.sort((a, b) => a - b));
      };
      expect(segments(out.map((e) => e.event))).toEqual(segments(sink.events));
    }
  });

  it('in runs: the same stream, each run a segment closed by its bench event', async () => {
    const sources = () => [
      fileSource(at('host-with-bench-events.jsonl')).source,
      fileSource(at('guest-with-bench-events.jsonl'), { ids: { ch: 'guid', tx: 'auto' } }).source,
    ];
    const runs: NormalisedEvent[][] = [];
    for await (const run of normaliseInRuns(sources())) runs.push(run);
    expect(runs.flat()).toEqual(await normaliseToArray(sources()));
    expect(runs.map((r) => r.at(-1)!.event.side)).toEqual(runs.map(() => 'bench'));
    expect(runs.map((r) => r.slice(0, -1).filter((e) => e.event.side === 'bench'))).toEqual(runs.map(() => []));
  });

  it('maps a GUID channel and hex tx onto the numbers the other side writes, and lower-cases hex', async () => {
    const guest = fileSource(at('guest-with-bench-events.jsonl'), { ids: { ch: 'guid', tx: 'auto' } }).source;
    const out = await normaliseToArray([guest]);
    const send = out.find((e) => e.event.ev === 'pkt.send')!.event;
    expect(send).toMatchObject({ ch: 10, tx: 1, digest: '8c2fd91a34e07b55' });
  });

  it('merges sides that hold no bench events by the at-marks of a bench file', async () => {
    const out = summary(
      await normaliseToArray([
        fileSource(at('bench.jsonl')).source,
        fileSource(at('host-without-bench-events.jsonl'), { align: { markKey: 'host' } }).source,
        fileSource(at('guest-without-bench-events.jsonl'), { align: { markKey: 'guest' }, ids: { ch: 'guid', tx: 'auto' } }).source,
      ]),
    );
    expect(strip(out)).toEqual(MERGED);
    expect(out[0]).toBe('bench scenario.begin @ bench.jsonl:1');
    expect(out[7]).toBe('host pkt.save h2g 1 @ host-without-bench-events.jsonl:4');
  });

  it('uses what a crashed side wrote and continues with the others, the reader telling of the truncation', async () => {
    const crashed = fileSource(at('guest-crashed-during-save.jsonl'), { acceptTruncated: true, ids: { ch: 'guid', tx: 'auto' } });
    const out = strip(summary(await normaliseToArray([fileSource(at('host-with-bench-events.jsonl')).source, crashed.source])));
    expect(out.filter((l) => l.startsWith('guest'))).toEqual(['guest ch.state', 'guest pkt.send g2h 1']);
    expect(out.filter((l) => l.startsWith('host') || l.startsWith('bench'))).toEqual(
      MERGED.filter((l) => l.startsWith('host') || l.startsWith('bench')),
    );
    expect(crashed.reader.end).toMatchObject({ kind: 'truncated', line: 6 });
  });

  it('refuses files whose bench events disagree, naming both places and the field', async () => {
    const sources = [
      fileSource(at('host-with-bench-events.jsonl')).source,
      fileSource(at('guest-from-another-run.jsonl'), { ids: { ch: 'guid', tx: 'auto' } }).source,
    ];
    const e = await normaliseToArray(sources).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).location).toMatchObject({ file: at('guest-from-another-run.jsonl'), line: 1, field: 'seed' });
    expect((e as InputError).message).toContain('host-with-bench-events.jsonl:1');
  });

  it('refuses a side without bench events when nothing says where its events go', async () => {
    const e = await normaliseToArray([
      fileSource(at('host-with-bench-events.jsonl')).source,
      fileSource(at('guest-without-bench-events.jsonl'), { ids: { ch: 'guid', tx: 'auto' } }).source,
    ]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).location.file).toBe(at('guest-without-bench-events.jsonl'));
  });

  it('refuses a bench event without the mark a marked source needs', async () => {
    const e = await normaliseToArray([
      fileSource(at('host-with-bench-events.jsonl')).source,
      fileSource(at('guest-without-bench-events.jsonl'), { align: { markKey: 'guest' }, ids: { ch: 'guid', tx: 'auto' } }).source,
    ]).catch((x: unknown) => x);
    expect((e as InputError).location).toMatchObject({ file: at('host-with-bench-events.jsonl'), line: 1, field: 'at.guest' });
  });

  describe('a bench.mark (a cut without a VM operation)', () => {
    // A guest that gave a send up, and a host that read its ring again only later (the
    // real job's files after a Linux guest's EAGAIN, real-job.ts).
    const bench = (marks: Array<[ev: string, host: number, guest: number]>) =>
      memory('bench.jsonl', marks.map(([ev, host, guest], i) => ({ v: 1, seq: i + 1, src: 'hyperv', side: 'bench', ev, ...(ev.startsWith('scenario') ? { name: 's', seed: 1 } : {}), at: { host, guest } })));
    const host = memory('host.jsonl', [
      { ...sampleOf('pkt.recv', 1), side: 'host', tx: 1 },
      { ...sampleOf('pkt.recv', 2), side: 'host', tx: 2 },
    ]);
    const guest = memory('guest.jsonl', [
      { ...sampleOf('pkt.send', 1), side: 'guest', tx: 1 },
      { ...sampleOf('pkt.send', 2), side: 'guest', tx: 2 },
      { ...sampleOf('pkt.timeout', 3), side: 'guest', tx: 3 },
    ]);
    const merged = async (marks: Array<[string, number, number]>) =>
      (await normaliseToArray([bench(marks), { ...host, align: { markKey: 'host' } }, { ...guest, align: { markKey: 'guest' } }])).map(
        ({ event: e }) => `${e.side} ${e.ev}${'tx' in e ? ` ${String(e.tx)}` : ''}`,
      );

    it('puts what each file wrote after its mark after it, and what it wrote before before it', async () => {
      const cut = await merged([['scenario.begin', 0, 0], ['bench.mark', 1, 3], ['scenario.end', 2, 3]]);
      expect(cut).toEqual(['bench scenario.begin', 'guest pkt.send 1', 'host pkt.recv 1', 'guest pkt.send 2', 'guest pkt.timeout 3', 'bench bench.mark', 'host pkt.recv 2', 'bench scenario.end']);
      // Without it the host's later read may come before the give-up: nothing says otherwise.
      const uncut = await merged([['scenario.begin', 0, 0], ['scenario.end', 2, 3]]);
      expect(uncut.indexOf('host pkt.recv 2')).toBeLessThan(uncut.indexOf('guest pkt.timeout 3'));
    });

    it('refuses a mark that goes back, naming the bench file\'s line and at.<key>', async () => {
      const e = await merged([['scenario.begin', 0, 0], ['bench.mark', 2, 3], ['scenario.end', 1, 3]]).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).location).toMatchObject({ file: 'bench.jsonl', line: 3, field: 'at.host' });
      expect((e as InputError).message).toMatch(/at\.host 1 goes back from 2 at bench\.jsonl:2/);
      expect((e as InputError).exitCode).toBe(2);
    });

    it('refuses a negative mark as one that is missing (a source not read through the validator)', async () => {
      const e = await merged([['scenario.begin', 0, 0], ['bench.mark', 1, -1], ['scenario.end', 2, 3]]).catch((x: unknown) => x);
      expect((e as InputError).location).toMatchObject({ file: 'bench.jsonl', line: 2, field: 'at.guest' });
    });
  });

  it('keeps the order of a single file that holds every side (the emulator)', async () => {
    const events = [
      sampleOf('scenario.begin', 1),
      { ...sampleOf('pkt.recv', 2), side: 'host' },
      { ...sampleOf('pkt.send', 3), side: 'guest' },
    ];
    const out = await normaliseToArray([memory('emu.jsonl', events)]);
    expect(out.map((e) => e.event)).toEqual(events);
    expect(out.map((e) => formatRef(e.refs[0]!))).toEqual(['emu.jsonl:1', 'emu.jsonl:2', 'emu.jsonl:3']);
  });

  describe('id rules', () => {
    const send = (seq: number, ch: number | string, tx: number | string) =>
      ({ ...sampleOf('pkt.send', seq), ch, tx }) as unknown as SourceEvent;
    const ids = async (rules: TraceSource['ids'], events: SourceEvent[]) =>
      (await normaliseToArray([memory('t.jsonl', events, rules)])).map((e) => {
        const p = e.event as unknown as { ch: number; tx: number };
        return [p.ch, p.tx];
      });
    const fails = async (rules: TraceSource['ids'], events: SourceEvent[]) =>
      ((await normaliseToArray([memory('t.jsonl', events, rules)]).catch((x: unknown) => x)) as InputError).location;

    it('number (the default) refuses string ids', async () => {
      expect(await fails(undefined, [send(1, 1, 1), send(2, 1, '0x2')])).toMatchObject({ line: 2, field: 'tx' });
    });
    it('auto reads hex and decimal strings, a tx up to 2^64 - 1 exactly, and refuses ids past those', async () => {
      expect(await ids({ ch: 'auto', tx: 'auto' }, [send(1, '0x0a', '0x1F'), send(2, '3', 7)])).toEqual([
        [10, 31],
        [3, 7],
      ]);
      // A tx is a u64: 2^64 - 1 is kept exact (a bigint), 2^64 is refused; a channel id stays below 2^53.
      expect(await ids({ tx: 'auto' }, [send(1, 1, '0xffffffffffffffff'), send(2, 1, '9007199254740993')])).toEqual([
        [1, 2n ** 64n - 1n],
        [1, 2n ** 53n + 1n],
      ]);
      expect(await fails({ tx: 'auto' }, [send(1, 1, '0x10000000000000000')])).toMatchObject({ line: 1, field: 'tx' });
      expect(await fails({ ch: 'auto' }, [send(1, '0x20000000000000', 1)])).toMatchObject({ line: 1, field: 'ch' });
      expect(await fails({ tx: 'auto' }, [send(1, 1, 'abc')])).toMatchObject({ field: 'tx' });
    });
    it('intern numbers ids by first appearance, transactions per channel and direction', async () => {
      const g1 = '11111111-2222-3333-4444-555555555555';
      const g2 = '66666666-7777-8888-9999-000000000000';
      expect(
        await ids({ ch: 'intern', tx: 'intern' }, [send(1, g1, 'a'), send(2, g2, 'a'), send(3, g1, 'b'), send(4, g1, 'a')]),
      ).toEqual([
        [1, 1],
        [2, 1],
        [1, 2],
        [1, 1],
      ]);
    });
    it('a map names each id, and an unmapped id is an error', async () => {
      expect(await ids({ ch: { map: { vsp0: 4 } } }, [send(1, 'vsp0', 1)])).toEqual([[4, 1]]);
      expect(await fails({ ch: { map: { vsp0: 4 } } }, [send(1, 'vsp1', 1)])).toMatchObject({ field: 'ch' });
    });
  });
});

/** Effects whose cause has not come before them: a receive without its send, a completion without its complete. */
function causesFirst(events: NormalisedEvent[]): string[] {
  const seen = new Set<string>();
  const bad: string[] = [];
  for (const { event } of events) {
    const p = event as unknown as Record<string, unknown>;
    const key = `${String(p.ch)}:${String(p.dir)}:${String(p.tx)}`;
    if (event.ev === 'pkt.send') seen.add(`send ${key}`);
    if (event.ev === 'pkt.complete' || event.ev === 'pkt.fail') seen.add(`done ${key}`);
    if ((event.ev === 'pkt.recv' || event.ev === 'pkt.fail') && !seen.has(`send ${key}`)) bad.push(`${event.ev} ${key}`);
    if (event.ev === 'pkt.completion' && !seen.has(`done ${key}`)) bad.push(`${event.ev} ${key}`);
  }
  return bad;
}

function memory(file: string, events: readonly object[], ids?: TraceSource['ids']): TraceSource {
  const located: LocatedEvent<SourceEvent>[] = events.map((event, i) => ({ event: event as SourceEvent, file, line: i + 1 }));
  return ids === undefined ? { file, events: located } : { file, events: located, ids };
}
