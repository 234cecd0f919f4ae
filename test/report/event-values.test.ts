// The values of a failure in full: NTSTATUS names from the one table, and the observed event
// beside what the model expected, field by field.
import { describe, expect, it } from 'vitest';
import { describeEvent } from '../../src/check/replay.ts';
import { parseDescribed, statusesIn, statusLabel, valueDiff } from '../../src/report/event-values.ts';
import type { EventBody } from '../../src/trace/schema.ts';

describe('statusLabel', () => {
  it('names the statuses the bench knows, in capitals, and leaves others as hex', () => {
    expect(statusLabel('c0000001')).toBe('C0000001 STATUS_UNSUCCESSFUL');
    expect(statusLabel('00000000')).toBe('00000000 STATUS_SUCCESS');
    expect(statusLabel('C000003E')).toBe('C000003E STATUS_DATA_ERROR');
    expect(statusLabel('c0000184')).toBe('C0000184 STATUS_INVALID_DEVICE_STATE');
    expect(statusLabel('deadbeef')).toBe('DEADBEEF');
    expect(statusLabel('not-hex')).toBe('not-hex');
  });
});

describe('statusesIn', () => {
  it('names the known statuses a message mentions, once each, and nothing else of 8 hex digits', () => {
    expect(statusesIn('0/g2h/1 completion status c0000001, the receiver sent 00000000; again C0000001; digest deadbeef')).toEqual(['C0000001 STATUS_UNSUCCESSFUL', '00000000 STATUS_SUCCESS']);
    expect(statusesIn('no status here, tx 12345678 of 0123456789abcdef')).toEqual([]);
  });
});

describe('valueDiff', () => {
  it('reads back what the checker writes (describeEvent)', () => {
    const e = { side: 'guest', ev: 'pkt.complete', ch: 0, dir: 'g2h', tx: 12, status: '00000000', len: 16, digest: 'ab'.repeat(16) } as unknown as EventBody;
    expect(parseDescribed(describeEvent(e))).toEqual({ side: 'guest', ev: 'pkt.complete', fields: { ch: '0', dir: 'g2h', tx: '12', status: '00000000', len: '16', digest: 'ab'.repeat(16) } });
    expect(parseDescribed('host writes a packet it queued (ch=0)')).toBeUndefined();
  });

  it('marks the fields that differ from the alternatives of the same kind, values in full', () => {
    const long = '0123456789abcdef'.repeat(4);
    const observed = { v: 1, seq: 40, src: 'hyperv', side: 'host', ev: 'pkt.completion', ch: 0, dir: 'g2h', tx: 12, status: 'c0000001', digest: long };
    const d = valueDiff(observed, ['guest pkt.recv ch=0 dir=h2g tx=3', `host pkt.completion ch=0 dir=g2h tx=12 status=00000000 digest=${long}`]);
    expect(d.alternatives).toEqual([`host pkt.completion ch=0 dir=g2h tx=12 status=00000000 digest=${long}`]);
    expect(d.rows.map((r) => r.field)).toEqual(['side', 'ev', 'ch', 'dir', 'tx', 'status', 'digest']);
    expect(d.rows.filter((r) => r.differs)).toEqual([{ field: 'status', observed: 'C0000001 STATUS_UNSUCCESSFUL', expected: ['00000000 STATUS_SUCCESS'], differs: true }]);
    expect(d.rows.find((r) => r.field === 'digest')!.observed).toBe(long);
  });

  it('without a comparable alternative shows the observed fields alone, none marked', () => {
    const d = valueDiff({ v: 1, seq: 2, src: 'x', side: 'guest', ev: 'pkt.recv', tx: 1, dir: 'h2g' }, ['host pkt.save ch=0 dir=h2g tx=1']);
    expect(d.alternatives).toEqual([]);
    expect(d.rows.some((r) => r.differs)).toBe(false);
    expect(d.rows.map((r) => r.field)).toEqual(['side', 'ev', 'dir', 'tx']);
  });
});
