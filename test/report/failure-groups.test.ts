// Grouping failures by cause, and infrastructure errors by what went wrong: what a person
// reading a bad night's report relies on to see "24 failures, one cause".
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adviceFor, causeOf, errorReasons, groupFailures, groupInfraErrors, normaliseReason } from '../../src/report/failure-groups.ts';
import type { TraceEvent } from '../../src/trace/schema.ts';
import { job } from './support/fixtures.ts';

const ev = (x: Record<string, unknown>) => ({ v: 1, seq: 1, src: 'hyperv', ch: 0, ...x }) as unknown as TraceEvent;
const diverge = (id: string, cls: string, property: string, e: Record<string, unknown> | undefined, over: Record<string, unknown> = {}) =>
  job({ jobId: id, verdict: 'diverge', divergenceClass: cls, failedProperties: [property], firstUnexplained: e ? { file: 't', line: 1, event: ev(e) } : undefined, ...over });

describe('groupFailures', () => {
  it('puts jobs with one cause in one group whatever their tx, seq, scenario or build, split by build', () => {
    const jobs = [
      diverge('a', 'lost', 'p1', { side: 'host', ev: 'pkt.completion', dir: 'h2g', tx: 4, seq: 9 }, { hostBuild: '10.0.26100.1' }),
      diverge('b', 'lost', 'p1', { side: 'host', ev: 'pkt.completion', dir: 'h2g', tx: 7, seq: 30 }, { hostBuild: '10.0.9600.1', scenario: 'other' }),
      diverge('c', 'lost', 'p1', { side: 'host', ev: 'pkt.completion', dir: 'h2g', tx: 1 }, { hostBuild: '10.0.26100.1' }),
      // Another direction, another property, another class: each a cause of its own.
      diverge('d', 'lost', 'p1', { side: 'host', ev: 'pkt.completion', dir: 'g2h', tx: 1 }),
      diverge('e', 'lost', 'p2', { side: 'host', ev: 'pkt.completion', dir: 'h2g', tx: 1 }),
      diverge('f', 'status', 'p1', { side: 'host', ev: 'pkt.completion', dir: 'h2g', tx: 1 }),
      job({ jobId: 'g', verdict: 'hang', divergenceClass: 'hang', message: 'stuck' }),
      job({ jobId: 'h', verdict: 'error', message: 'host unreachable' }),
      job({ jobId: 'i' }),
    ];
    const groups = groupFailures(jobs);
    // Largest group first; groups of one size by class name.
    expect(groups.map((g) => [g.id, g.jobs.map((j) => j.jobId).join('')])).toEqual([['group-1', 'abc'], ['group-2', 'g'], ['group-3', 'd'], ['group-4', 'e'], ['group-5', 'f']]);
    expect(groups[0]!.cause).toEqual({ divergenceClass: 'lost', property: 'p1', pattern: 'host pkt.completion h2g' });
    // Builds in numeric order: 9600 before 26100.
    expect(groups[0]!.builds.map((b) => [b.hostBuild, b.jobs.map((j) => j.jobId).join('')])).toEqual([['10.0.9600.1', 'b'], ['10.0.26100.1', 'ac']]);
    expect(causeOf(jobs[6]!)).toEqual({ divergenceClass: 'hang', property: 'no property named', pattern: 'no single event (found at the end of the trace)' });
  });

  it('puts a group whose every failure is quarantined after the ones that fail the run', () => {
    const q = { reason: 'known', until: '2030-01-01' };
    const jobs = [
      diverge('q1', 'lost', 'p', undefined, { quarantined: q }),
      diverge('q2', 'lost', 'p', undefined, { quarantined: q }),
      diverge('s', 'status', 'p', undefined),
    ];
    expect(groupFailures(jobs, '2026-11-24T00:00:00Z').map((g) => g.cause.divergenceClass)).toEqual(['status', 'lost']);
    // Once the quarantine has expired, the larger group leads again.
    expect(groupFailures(jobs, '2031-01-01T00:00:00Z').map((g) => g.cause.divergenceClass)).toEqual(['lost', 'status']);
  });

  // Invariant: every diverging or hanging job is in exactly one group and one build group
  // of it, and no other job is in any.
  it('places each failing job exactly once', () => {
    const arb = fc.array(
      fc.record({
        verdict: fc.constantFrom('pass', 'diverge', 'hang', 'error', 'skipped'),
        cls: fc.constantFrom('lost', 'status', 'payload'),
        prop: fc.constantFrom('p1', 'p2'),
        evName: fc.constantFrom('pkt.recv', 'pkt.save', undefined),
        build: fc.constantFrom('10.0.1', '10.0.2', '10.0.10'),
      }),
      { maxLength: 40 },
    );
    fc.assert(fc.property(arb, (specs) => {
      const jobs = specs.map((s, i) => s.verdict === 'diverge' || s.verdict === 'hang'
        ? diverge(`j${i}`, s.cls, s.prop, s.evName ? { side: 'guest', ev: s.evName, dir: 'h2g' } : undefined, { verdict: s.verdict, hostBuild: s.build })
        : job({ jobId: `j${i}`, verdict: s.verdict as 'pass', hostBuild: s.build }));
      const groups = groupFailures(jobs);
      const inGroups = groups.flatMap((g) => g.jobs.map((j) => j.jobId)).sort();
      const inBuilds = groups.flatMap((g) => g.builds.flatMap((b) => b.jobs.map((j) => j.jobId))).sort();
      const failing = jobs.filter((j) => j.verdict === 'diverge' || j.verdict === 'hang').map((j) => j.jobId).sort();
      expect(inGroups).toEqual(failing);
      expect(inBuilds).toEqual(failing);
      for (const g of groups) for (const b of g.builds) for (const j of b.jobs) expect(j.hostBuild).toBe(b.hostBuild);
    }));
  });
});

describe('groupInfraErrors', () => {
  it('turns every job of a day with unreachable hosts into one box per cause, naming the hosts', () => {
    const down = (id: string, host: string, ip: string, build = '10.0.26100.1') =>
      job({ jobId: id, host, hostBuild: build, verdict: 'error', message: `no host of build ${build} is left in the run (${host}: preflight: reachable: connect ECONNREFUSED ${ip}:22)` });
    const jobs = [
      ...Array.from({ length: 20 }, (_, i) => down(`a${i}`, 'hv-01', '10.1.0.1')),
      ...Array.from({ length: 20 }, (_, i) => down(`b${i}`, 'hv-02', '10.1.0.2', '10.0.20348.1')),
      ...Array.from({ length: 16 }, (_, i) => down(`c${i}`, 'hv-03', '10.1.0.3')),
      job({ jobId: 'w', host: 'hv-04', verdict: 'error', message: 'internal error: worker exited with code 1 (after 812 ms)' }),
      job({ jobId: 'x', host: 'hv-04', verdict: 'error', message: 'internal error: worker exited with code 1 (after 90 ms)' }),
      job({ jobId: 'p' }),
    ];
    const boxes = groupInfraErrors(jobs);
    expect(boxes.map((b) => [b.cause, b.hosts, b.jobs.length])).toEqual([
      ['preflight: reachable: connect ECONNREFUSED <address>', ['hv-01', 'hv-02', 'hv-03'], 56],
      ['internal error: worker exited with code 1', ['hv-04'], 2],
    ]);
    expect(boxes[0]!.example).toBe('preflight: reachable: connect ECONNREFUSED 10.1.0.1:22');
    expect(boxes[0]!.advice).toMatch(/could not reach the host/);
    expect(boxes[1]!.advice).toMatch(/The bench itself failed/);
  });

  it('reads each host\'s reason out of a job that found no host left, and counts the job once per cause', () => {
    const j = job({ jobId: 'm', verdict: 'error', message: 'no host of build 1 paired with build 1 is left in the run (hv-a: preflight: test signing: off; hv-b: preflight: free disk C:: 3.2 GB free, need 20 GB)' });
    expect(errorReasons(j)).toEqual([{ host: 'hv-a', reason: 'preflight: test signing: off' }, { host: 'hv-b', reason: 'preflight: free disk C:: 3.2 GB free, need 20 GB' }]);
    const boxes = groupInfraErrors([j]);
    expect(boxes.map((b) => b.hosts)).toEqual([['hv-b'], ['hv-a']]);
    expect(boxes.map((b) => b.cause)).toContain('preflight: free disk C:: N GB free, need N GB');
    expect(adviceFor(boxes.find((b) => b.hosts[0] === 'hv-a')!.cause)).toMatch(/bcdedit \/set testsigning on/);
  });

  it('sets aside what differs between hosts and attempts, and keeps the rest', () => {
    expect(normaliseReason('ssh to hv-07 timed out after 30 s (after 30012 ms)', 'hv-07')).toBe('ssh to <host> timed out after N s');
    expect(normaliseReason('Get-VMSwitch: not found', 'hv-07')).toBe('Get-VMSwitch: not found');
  });
});
