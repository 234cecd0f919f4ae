import { describe, expect, it } from 'vitest';
import { ListReporter } from '../../src/report/list-reporter.ts';
import { fixtureSummary } from './support/fixtures.ts';

function drive(tty: boolean) {
  let out = '';
  let clock = 1_000;
  const r = new ListReporter({ stream: { write: (s: string) => (out += s) }, tty, color: true, width: 100, now: () => clock });
  const s = fixtureSummary();
  const jobs = s.jobs.slice(0, 3);
  r.onRunBegin({ runId: s.runId, lab: s.lab, jobs });
  for (const j of jobs) {
    r.onJobBegin(j);
    clock += 10_000;
    r.onJobEnd(j, j);
  }
  r.onRunEnd(s);
  return out;
}

describe('ListReporter', () => {
  it('writes plain lines without a TTY: no carriage returns, no escape codes', () => {
    const out = drive(false);
    expect(out).not.toMatch(/[\r\u001b]/);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('run 2026-11-22-nightly (lab-east): 3 job(s)');
    expect(lines[1]).toMatch(/^\[1\/3\] ✓ pass +save-restore-inflight-h2g · hv-01 10\.0\.20348\.2700 \/ ubuntu-24\.04/);
    expect(lines[3]).toMatch(/^\[3\/3\] ◔ hang \(hang\)/);
    expect(lines[4]).toMatch(/^FAILED run 2026-11-22-nightly/);
  });

  it('keeps a status line in place on a TTY, and clears it before each job line', () => {
    const out = drive(true);
    expect(out).toContain('\r\u001b[2K0/3 done · 1 running · 0 failed · 0:00 elapsed · estimating…');
    expect(out).toContain('\r\u001b[2K2/3 done · 0 running · 0 failed · 0:20 elapsed · ~0:10 left');
    // The quarantined hang does not count as failed.
    expect(out).toContain('3/3 done · 0 running · 0 failed');
    // Nothing is left on the status line at the end: the last write is the closing summary.
    expect(out.endsWith('\n')).toBe(true);
  });

  it('says whether it writes to stdout', () => {
    const w = { write: () => true };
    expect(new ListReporter({ stream: w, tty: false, color: false, width: 80 }).printsToStdout()).toBe(false);
    expect(new ListReporter({ stream: w, tty: false, color: false, width: 80, isStdout: true }).printsToStdout()).toBe(true);
  });
});
