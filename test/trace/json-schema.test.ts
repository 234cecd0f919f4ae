// The published JSON Schema (src/trace/trace-v1.schema.json) checked with an
// independent validator (ajv, draft 2020-12) against the runtime validator.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import { readTraceFile } from '../../src/trace/reader.ts';
import { EVENT_SIDES, type EventName, type TraceEvent } from '../../src/trace/schema.ts';
import { MemorySink, StampingSink, formatEvent } from '../../src/trace/sink.ts';
import { parseJsonExact } from '../../src/trace/json-ids.ts';
import { checkEvent, COMMON_FIELDS, EVENT_FIELDS } from '../../src/trace/validate.ts';
import { TraceWriter, writeTraceFile } from '../../src/trace/writer.ts';
import { anyTrace } from './arbitraries.ts';

const SCENARIOS = join(import.meta.dirname, '../../bench/scenarios');
const SCHEMA_FILE = join(import.meta.dirname, '../../src/trace/trace-v1.schema.json');
const MALFORMED = join(import.meta.dirname, '../fixtures/trace/malformed');
const schema = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as {
  $schema: string;
  required: string[];
  properties: { ev: { enum: string[] } };
  allOf: { if: { properties: { ev: { const: string } } }; then: { required?: string[]; properties: Record<string, unknown> } }[];
};
const expected = JSON.parse(await readFile(join(MALFORMED, 'expected.json'), 'utf8')) as Record<
  string,
  { line: number; field: string | null; jsonSchema: boolean }
>;

const ajv = new Ajv2020({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

/** The fields ajv blames, in the runtime validator's terms (null: the line as a whole). */
function blamed(errors: ErrorObject[] | null | undefined): (string | null)[] {
  const fields = new Set<string | null>();
  for (const e of errors ?? []) {
    if (e.keyword === 'if') continue; // "must match then": the real error is reported too
    if (e.keyword === 'required') fields.add((e.params as { missingProperty: string }).missingProperty);
    else fields.add(e.instancePath === '' ? null : e.instancePath.slice(1).split('/')[0]!);
  }
  return [...fields];
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trace-schema-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('trace-v1.schema.json', () => {
  it('is a draft 2020-12 schema that compiles in strict mode', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(typeof validate).toBe('function');
  });

  it('requires the same fields of each event as the runtime table, from the same sides', () => {
    expect(schema.required).toEqual(COMMON_FIELDS.map(([f]) => f));
    expect(schema.properties.ev.enum).toEqual(Object.keys(EVENT_FIELDS));
    const byEv = new Map(schema.allOf.map((b) => [b.if.properties.ev.const, b.then]));
    for (const ev of Object.keys(EVENT_FIELDS) as EventName[]) {
      const then = byEv.get(ev);
      expect(then, ev).toBeDefined();
      expect(then!.required ?? [], ev).toEqual(EVENT_FIELDS[ev].map(([f]) => f));
      const side = then!.properties.side as { const?: string; enum?: string[] };
      expect(side.enum ?? [side.const], ev).toEqual(EVENT_SIDES[ev]);
    }
  });

  it('accepts every event of a trace written through MemorySink and the writer', async () => {
    const sink = new MemorySink('emulator');
    const d = '00112233445566ff';
    sink.emit({ side: 'bench', ev: 'scenario.begin', name: 'all-events', seed: 9 });
    sink.emit({ side: 'host', ev: 'ch.state', ch: 1, state: 'Opened' });
    sink.emit({ side: 'guest', ev: 'pkt.send', ch: 1, tx: 1, dir: 'g2h', len: 64, digest: d, wantCompletion: true });
    sink.emit({ side: 'guest', ev: 'pkt.queued', ch: 1, tx: 2, dir: 'g2h' });
    sink.emit({ side: 'host', ev: 'pkt.recv', ch: 1, tx: 1, dir: 'g2h', len: 64, digest: d });
    sink.emit({ side: 'host', ev: 'pkt.send', ch: 1, tx: 1, dir: 'h2g', len: 48, digest: d, wantCompletion: true });
    sink.emit({ side: 'bench', ev: 'vm.pause' });
    sink.emit({ side: 'bench', ev: 'vm.resume' });
    sink.emit({ side: 'bench', ev: 'vm.save.begin' });
    sink.emit({ side: 'host', ev: 'pkt.save', ch: 1, tx: 1, dir: 'h2g', libLen: 0, saveLen: 32, saveDigest: d });
    sink.emit({ side: 'bench', ev: 'vm.save.end' });
    sink.emit({ side: 'bench', ev: 'vm.restore.begin' });
    sink.emit({ side: 'host', ev: 'pkt.restore', ch: 1, tx: 1, dir: 'h2g', saveDigest: d });
    sink.emit({ side: 'bench', ev: 'vm.restore.end' });
    sink.emit({ side: 'bench', ev: 'vm.migrate.begin', from: 'hv-a', to: 'hv-b' });
    sink.emit({ side: 'bench', ev: 'vm.migrate.end', from: 'hv-a', to: 'hv-b' });
    sink.emit({ side: 'bench', ev: 'vm.checkpoint.begin', name: 'cp1' });
    sink.emit({ side: 'bench', ev: 'vm.checkpoint.end', name: 'cp1' });
    sink.emit({ side: 'host', ev: 'pkt.complete', ch: 1, tx: 1, dir: 'g2h', status: '00000000', len: 32, digest: d });
    sink.emit({ side: 'guest', ev: 'pkt.fail', ch: 1, tx: 1, dir: 'h2g', status: 'c0000184' });
    sink.emit({ side: 'guest', ev: 'ring.format', ch: 1, dir: 'h2g', offset: 4072, type: 10, flags: 0 });
    sink.emit({ side: 'host', ev: 'kmcl.violation', ch: 1, rule: 'send-after-suspend', call: 'VmbPacketSend', packet: 7, message: 'packet 7 sent after EvtVmbChannelSuspend' });
    sink.emit({ side: 'guest', ev: 'pkt.completion', ch: 1, tx: 1, dir: 'g2h', status: '00000000', digest: d });
    sink.emit({ side: 'host', ev: 'ch.rescind', ch: 1 });
    sink.emit({ side: 'guest', ev: 'pkt.cancel', ch: 1, tx: 2, dir: 'g2h', status: 'c0000120' });
    sink.emit({ side: 'guest', ev: 'pkt.timeout', ch: 1, tx: 3, dir: 'g2h', len: 256, digest: '00000000000000ff' });
    sink.emit({ side: 'host', ev: 'ch.offer', ch: 1 });
    sink.emit({ side: 'bench', ev: 'vm.checkpoint.apply.begin', name: 'cp1' });
    sink.emit({ side: 'bench', ev: 'vm.checkpoint.apply.end', name: 'cp1' });
    sink.emit({ side: 'bench', ev: 'bench.mark' });
    sink.emit({ side: 'bench', ev: 'scenario.end', name: 'all-events', seed: 9 });
    expect(new Set(sink.events.map((e) => e.ev))).toEqual(new Set(Object.keys(EVENT_FIELDS)));
    const f = join(dir, 'all-events.jsonl');
    writeTraceFile(f, sink.events);
    const lines = (await readFile(f, 'utf8')).trimEnd().split('\n');
    for (const line of lines) {
      expect(validate(JSON.parse(line)), `${line}\n${ajv.errorsText(validate.errors)}`).toBe(true);
    }
    expect((await readTraceFile(f)).events).toHaveLength(lines.length);
  });

  // The emulator's own traces: every scenario of the suite, written to a file through
  // StampingSink and TraceWriter as `bench emulate` does, then validated line by line.
  it('accepts every line the emulator writes for each scenario of bench/scenarios', async () => {
    const suite = await loadScenarioPaths([SCENARIOS]);
    expect(suite.length).toBeGreaterThan(0);
    const seen = new Set<string>();
    for (const [i, scenario] of suite.entries()) {
      const f = join(dir, `emulated-${i}.jsonl`);
      const writer = TraceWriter.create(f);
      const emitted: TraceEvent[] = [];
      const sink = new StampingSink('emulator', (e) => {
        writer.write(e);
        emitted.push(e);
      });
      executeScenario(scenario, { seed: 1, sink });
      writer.close();
      const lines = (await readFile(f, 'utf8')).trimEnd().split('\n');
      expect(lines.length).toBe(emitted.length);
      for (const [n, line] of lines.entries()) {
        const ok = validate(JSON.parse(line));
        expect(ok, `${f}:${n + 1} ${line}\n${ajv.errorsText(validate.errors)}`).toBe(true);
        seen.add((JSON.parse(line) as { ev: string }).ev);
      }
      expect((await readTraceFile(f)).events.map((e) => e.event)).toEqual(emitted);
    }
    console.log(`emulator traces of ${suite.length} scenarios validate; events seen: ${[...seen].sort().join(' ')}`);
  });

  it('accepts random valid events, as the runtime validator does', () => {
    fc.assert(
      fc.property(anyTrace, (events: TraceEvent[]) => {
        for (const e of events) {
          // ajv sees a tx above 2^53 as JSON.parse rounds it (still an integer in range);
          // the bench's own reader keeps it exact.
          const text = formatEvent(e);
          const line = JSON.parse(text) as unknown;
          expect(validate(line), ajv.errorsText(validate.errors)).toBe(true);
          expect(checkEvent(parseJsonExact(text))).toBeUndefined();
          expect(parseJsonExact(text)).toEqual(e);
        }
      }),
      { numRuns: 200 },
    );
  });

  // A bench event's `at` (TRACE-SCHEMA.md "Merging"): the one optional field both check.
  it('accepts a bench event\'s at-marks of seqs and refuses any other, as the runtime validator does, on the field at', () => {
    const mark = fc.oneof(fc.nat(), fc.constantFrom(-1, 0.5, 2 ** 53, '3', null, true, [1], { seq: 1 }));
    const marks = fc.oneof(fc.dictionary(fc.constantFrom('host', 'guest', 'vsp-2'), mark), fc.constantFrom(null, 7, 'host', [3]));
    fc.assert(
      fc.property(fc.constantFrom('bench.mark', 'vm.pause', 'scenario.end'), marks, (ev, at) => {
        const e = { v: 1, seq: 2, src: 'hyperv', side: 'bench', ev, ...(ev === 'scenario.end' ? { name: 's', seed: 1 } : {}), at };
        const ok = validate(e);
        const problem = checkEvent(e);
        expect(ok, ajv.errorsText(validate.errors)).toBe(problem === undefined);
        if (!ok) {
          expect(blamed(validate.errors)).toEqual(['at']);
          expect(problem!.field).toMatch(/^at(\.|$)/);
        }
      }),
      { numRuns: 300 },
    );
    expect(checkEvent({ v: 1, seq: 2, src: 'hyperv', side: 'bench', ev: 'bench.mark', at: { host: 8, guest: -1 } })).toMatchObject({ field: 'at.guest' });
    expect(checkEvent({ v: 1, seq: 2, src: 'hyperv', side: 'bench', ev: 'bench.mark', at: 8 })).toMatchObject({ field: 'at' });
  });

  describe('malformed fixtures fail both validators on the same field', () => {
    it.each(Object.entries(expected).filter(([, w]) => w.jsonSchema))('%s', async (name, want) => {
      const lines = (await readFile(join(MALFORMED, name), 'utf8')).split('\n').slice(0, -1);
      lines.forEach((text, i) => {
        const value = JSON.parse(text) as unknown;
        const ok = validate(value);
        if (i + 1 === want.line) {
          expect(ok).toBe(false);
          expect(blamed(validate.errors)).toEqual([want.field]);
          expect(checkEvent(value)?.field ?? null).toBe(want.field);
        } else {
          expect(ok, `${name}:${i + 1} should be the only bad line`).toBe(true);
        }
      });
    });

    // Bad JSON, empty lines and seq order are beyond a schema of one line: only the
    // reader catches them (test/trace/reader.test.ts). Each of their lines that parses
    // is a valid event by itself.
    it.each(Object.entries(expected).filter(([, w]) => !w.jsonSchema))('%s is caught by the reader alone', async (name) => {
      const lines = (await readFile(join(MALFORMED, name), 'utf8')).split('\n').slice(0, -1);
      for (const text of lines) {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          continue;
        }
        expect(validate(value), text).toBe(true);
      }
    });
  });
});
