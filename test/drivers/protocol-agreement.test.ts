// The C protocol code that the drivers link (lab/drivers/common/sample-protocol.c) and
// the TypeScript twins (src/devices) agree byte for byte: a small host program built
// with gcc from the drivers' own source answers the same questions the TypeScript
// functions answer, for fixed edge cases and for fast-check generated inputs.

import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPLETION_SIZE, HEADER_SIZE, MAX_MESSAGE_SIZE, MsgType, Status,
  bodyByte, decodeHeader, encodeCompletion, encodeMessage, isIntact, statusFor, statusHex,
} from '../../devices/sample/protocol.ts';
import { digestHex } from '../../src/devices/digest.ts';
import { decodeSaveRecord, encodeSaveRecord } from '../../devices/sample/save-record.ts';
import { EVENT_SIDES, type EventName } from '../../src/trace/schema.ts';
import { gccProgram, gccSkipNote, haveGcc } from './support/gcc-program.ts';

// -Werror: the shared code must stay warning-free in user mode too.
const program = gccProgram('protocol-agreement', {
  sources: ['test/drivers/protocol-agreement.c', 'lab/drivers/common/sample-protocol.c', 'lab/drivers/common/sample-command.c'],
  include: ['lab/drivers/common', 'lab/drivers/trace-lib'],
});

/** Runs the C program once over all commands; one answer line per command. */
function askC(commands: string[]): string[] {
  const r = spawnSync(program.path, { input: commands.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`protocol-agreement exited ${r.status}: ${r.stderr}`);
  const lines = r.stdout.split('\n');
  lines.pop();
  expect(lines).toHaveLength(commands.length);
  return lines;
}

const hex = (b: Uint8Array) => (b.length === 0 ? '-' : Buffer.from(b).toString('hex'));

/** A message as a receiver may see it: possibly damaged, possibly with ring padding. */
const received = fc.record({
  type: fc.constantFrom(MsgType.Request, MsgType.HostTransaction, MsgType.Notify),
  tx: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.maxSafeNat()),
  length: fc.integer({ min: HEADER_SIZE, max: 600 }),
  arg0: fc.nat({ max: 0xffffffff }),
  arg1: fc.nat({ max: 0xffffffff }),
  padding: fc.integer({ min: 0, max: 9 }),
  flip: fc.option(fc.nat(), { nil: undefined }),
  version: fc.constantFrom(1, 1, 1, 2),
});

describe.skipIf(!haveGcc)(`C and TypeScript protocol code agree${gccSkipNote}`, () => {
  it('encodes the same message bytes, including edge lengths and 64-bit ids', () => {
    const cases = [
      [1, 1, HEADER_SIZE, 0, 0], [2, 15, 40, 250, 0], [3, 0xff, 1000, 0, 0],
      [1, 2 ** 40 + 3, 100, 2, 7], [2, Number.MAX_SAFE_INTEGER, MAX_MESSAGE_SIZE, 1, 1],
    ] as const;
    const answers = askC(cases.map((c) => `msg ${c.join(' ')}`));
    cases.forEach(([type, tx, length, arg0, arg1], i) => expect(answers[i]).toBe(hex(encodeMessage(type, tx, length, arg0, arg1))));
    // Out of range on both sides.
    expect(askC([`msg 1 1 ${HEADER_SIZE - 1} 0 0`, `msg 1 1 ${MAX_MESSAGE_SIZE + 1} 0 0`])).toEqual(['error', 'error']);
    expect(() => encodeMessage(1, 1, HEADER_SIZE - 1)).toThrow(RangeError);
    expect(() => encodeMessage(1, 1, MAX_MESSAGE_SIZE + 1)).toThrow(RangeError);
  });

  it('judges received messages alike: intact, status rule, digest and completion payload', () => {
    const samples = fc.sample(received, { numRuns: 300, seed: 5 });
    const buffers = samples.map((s) => {
      const msg = encodeMessage(s.type, s.tx, s.length, s.arg0, s.arg1);
      const buf = new Uint8Array(s.length + s.padding);
      buf.set(msg);
      if (s.version !== 1) buf[2] = s.version;
      if (s.flip !== undefined) buf[HEADER_SIZE + (s.flip % (buf.length - HEADER_SIZE + 1)) - 1]! ^= 0x01;
      return buf;
    });
    const commands = buffers.flatMap((b) => [`check ${hex(b)}`, `completion ${hex(b)} ${statusOf(b)}`]);
    const answers = askC(commands);
    const headers = askC(buffers.map((b) => `header ${hex(b)}`));
    buffers.forEach((b, i) => {
      const h = decodeHeader(b)!;
      expect(headers[i]).toBe(`${h.type} ${h.version} ${h.length} ${h.tx} ${h.arg0} ${h.arg1}`);
    });
    expect(askC([`header ${'00'.repeat(HEADER_SIZE - 1)}`])).toEqual(['short']);
    expect(decodeHeader(new Uint8Array(HEADER_SIZE - 1))).toBeNull();
    let intactSeen = 0;
    let damagedSeen = 0;
    buffers.forEach((b, i) => {
      const h = decodeHeader(b)!;
      const intact = isIntact(b, h);
      if (intact) intactSeen++;
      else damagedSeen++;
      const digest = digestHex(b, 0, Math.min(h.length, b.length));
      expect(answers[2 * i]).toBe(`${intact ? 1 : 0} ${statusHex(statusFor(h.tx, intact))} ${digest}`);
      expect(answers[2 * i + 1]).toBe(hex(encodeCompletion(b, h, statusOf(b))));
    });
    // The sample must exercise both branches of the rule, or the comparison proves little.
    expect(intactSeen).toBeGreaterThan(20);
    expect(damagedSeen).toBeGreaterThan(20);
  });

  it('decodes the completion payload TypeScript encodes', () => {
    const msg = encodeMessage(MsgType.HostTransaction, 31, 64, 10);
    const completion = encodeCompletion(msg, decodeHeader(msg)!, Status.InvalidDeviceState);
    expect(completion).toHaveLength(COMPLETION_SIZE);
    const [answer, notOne] = askC([`decode-completion ${hex(completion)}`, `decode-completion ${hex(msg.subarray(0, 32))}`]);
    expect(answer).toBe(`${0x82} 31 c0000184 ${digestHex(msg)}`);
    expect(notOne).toBe('error');
  });

  it('computes the same FNV-1a 64 digest for any bytes', () => {
    const inputs = fc.sample(fc.uint8Array({ maxLength: 300 }), { numRuns: 200, seed: 9 });
    const answers = askC(inputs.map((b) => `digest ${hex(b)}`));
    inputs.forEach((b, i) => expect(answers[i]).toBe(digestHex(b)));
  });

  it('follows the same status rule and body pattern', () => {
    const txs = [0, 1, 14, 15, 16, 31, 255, 256, 2 ** 33 + 15];
    const answers = askC([
      ...txs.flatMap((tx) => [`status ${tx} 1`, `status ${tx} 0`]),
      ...txs.map((tx) => `body ${tx} 1000`),
    ]);
    txs.forEach((tx, i) => {
      expect(answers[2 * i]).toBe(statusHex(statusFor(tx, true)));
      expect(answers[2 * i + 1]).toBe(statusHex(statusFor(tx, false)));
      expect(answers[2 * txs.length + i]).toBe(String(bodyByte(tx, 1000)));
    });
  });

  it('writes the SaveBuf record of PROTOCOL.md and refuses damaged ones', () => {
    const msg = encodeMessage(MsgType.HostTransaction, 2 ** 35 + 9, 4000, 750);
    const digest = digestHex(msg);
    const [record] = askC([`savebuf 2 ${2 ** 35 + 9} 4000 750 ${digest}`]);
    // The layout, written independently here from the PROTOCOL.md table.
    const expected = Buffer.alloc(32);
    expected.writeUInt32LE(0x53505356, 0);
    expected.writeUInt16LE(1, 4);
    expected.writeUInt16LE(2, 6);
    expected.writeBigUInt64LE(BigInt(2 ** 35 + 9), 8);
    expected.writeUInt32LE(4000, 16);
    expected.writeUInt32LE(750, 20);
    expected.writeBigUInt64LE(BigInt('0x' + digest), 24);
    expect(record).toBe(expected.toString('hex'));

    // And the emulator's twin (save-record.ts) writes the same bytes.
    expect(Buffer.from(encodeSaveRecord({ type: 2, tx: 2 ** 35 + 9, length: 4000, hold: 750, digest })).toString('hex')).toBe(record);

    const damaged = (at: number, value: number) => {
      const b = Buffer.from(expected);
      b[at] = value;
      return b.toString('hex');
    };
    expect(askC([
      `saveparse ${record}`, `saveparse ${record!.slice(0, 62)}`, `saveparse ${damaged(0, 0)}`,
      `saveparse ${damaged(4, 2)}`, `saveparse ${damaged(6, 1)}`, `saveparse ${damaged(17, 0x80)}`,
    ])).toEqual([`ok 2 ${2 ** 35 + 9} 4000 750 ${digest}`, 'error 1', 'error 2', 'error 3', 'error 4', 'error 5']);
  });
});

// The drivers format their trace lines with vbt_format_line (lab/drivers/trace-lib); each kind must carry exactly
// the fields of the schema (src/trace/schema.ts, src/trace/TRACE-SCHEMA.md).
const TRACE_KINDS: Array<[number, EventName, string[]]> = [
  [0, 'ch.state', ['state']],
  [1, 'pkt.send', ['tx', 'dir', 'len', 'digest', 'wantCompletion']],
  [2, 'pkt.queued', ['tx', 'dir', 'inferred']], // WANT=1 in the command below marks it inferred
  [3, 'pkt.recv', ['tx', 'dir', 'len', 'digest']],
  [4, 'pkt.complete', ['tx', 'dir', 'status', 'len', 'digest']],
  [5, 'pkt.completion', ['tx', 'dir', 'status', 'digest']],
  [6, 'pkt.save', ['tx', 'dir', 'libLen', 'saveLen', 'saveDigest']],
  [7, 'pkt.restore', ['tx', 'dir', 'saveDigest']],
  [8, 'pkt.fail', ['tx', 'dir', 'status']],
];

describe.skipIf(!haveGcc)('the C trace formatter writes schema v1 lines', () => {
  it('writes each event with the schema fields, types and hex widths', () => {
    // Only the host saves and restores; the test program writes side "host" for h2g.
    const dirOf = (i: number) => (TRACE_KINDS[i]![1].startsWith('pkt.re') || TRACE_KINDS[i]![1] === 'pkt.save' ? 1 : i % 2);
    const answers = askC(TRACE_KINDS.map(([kind], i) =>
      `trace ${kind} ${i + 1} ${2 ** 40 + i} ${dirOf(i)} 4096 00ab00cd00ef0012 1 c0000184 0 32 123456789abcdef0 Opened 7`));
    answers.forEach((line, i) => {
      const [, ev, extra] = TRACE_KINDS[i]!;
      const obj = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(obj)).toEqual(['v', 'seq', 'src', 'side', 'ev', 'ch', ...extra]);
      expect(obj).toMatchObject({ v: 1, seq: i + 1, src: 'hyperv', ev, ch: 7 });
      expect(EVENT_SIDES[ev]).toContain(obj.side);
      if ('tx' in obj) expect(obj).toMatchObject({ tx: 2 ** 40 + i, dir: dirOf(i) ? 'h2g' : 'g2h' });
      if ('digest' in obj) expect(obj.digest).toBe('00ab00cd00ef0012');
      if ('status' in obj) expect(obj.status).toBe('c0000184');
      if ('saveDigest' in obj) expect(obj.saveDigest).toBe('123456789abcdef0');
      if ('len' in obj) expect(obj.len).toBe(4096);
      if (ev === 'pkt.save') expect(obj).toMatchObject({ libLen: 0, saveLen: 32 });
      if (ev === 'pkt.send') expect(obj.wantCompletion).toBe(true);
      if (ev === 'ch.state') expect(obj.state).toBe('Opened');
    });
  });

  it('marks an inferred pkt.queued (the VSP\'s estimate) and leaves an observed one plain', () => {
    const [inferred, observed] = askC(['trace 2 1 5 1 0 0 1 0 0 0 0 x 3', 'trace 2 2 6 1 0 0 0 0 0 0 0 x 3']);
    expect(JSON.parse(inferred!)).toEqual({ v: 1, seq: 1, src: 'hyperv', side: 'host', ev: 'pkt.queued', ch: 3, tx: 5, dir: 'h2g', inferred: true });
    expect(JSON.parse(observed!)).toEqual({ v: 1, seq: 2, src: 'hyperv', side: 'host', ev: 'pkt.queued', ch: 3, tx: 6, dir: 'h2g' });
  });

  it('escapes strings so a line always parses as JSON', () => {
    const [line] = askC(['trace 0 1 0 0 0 0 0 0 0 0 0 a"b\\c 1']);
    expect(JSON.parse(line!)).toMatchObject({ state: 'a"b\\c' });
  });

  it('derives the channel number from the instance GUID\'s last 8 hex digits', () => {
    // GUID 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a in memory: Data1..3 little-endian, Data4 as is.
    expect(askC(['channel 3a5c2f8db4710e4e9a6d2c1f0000002a'])).toEqual(['42']);
  });
});

describe.skipIf(!haveGcc)('SaveBuf records agree with save-record.ts', () => {
  it('encodes generated records to the same bytes and reads back what the other wrote', () => {
    const records = fc.sample(fc.record({
      type: fc.constantFrom(MsgType.HostTransaction, MsgType.Notify),
      tx: fc.maxSafeNat(),
      length: fc.integer({ min: HEADER_SIZE, max: MAX_MESSAGE_SIZE }),
      hold: fc.nat({ max: 0xffffffff }),
      digest: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b).toString('hex')),
    }), { numRuns: 200, seed: 11 });
    const answers = askC(records.map((r) => `savebuf ${r.type} ${r.tx} ${r.length} ${r.hold} ${r.digest}`));
    records.forEach((r, i) => {
      expect(answers[i]).toBe(Buffer.from(encodeSaveRecord(r)).toString('hex'));
      expect(decodeSaveRecord(Buffer.from(answers[i]!, 'hex'))).toEqual(r);
    });
    const parsed = askC(answers.map((a) => `saveparse ${a}`));
    records.forEach((r, i) => expect(parsed[i]).toBe(`ok ${r.type} ${r.tx} ${r.length} ${r.hold} ${r.digest}`));
  });

  it('both refuse a wrong magic, version or size; C also refuses a wrong type or length', () => {
    const good = Buffer.from(encodeSaveRecord({ type: 2, tx: 5, length: 100, hold: 1, digest: '0011223344556677' }));
    const withByte = (at: number, v: number) => { const b = Buffer.from(good); b[at] = v; return b; };
    for (const bad of [withByte(0, 0), withByte(4, 9), good.subarray(0, 31)]) {
      expect(decodeSaveRecord(bad)).toBeNull();
      expect(askC([`saveparse ${bad.toString('hex')}`])[0]).toMatch(/^error /);
    }
    // Stricter in C, by design: the VSP only ever saves HostTransactions and Notifies of a valid length.
    expect(askC([`saveparse ${withByte(6, 1).toString('hex')}`, `saveparse ${withByte(17, 0x80).toString('hex')}`])).toEqual(['error 4', 'error 5']);
  });
});

function statusOf(b: Uint8Array): number {
  const h = decodeHeader(b)!;
  return statusFor(h.tx, isIntact(b, h));
}

// The control language every driver accepts (common/sample-command.h), parsed by the one
// C parser that the Windows drivers and the Linux module both compile in.
describe.skipIf(!haveGcc)('the control command parser', () => {
  const zero = '00000000000000000000000000000000';
  const parsed = (fields: string, instance = zero) => `${fields} instance=${instance}`;
  const base = 'count=0 length=0 mode=0 hold=0 auto=0';

  it('reads every command with its arguments, defaults and channel', () => {
    const answers = askC([
      'parse send 10 4096 2 250',
      'parse send 1 24 1 0 ch=7',
      'parse notify 3 100',
      'parse hold auto',
      'parse hold 0x1f4',
      'parse release',
      'parse trace-clear',
      'parse transact 64 16384 1000 ch=42',
      'parse open 42 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback',
      'parse open 3 8d2f5c3a-71b4-4e0e-9a6d-2c1f00000003 handle=0x1a4 ring-pages=8',
      'parse save ch=1',
      'parse restore ch=1',
      'parse resume ch=1',
      'parse close ch=1',
      'parse detach ch=1',
      'parse pause ch=2',
      'parse open 5 8d2f5c3a-71b4-4e0e-9a6d-2c1f00000005 loopback force-new-channel',
      'parse open 5 8d2f5c3a-71b4-4e0e-9a6d-2c1f00000005 loopback force-new-channel ring-pages=2',
      'parse discard ch=1',
      'parse rescind ch=3',
    ]);
    expect(answers).toEqual([
      parsed('verb=0 count=10 length=4096 mode=2 hold=250 auto=0 ch=all:0 loopback=0 handle=0 pages=4'),
      parsed('verb=0 count=1 length=24 mode=1 hold=0 auto=0 ch=7 loopback=0 handle=0 pages=4'),
      parsed('verb=1 count=3 length=100 mode=0 hold=0 auto=0 ch=all:0 loopback=0 handle=0 pages=4'),
      parsed(`verb=4 ${base.replace('auto=0', 'auto=1')} ch=all:0 loopback=0 handle=0 pages=4`),
      parsed('verb=4 count=0 length=0 mode=0 hold=500 auto=0 ch=all:0 loopback=0 handle=0 pages=4'),
      parsed(`verb=2 ${base} ch=all:0 loopback=0 handle=0 pages=4`),
      parsed(`verb=3 ${base} ch=all:0 loopback=0 handle=0 pages=4`),
      parsed('verb=6 count=64 length=16384 mode=0 hold=1000 auto=0 ch=42 loopback=0 handle=0 pages=4'),
      // The instance in memory layout: Data1..3 little-endian, Data4 as written.
      parsed(`verb=5 ${base} ch=42 loopback=1 handle=0 pages=4`, '3a5c2f8db4710e4e9a6d2c1f0000002a'),
      parsed(`verb=5 ${base} ch=3 loopback=0 handle=420 pages=8`, '3a5c2f8db4710e4e9a6d2c1f00000003'),
      parsed(`verb=7 ${base} ch=1 loopback=0 handle=0 pages=4`),
      parsed(`verb=8 ${base} ch=1 loopback=0 handle=0 pages=4`),
      parsed(`verb=9 ${base} ch=1 loopback=0 handle=0 pages=4`),
      parsed(`verb=10 ${base} ch=1 loopback=0 handle=0 pages=4`),
      parsed(`verb=11 ${base} ch=1 loopback=0 handle=0 pages=4`),
      // pause: the channel-level pause a loopback job's pause step sends (no save).
      parsed(`verb=12 ${base} ch=2 loopback=0 handle=0 pages=4`),
      parsed(`verb=5 ${base} ch=5 loopback=1 handle=0 pages=4 force-new-channel`, '3a5c2f8db4710e4e9a6d2c1f00000005'),
      parsed(`verb=5 ${base} ch=5 loopback=1 handle=0 pages=2 force-new-channel`, '3a5c2f8db4710e4e9a6d2c1f00000005'),
      parsed(`verb=13 ${base} ch=1 loopback=0 handle=0 pages=4`),
      // rescind: the host revokes the offer; it must name its channel (refused below without).
      parsed(`verb=14 ${base} ch=3 loopback=0 handle=0 pages=4`),
    ]);
  });

  it('refuses malformed commands instead of guessing', () => {
    const bad = [
      'parse', 'parse frobnicate', 'parse send 1 4096 3 0', 'parse send 1 23 0 0',
      `parse send 1 ${MAX_MESSAGE_SIZE + 1} 0 0`, 'parse send 1 4096 0', 'parse send x 4096 0 0',
      'parse send 1 4096 0 0 ch=', 'parse send 99999999999 24 0 0', 'parse hold', 'parse hold -1',
      'parse save', 'parse close', 'parse detach', 'parse discard', 'parse rescind', 'parse rescind 3', 'parse open 1 not-a-guid loopback',
      'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a', 'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a handle=0',
      'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback ch=1',
      'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback ring-pages=0',
      'parse send 1 2 3 4 5 6 7 8 9', 'parse pause',
      'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback force-new-channel force-new-channel',
      'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback ring-pages=2 ring-pages=3',
      'parse open 1 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback force-new',
    ];
    expect(askC(bad)).toEqual(bad.map(() => 'error'));
  });
});
