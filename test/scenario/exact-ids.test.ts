// 64-bit transaction ids end to end: a scenario whose ids start at 2^64 - 1 and at
// 2^53 + 1 runs through the ring (trans_id), KMCL (awaiting table, LibBuf), the saved VM
// (KMCL chunks, VSP SaveBuf, guest image), a migration, the trace writer, both trace
// reading paths and the checker, and every id comes out exactly as it went in. A double
// would have read 2^64 - 1 as 2^64 and 2^53 + 1 as 2^53.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { ScenarioSchema, toScenario } from '../../src/scenario/model.ts';
import { MemorySink, formatEvent } from '../../src/trace/sink.ts';
import { writeTraceFile } from '../../src/trace/writer.ts';
import { readTraceFile } from '../../src/trace/reader.ts';
import { ArraySource, FileSource } from '../../src/check/observed.ts';
import { checkTrace } from '../../src/check/replay.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';

const MAX = 2n ** 64n - 1n;
const NEAR = 2n ** 53n + 1n;

const scenario = toScenario(
  ScenarioSchema.parse({
    name: 'exact-ids',
    channels: [
      { id: 0, firstTx: MAX.toString() },
      { id: 1, firstTx: NEAR.toString() },
    ],
    steps: [
      { op: 'guest-send', channel: 0, count: 1, size: 64 },
      { op: 'host-send', channel: 0, count: 1, size: 64, hold: 50 },
      { op: 'guest-send', channel: 1, count: 4, size: 64, mode: 'hold', hold: 30 },
      { op: 'host-send', channel: 1, count: 4, size: 64, hold: 50 },
      { op: 'run', ms: 1 },
      { op: 'save' },
      { op: 'restore' },
      { op: 'migrate', to: 'host-b' },
      { op: 'settle' },
    ],
  }),
);

const dir = mkdtempSync(join(tmpdir(), 'exact-ids-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(): TraceEvent[] {
  const sink = new MemorySink('emulator');
  executeScenario(scenario, { seed: 5, sink });
  return sink.events;
}

const txs = (events: readonly TraceEvent[]): unknown[] => events.flatMap((e) => ('tx' in e ? [e.tx] : []));

describe('64-bit transaction ids through every layer', () => {
  const events = run();

  it('keeps 2^64 - 1 and 2^53 + 1 exact through ring, KMCL, saved state and migration', () => {
    const ids = new Set(txs(events));
    expect(ids.has(MAX)).toBe(true);
    expect(ids.has(NEAR)).toBe(true);
    expect(ids.has(NEAR + 3n)).toBe(true);
    // No id was rounded onto a neighbour, and none wrapped past 2^64 - 1.
    for (const id of ids) expect(typeof id === 'bigint' && id >= NEAR && id <= MAX).toBe(true);
    // Each direction of channel 0 used 2^64 - 1 once, and it was saved and restored in flight.
    const ch0 = events.filter((e) => 'tx' in e && e.ch === 0);
    expect(ch0.filter((e) => e.ev === 'pkt.send').map((e) => 'tx' in e && e.tx)).toEqual([MAX, MAX]);
    expect(ch0.some((e) => e.ev === 'pkt.restore' && e.tx === MAX)).toBe(true);
    expect(ch0.filter((e) => e.ev === 'pkt.completion').length).toBe(2);
  });

  it('is explained by the checker, which tells 2^53 + 1 from 2^53 + 2', () => {
    const source = (es: TraceEvent[]) => new ArraySource(es.map((event, i) => ({ event, file: 'real.jsonl', line: i + 1 })));
    expect(checkTrace(scenario, source(events)).verdict).toBe('pass');
    // One receive of 2^53 + 1 reported as 2^53 + 2: ids a double holds as one value.
    const i = events.findIndex((e) => e.ev === 'pkt.recv' && e.tx === NEAR);
    const changed = events.map((e, k) => (k === i ? ({ ...e, tx: NEAR + 1n } as TraceEvent) : e));
    expect(checkTrace(scenario, source(changed)).verdict).toBe('diverge');
  });

  it('writes them as JSON integers and reads them back exactly on the fast and the slow path', async () => {
    const file = join(dir, 'fast.jsonl');
    writeTraceFile(file, events);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(`"tx":${MAX}`);
    expect(text).toContain(`"tx":${NEAR}`);
    // Fast path: the line scanner (lines in the writer's exact form).
    const fast = new FileSource(file, { readAhead: 'inline' });
    expect(checkTrace(scenario, fast).verdict).toBe('pass');
    expect((await readTraceFile(file)).events.map((e) => e.event)).toEqual(events);

    // Slow path: the same events with another key order, which the scanner leaves to JSON.parse.
    const slowFile = join(dir, 'slow.jsonl');
    writeFileSync(slowFile, events.map((e) => reorder(formatEvent(e))).join('\n') + '\n');
    expect(readFileSync(slowFile, 'utf8')).toContain(`"tx":${MAX},"v":1`);
    const slow = new FileSource(slowFile, { readAhead: 'inline' });
    const read: TraceEvent[] = [];
    for (let o = slow.next(); o !== null; o = slow.next()) read.push(o.event);
    expect(read).toEqual(events);
    expect((await readTraceFile(slowFile)).events.map((e) => e.event)).toEqual(events);
    expect(checkTrace(scenario, new FileSource(slowFile, { readAhead: 'inline' })).verdict).toBe('pass');
  });
});

/** Moves `"tx":N` to the front of a line's object (a key order no writer here uses). */
function reorder(line: string): string {
  const m = /,"tx":(\d+)/.exec(line);
  if (!m) return line;
  return `{"tx":${m[1]},${line.slice(1).replace(m[0], '')}`;
}
