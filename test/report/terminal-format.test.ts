import { describe, expect, it } from 'vitest';
import { estimateRemainingMs, fit, formatClock, formatJobLine, formatProgress, formatRunEnd } from '../../src/report/terminal-format.ts';
import { fixtureSummary, job } from './support/fixtures.ts';

const plain = { color: false, width: 200 };
const ESC = '\u001b[';

describe('terminal formatters', () => {
  it('formats clocks as m:ss and h:mm:ss', () => {
    expect(formatClock(0)).toBe('0:00');
    expect(formatClock(65_000)).toBe('1:05');
    expect(formatClock(3_723_000)).toBe('1:02:03');
  });

  it('estimates the time left from the pace so far, and says when it cannot yet', () => {
    expect(estimateRemainingMs({ total: 10, done: 0, running: 2, failed: 0, elapsedMs: 5000 })).toBeUndefined();
    expect(estimateRemainingMs({ total: 10, done: 4, running: 2, failed: 0, elapsedMs: 40_000 })).toBe(60_000);
    expect(estimateRemainingMs({ total: 10, done: 10, running: 0, failed: 0, elapsedMs: 1 })).toBe(0);
  });

  it('shows jobs done, running and failed, elapsed time and the estimate', () => {
    const p = { total: 40, done: 12, running: 2, failed: 1, elapsedMs: 42_000 };
    expect(formatProgress(p, plain)).toBe('12/40 done · 2 running · 1 failed · 0:42 elapsed · ~1:38 left');
    expect(formatProgress({ ...p, done: 0 }, plain)).toContain('estimating…');
  });

  it('fits the status line to the width so it never wraps, and colours only with colour on', () => {
    const p = { total: 40, done: 12, running: 2, failed: 1, elapsedMs: 42_000 };
    const narrow = formatProgress(p, { color: false, width: 20 });
    expect([...narrow]).toHaveLength(20);
    expect(narrow.endsWith('…')).toBe(true);
    expect(formatProgress(p, { color: true, width: 200 })).toContain(`${ESC}31m1 failed${ESC}0m`);
    expect(formatProgress(p, plain)).not.toContain(ESC);
  });

  it('writes one line per job with verdict, class, place and time', () => {
    const j = job({ jobId: 'a', scenario: 'save-inflight', host: 'hv-01', verdict: 'diverge', divergenceClass: 'lost', message: 'tx 5 lost', durationsMs: { real: 1200, emulator: 300, check: 50 } });
    const line = formatJobLine(j, j, plain, { index: 3, total: 9 });
    expect(line).toBe('[3/9] ✗ diverge (lost)     save-inflight · hv-01 10.0.26100.1 / ubuntu-24.04 · seed 1 · 1.3 s — tx 5 lost');
    const coloured = formatJobLine(j, j, { color: true, width: 200 }, { index: 3, total: 9 });
    expect(coloured.replaceAll(/\u001b\[\d+m/g, '')).toBe(line);
    expect(coloured).toContain(`${ESC}31m`);
  });

  it('shows the build the result records (read from the host), not the plan\'s label, for a skipped job too', () => {
    const planned = job({ jobId: 'j', verdict: 'skipped', hostBuild: '26100.2314', message: 'not applicable: loopback: 2 channels' });
    const line = formatJobLine(planned, { ...planned, hostBuild: '26100.4061' }, plain);
    expect(line).toContain('hv-01 26100.4061 /');
    expect(line).not.toContain('26100.2314');
  });

  it('never cuts through a multi-unit character', () => {
    expect(fit('ab😀cd', 4)).toBe('ab😀…');
  });

  it('closes with the counts, the status and every unexcused failure', () => {
    const lines = formatRunEnd(fixtureSummary(), plain, ['results/x/report.html']);
    expect(lines[0]).toBe('FAILED run 2026-11-22-nightly (lab-east) in 47:12: 9 passed, 2 diverged, 1 hung, 0 errors, 1 skipped, 1 quarantined');
    expect(lines.filter((l) => l.includes('✗ diverge'))).toHaveLength(2);
    expect(lines.some((l) => l.includes('hang'))).toBe(false); // quarantined: not listed as a failure
    expect(lines.at(-1)).toBe('  results/x/report.html');
  });

  it('prints each failure\'s message in full, however long, with where its evidence is', () => {
    const s = fixtureSummary();
    const long = `${'a very long divergence message '.repeat(12)}END`;
    const failing = s.jobs.find((j) => j.verdict === 'diverge')!;
    failing.message = long;
    failing.firstUnexplained = { file: 'jobs/x/emulator.jsonl', line: 42, event: failing.firstUnexplained?.event ?? ({} as never) };
    const lines = formatRunEnd(s, { color: false, width: 80 }, [], '/results/run-1');
    expect(lines).toContain(`      ${long}`);
    expect(lines).toContain('      at /results/run-1/jobs/x/emulator.jsonl:42');
    // The job's own line stays within the width.
    for (const l of lines.filter((x) => x.includes('✗'))) expect([...l].length).toBeLessThanOrEqual(80);
  });
});
