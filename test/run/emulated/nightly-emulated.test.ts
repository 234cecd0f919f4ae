// The emulated nightly, in process: the run directory it leaves (plan, journal, traces,
// summary.json the report layer accepts, junit.xml, report.html, history), how divergences
// and dead workers become results, and resuming a run whose journal holds some jobs.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLabFile, type EmulatedLab } from '../../../src/run/emulated/emulated-lab.ts';
import type { JournalRecord } from '../../../src/run/engine/journal.ts';
import { runEmulatedNightly } from '../../../src/run/emulated/nightly-emulated.ts';
import type { Plan } from '../../../src/run/engine/plan.ts';
import { loadSummary } from '../../../src/report/summary-schema.ts';
import { runDirLayout } from '../../../src/report/run-dir.ts';

const MISBEHAVING = new URL('../fixtures/misbehaving-worker.ts', import.meta.url);
const quiet = { reporters: ['json', 'junit', 'html'] as const, workers: 2 };

async function lab(name: string): Promise<EmulatedLab> {
  const l = await loadLabFile(`test/run/fixtures/labs/${name}.yaml`);
  if (l.kind !== 'emulated') throw new Error('fixture lab is not emulated');
  return l;
}

function journalOf(runDir: string): JournalRecord[] {
  return readFileSync(runDirLayout(runDir).journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as JournalRecord);
}

function countBy(entries: JournalRecord[], type: JournalRecord['t']): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of entries) if (e.t === type && 'jobId' in e) m.set(e.jobId, (m.get(e.jobId) ?? 0) + 1);
  return m;
}

describe('runEmulatedNightly', () => {
  it('devices: c in the lab file runs every job on the C VSP, and every job passes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-c-'));
    const l = await lab('small-c');
    expect(l.devices).toBe('c');
    // An empty build cache, as on a fresh clone: the worker threads (one pid) then build
    // the C VSP at the same moment, which once made them share a work folder.
    const savedCache = process.env.VMBUS_BENCH_WASM_CACHE;
    process.env.VMBUS_BENCH_WASM_CACHE = mkdtempSync(join(tmpdir(), 'nightly-c-cache-'));
    let r: Awaited<ReturnType<typeof runEmulatedNightly>>;
    try {
      r = await runEmulatedNightly({ lab: l, outRoot: out, ...quiet });
    } finally {
      if (savedCache === undefined) delete process.env.VMBUS_BENCH_WASM_CACHE;
      else process.env.VMBUS_BENCH_WASM_CACHE = savedCache;
    }
    const summary = await loadSummary(runDirLayout(r.runDir).summary);
    expect(summary.jobs).toHaveLength(4);
    expect(summary.jobs.map((j) => j.verdict)).toEqual(['pass', 'pass', 'pass', 'pass']);
    // The C VSP's hallmark in every trace with a save: KMCL does not tell it libLen.
    for (const j of summary.jobs) {
      const saves = readFileSync(join(r.runDir, j.evidence!.trace!), 'utf8').trim().split('\n').map((x) => JSON.parse(x) as Record<string, unknown>).filter((e) => e.ev === 'pkt.save');
      expect(saves.length, j.jobId).toBeGreaterThan(0);
      expect(saves.every((e) => e.libLen === 0), j.jobId).toBe(true);
    }
    rmSync(out, { recursive: true, force: true });
  });

  it('devices: c-linux in the lab file runs every job with the C VSP and the C Linux guest driver, and every job passes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-c-linux-'));
    const l = await lab('small-c-linux');
    expect(l.devices).toBe('c-linux');
    const r = await runEmulatedNightly({ lab: l, outRoot: out, ...quiet });
    const summary = await loadSummary(runDirLayout(r.runDir).summary);
    expect(summary.jobs.map((j) => j.verdict)).toEqual(['pass', 'pass']);
    for (const j of summary.jobs) {
      const guest = readFileSync(join(r.runDir, j.evidence!.trace!), 'utf8').trim().split('\n').map((x) => JSON.parse(x) as Record<string, unknown>).filter((e) => e.side === 'guest');
      // The guest's events are the driver's: a Linux-style open (no Started), sends numbered from 1.
      expect(guest.filter((e) => e.ev === 'ch.state').slice(0, 2).map((e) => e.state), j.jobId).toEqual(['Opened', 'Active']);
      expect(guest.some((e) => e.ev === 'pkt.send'), j.jobId).toBe(true);
    }
    rmSync(out, { recursive: true, force: true });
  });

  it('devices: c-windows in the lab file runs every job with the C VSP and the C Windows guest driver, and every job passes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-c-windows-'));
    const l = await lab('small-c-windows');
    expect(l.devices).toBe('c-windows');
    const r = await runEmulatedNightly({ lab: l, outRoot: out, ...quiet });
    const summary = await loadSummary(runDirLayout(r.runDir).summary);
    expect(summary.jobs.map((j) => j.verdict)).toEqual(['pass', 'pass']);
    for (const j of summary.jobs) {
      const guest = readFileSync(join(r.runDir, j.evidence!.trace!), 'utf8').trim().split('\n').map((x) => JSON.parse(x) as Record<string, unknown>).filter((e) => e.side === 'guest');
      // The guest's events are the driver's: a KMCL client's own Enabled and Started around the offer.
      expect(guest.filter((e) => e.ev === 'ch.state').slice(0, 4).map((e) => e.state), j.jobId).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
      expect(guest.some((e) => e.ev === 'pkt.send'), j.jobId).toBe(true);
    }
    rmSync(out, { recursive: true, force: true });
  });

  it('plans hosts x guests x scenarios x seeds and leaves a complete run directory', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-'));
    const r = await runEmulatedNightly({ lab: await lab('small'), outRoot: out, ...quiet });
    expect(r.runId).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-[0-9a-f]{4}$/);
    const layout = runDirLayout(r.runDir);
    const plan = JSON.parse(readFileSync(layout.plan, 'utf8')) as Plan;
    expect(plan.jobs.map((j) => [j.host, j.scenario, j.guest, j.seed]).sort()).toEqual([
      ['emu-a', 'idle-save-restore', 'linux-twin', 7], ['emu-a', 'quota-and-deferral', 'linux-twin', 7],
      ['emu-b', 'idle-save-restore', 'linux-twin', 7], ['emu-b', 'quota-and-deferral', 'linux-twin', 7],
    ]);
    expect(plan.unplaced).toEqual([]);

    const journal = journalOf(r.runDir);
    expect(journal[0]).toMatchObject({ t: 'run', runId: r.runId, planDigest: plan.digest, resumed: false });
    expect(journal.at(-1)).toMatchObject({ t: 'run-end' });
    for (const j of plan.jobs) {
      expect(countBy(journal, 'attempt').get(j.jobId)).toBe(1);
      expect(countBy(journal, 'end').get(j.jobId)).toBe(1);
      // Each job ran on its own host: the host's gap choices are the point of the host.
      expect(journal.find((e) => e.t === 'attempt' && e.jobId === j.jobId)).toMatchObject({ hosts: [j.host] });
    }

    const summary = await loadSummary(layout.summary); // the report layer's own validation
    expect(summary.runId).toBe(r.runId);
    expect(summary.lab).toBe('small-emulated');
    expect(summary.jobs.map((j) => j.jobId)).toEqual(plan.jobs.map((j) => j.jobId));
    for (const j of summary.jobs) {
      expect(j).toMatchObject({ verdict: 'pass', guest: 'linux-twin', template: 'emulator', seed: 7, evidence: { trace: `jobs/${j.jobId}/emulator.jsonl` } });
      const lines = readFileSync(join(r.runDir, j.evidence.trace!), 'utf8').trim().split('\n');
      expect(JSON.parse(lines[0]!)).toMatchObject({ seq: 1, ev: 'scenario.begin', name: j.scenario, seed: 7 });
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ ev: 'scenario.end' });
    }
    expect(summary.jobs.find((j) => j.hostBuild === 'emu-build-b')).toBeDefined();
    const junit = readFileSync(layout.junit, 'utf8');
    expect(junit.match(/<testcase /g)).toHaveLength(4);
    expect(junit).toMatch(/<testsuite [^>]*hostname="emu-b"[^>]* tests="2" failures="0" errors="0"/);
    expect(readFileSync(layout.report, 'utf8')).toContain(r.runId);
    expect(existsSync(join(out, 'history.sqlite'))).toBe(true);
    expect(r.outcome.exitCode).toBe(0);
  });

  it('turns a divergence into a diverge verdict with its class, properties and timeline, and a dead worker into an error', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-'));
    const r = await runEmulatedNightly({ lab: await lab('bitflip-and-crash'), outRoot: out, ...quiet, workerUrl: MISBEHAVING });
    const summary = await loadSummary(runDirLayout(r.runDir).summary);
    const byHost = Object.fromEntries(summary.jobs.map((j) => [j.host, j]));
    const d = byHost['bitflip-host']!;
    expect(d.verdict).toBe('diverge');
    expect(d.divergenceClass).toBe('payload');
    expect(d.failedProperties).toContain('payload');
    expect(d.message).toMatch(/received digest 00000000deadbeef/);
    const seq = d.firstUnexplained!.event.seq;
    expect(d.firstUnexplained).toMatchObject({ file: d.evidence.trace, line: seq, event: { ev: 'pkt.recv', digest: '00000000deadbeef' } });
    // The trace on disk has the event on the line the summary names.
    const line = readFileSync(join(r.runDir, d.evidence.trace!), 'utf8').split('\n')[seq - 1]!;
    expect(JSON.parse(line)).toEqual(d.firstUnexplained!.event);
    const tl = d.timeline!.map((e) => e.seq);
    expect(tl).toContain(seq);
    expect(tl.length).toBeGreaterThanOrEqual(8);
    expect(tl.length).toBeLessThanOrEqual(11);
    expect(tl).toEqual([...tl].sort((a, b) => a - b));

    const e = byHost['crash-throw-host']!;
    expect(e.verdict).toBe('error');
    expect(e.message).toMatch(/emulator worker crashed .* while running job \S+@crash-throw-host/);
    // A dead worker is an infrastructure failure: retried on another worker before it is an error.
    expect(e.attempts).toBe(3);
    expect(byHost['ok-host']!.verdict).toBe('pass');
    expect(r.outcome.exitCode).toBe(1);
    expect(r.outcome.counts).toMatchObject({ pass: 1, diverge: 1, error: 1 });
  });

  it('resumes a run from a partial journal without running recorded jobs again', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-'));
    const first = await runEmulatedNightly({ lab: await lab('small'), outRoot: out, ...quiet });
    const layout = runDirLayout(first.runDir);
    const full = journalOf(first.runDir);
    const ends = full.filter((e): e is Extract<JournalRecord, { t: 'end' }> => e.t === 'end');
    const kept = ends.slice(0, 2);
    const interrupted = ends[2]!.jobId;
    // The run "died": two jobs recorded, a third running, and half a line being appended.
    const lines = [
      full[0]!,
      ...kept.flatMap((e) => [{ t: 'attempt', jobId: e.jobId, attempt: 1, hosts: [e.result.host], at: e.at }, e]),
      { t: 'attempt', jobId: interrupted, attempt: 1, hosts: [ends[2]!.result.host], at: ends[2]!.at },
    ].map((e) => JSON.stringify(e));
    writeFileSync(layout.journal, `${lines.join('\n')}\n{"t":"end","jobId":"${ends[3]!.jobId}","at":"2026-`);
    for (const f of [layout.summary, layout.junit, layout.report]) rmSync(f);
    // Recorded jobs' traces are removed: running them again would bring them back.
    for (const e of kept) rmSync(join(first.runDir, e.result.evidence.trace!));

    const resumed = await runEmulatedNightly({ lab: await lab('small'), outRoot: out, resume: first.runId, ...quiet });
    expect(resumed.runId).toBe(first.runId);
    expect(resumed.recorded).toBe(2);
    expect(resumed.ran).toBe(2);
    for (const e of kept) expect(existsSync(join(first.runDir, e.result.evidence.trace!))).toBe(false);

    const journal = journalOf(first.runDir); // parses: the torn line was cut off
    expect(journal.filter((e) => e.t === 'run').map((e) => e.t === 'run' && e.resumed)).toEqual([false, true]);
    const endCounts = countBy(journal, 'end');
    expect([...endCounts.values()]).toEqual([1, 1, 1, 1]);
    expect(endCounts.size).toBe(4);

    const summary = await loadSummary(layout.summary);
    expect(summary.startedAt).toBe(full[0]!.at);
    expect(summary.jobs).toHaveLength(4);
    for (const e of kept) expect(summary.jobs.find((j) => j.jobId === e.jobId)).toEqual(e.result);
    expect(existsSync(layout.junit) && existsSync(layout.report)).toBe(true);
    expect(resumed.outcome.exitCode).toBe(0);
  });

  it('refuses to resume a run of another lab, or a run that does not exist', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-'));
    await expect(runEmulatedNightly({ lab: await lab('small'), outRoot: out, resume: 'no-such-run', ...quiet })).rejects.toThrow(/plan\.json.*no plan\.json here/);
    const first = await runEmulatedNightly({ lab: await lab('small'), outRoot: out, ...quiet });
    const other = { ...(await lab('small')), name: 'another-lab' };
    await expect(runEmulatedNightly({ lab: other, outRoot: out, resume: first.runId, ...quiet })).rejects.toThrow(/planned for lab "small-emulated", not "another-lab"/);
    // Same lab name, another matrix: not the plan the run started with.
    const reseeded = { ...(await lab('small')), seeds: [8] };
    await expect(runEmulatedNightly({ lab: reseeded, outRoot: out, resume: first.runId, ...quiet })).rejects.toThrow(/the plan changed since run/);
  });

  it('stops on the signal with a --resume hint, and the resume runs every job once', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nightly-'));
    const stop = new AbortController();
    stop.abort();
    const err = await runEmulatedNightly({ lab: await lab('small'), outRoot: out, ...quiet, signal: stop.signal }).catch((e: unknown) => e as Error & { exitCode?: number });
    const runId = /--resume (\S+)$/.exec((err as Error).message)?.[1];
    expect((err as Error).message).toMatch(/interrupted with 4 job\(s\) not run; finish it with --resume /);
    expect((err as { exitCode?: number }).exitCode).toBe(3);
    const resumed = await runEmulatedNightly({ lab: await lab('small'), outRoot: out, resume: runId!, ...quiet });
    expect({ ran: resumed.ran, recorded: resumed.recorded, exitCode: resumed.outcome.exitCode }).toEqual({ ran: 4, recorded: 0, exitCode: 0 });
    expect([...countBy(journalOf(resumed.runDir), 'end').values()]).toEqual([1, 1, 1, 1]);
  });
});

describe('key bytes in an executor\'s error', () => {
  it('reach neither stdout nor the journal, summary.json, junit.xml or report.html', async () => {
    // What the misbehaving worker's "keymsg" hosts quote (fixtures/misbehaving-worker.ts, KEY_BYTES).
    const KEY_BYTES = 'Zm9vYmFyc2VjcmV';
    const out = mkdtempSync(join(tmpdir(), 'nightly-'));
    const lines: string[] = [];
    const r = await runEmulatedNightly({
      lab: await lab('key-message'), outRoot: out, ...quiet, workerUrl: MISBEHAVING, onWarning: (m) => lines.push(m),
      terminal: { stream: { write: (s: string) => lines.push(s) }, tty: false, color: false, width: 200 },
      reporters: ['json', 'junit', 'html', 'list'],
    });
    const layout = runDirLayout(r.runDir);
    const summary = await loadSummary(layout.summary);
    const failed = summary.jobs.find((j) => j.host === 'keymsg-host')!;
    expect(failed.verdict).toBe('error');
    expect(failed.message).toContain('Unsupported OpenSSH key magic: [redacted]');
    for (const f of [layout.journal, layout.summary, layout.junit, layout.report]) expect(readFileSync(f, 'utf8'), f).not.toContain(KEY_BYTES);
    expect(lines.join('')).toContain('key magic');
    expect(lines.join('')).not.toContain(KEY_BYTES);
  });
});
