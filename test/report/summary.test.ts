import { describe, expect, it } from 'vitest';
import { isQuarantineLive, summarize, worstVerdict } from '../../src/report/summary.ts';
import { fixtureSummary, job } from './support/fixtures.ts';

describe('summarize', () => {
  it('exits 0 when every job passed or was skipped', () => {
    const r = summarize([job({ jobId: 'a' }), job({ jobId: 'b', verdict: 'skipped' })]);
    expect(r.exitCode).toBe(0);
    expect(r.counts).toMatchObject({ total: 2, pass: 1, skipped: 1 });
  });

  it('exits 1 on any divergence or hang that is not quarantined, even beside infra errors', () => {
    expect(summarize([job({ jobId: 'a', verdict: 'diverge' })]).exitCode).toBe(1);
    expect(summarize([job({ jobId: 'a', verdict: 'hang' })]).exitCode).toBe(1);
    expect(summarize([job({ jobId: 'a', verdict: 'error' }), job({ jobId: 'b', verdict: 'diverge' })]).exitCode).toBe(1);
  });

  it('exits 3 when the only failures are infrastructure errors', () => {
    const r = summarize([job({ jobId: 'a' }), job({ jobId: 'b', verdict: 'error' })]);
    expect(r.exitCode).toBe(3);
    expect(r.counts.error).toBe(1);
  });

  it('does not fail the run for a quarantined divergence while the quarantine lasts', () => {
    const q = job({ jobId: 'a', verdict: 'diverge', quarantined: { reason: 'known', until: '2026-12-31' } });
    const live = summarize([q], '2026-11-24T00:00:00Z');
    expect(live.exitCode).toBe(0);
    expect(live.counts).toMatchObject({ diverge: 1, quarantined: 1 });
    const expired = summarize([q], '2027-01-02T00:00:00Z');
    expect(expired.exitCode).toBe(1);
    expect(expired.counts.quarantined).toBe(0);
  });

  it('counts the fixture nightly as the report shows it', () => {
    const s = fixtureSummary();
    expect(summarize(s.jobs, s.startedAt)).toEqual({
      counts: { total: 13, pass: 9, diverge: 2, error: 0, hang: 1, skipped: 1, quarantined: 1 },
      exitCode: 1,
    });
  });
});

describe('quarantine and cell verdicts', () => {
  it('keeps excusing when a date cannot be read, rather than turning a build red', () => {
    expect(isQuarantineLive({ quarantined: { reason: 'x', until: 'someday' } }, '2026-01-01')).toBe(true);
    expect(isQuarantineLive({}, '2026-01-01')).toBe(false);
  });

  it('shows the worst verdict of a cell: diverge > hang > error > pass > skipped', () => {
    expect(worstVerdict(['pass', 'error', 'skipped'])).toBe('error');
    expect(worstVerdict(['hang', 'diverge', 'pass'])).toBe('diverge');
    expect(worstVerdict(['skipped', 'pass'])).toBe('pass');
    expect(worstVerdict([])).toBeUndefined();
  });
});
