import { describe, expect, it } from 'vitest';
import { buildMatrix, cellLabel, naturalCompare } from '../../src/report/matrix.ts';
import { cellId } from '../../src/report/summary.ts';
import { fixtureSummary, job } from './support/fixtures.ts';

describe('buildMatrix', () => {
  it('orders host builds by their numbers, not as text', () => {
    expect(['10.0.26100.1742', '10.0.9600.1', '10.0.20348.2700'].sort(naturalCompare)).toEqual(['10.0.9600.1', '10.0.20348.2700', '10.0.26100.1742']);
  });

  it('shows the worst verdict of a cell, with how many of its jobs share it', () => {
    const m = buildMatrix(fixtureSummary().jobs);
    const c = m.cells.get(cellId({ hostBuild: '10.0.26100.1742', guest: 'debian-12', scenario: 'checkpoint-apply-discards-future' }))!;
    expect(c.jobs.map((j) => j.host)).toEqual(['hv-02', 'hv-03']);
    expect([c.verdict, c.divergenceClass, c.worstCount]).toEqual(['diverge', 'status', 1]);
    expect(cellLabel(c)).toBe('status');
  });

  it('marks a cell quarantined only when every failing job in it is', () => {
    const q = { reason: 'known', until: '2099-01-01' };
    const both = buildMatrix([job({ jobId: 'a', verdict: 'hang', quarantined: q }), job({ jobId: 'b', host: 'hv-02', verdict: 'diverge' })]);
    expect([...both.cells.values()][0]!.quarantined).toBe(false);
    const one = buildMatrix([job({ jobId: 'a', verdict: 'hang', quarantined: q }), job({ jobId: 'b', host: 'hv-02' })]);
    expect([...one.cells.values()][0]!.quarantined).toBe(true);
  });

  it('labels cells in words', () => {
    expect(cellLabel({ verdict: 'diverge', divergenceClass: undefined })).toBe('diverge');
    expect(cellLabel({ verdict: 'skipped', divergenceClass: undefined })).toBe('skip');
    expect(cellLabel({ verdict: 'error', divergenceClass: undefined })).toBe('error');
  });
});
