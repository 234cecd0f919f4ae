// A divergence on a transaction id from 2^53 on (vmbus/tx-id.ts keeps those as bigints)
// must reach summary.json, the journal line and junit.xml as the exact integer: plain
// JSON.stringify throws on a bigint, which would lose the whole run's results.
import { describe, expect, it } from 'vitest';
import { serializeSummary } from '../../src/report/json-reporter.ts';
import { fixtureSummary } from './support/fixtures.ts';
import type { RunSummary } from '../../src/report/summary.ts';

const BIG = 0xffffffffffffffffn;

function withBigTx(): RunSummary {
  const s = fixtureSummary();
  const job = s.jobs.find((j) => j.firstUnexplained) ?? s.jobs[0]!;
  job.firstUnexplained = { file: 'host.jsonl', line: 7, event: { v: 1, seq: 7, src: 'hyperv', side: 'host', ev: 'pkt.send', ch: 0, tx: BIG, dir: 'h2g', len: 8, digest: '00', wantCompletion: true } as never };
  return s;
}

describe('reports keep 64-bit transaction ids exact', () => {
  it('writes summary.json with the id as the integer it is, as valid JSON', () => {
    const text = serializeSummary(withBigTx());
    expect(text).toContain('"tx": 18446744073709551615');
    expect(() => JSON.parse(text)).not.toThrow();
  });
});
