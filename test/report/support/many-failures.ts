// A run directory with many failures, as a bad night on a real lab gives: several causes of
// divergence spread over host builds, guests, scenarios and seeds, some hangs, and two hosts
// that failed preflight, their jobs errors. Every failing job's evidence exists (a trace and,
// for divergences, a minimised scenario), so every link of its report can be followed.
// Deterministic: the same count gives the same directory.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import type { JobResult, RunSummary } from '../../../src/report/summary.ts';

const BUILDS = ['10.0.17763.6414', '10.0.20348.2700', '10.0.25398.1189', '10.0.26100.1742'];
const GUESTS = ['ubuntu-24.04', 'debian-12', 'rhel-9.4'];
const SCENARIOS = Array.from({ length: 16 }, (_, i) => `${['save-restore', 'checkpoint-apply', 'live-migrate', 'ring-full'][i % 4]}-${String(i + 1).padStart(2, '0')}`);

interface Cause {
  verdict: 'diverge' | 'hang';
  cls: string;
  property: string;
  ev: string;
  side: 'host' | 'guest';
  dir: 'g2h' | 'h2g';
  extra: (tx: number) => Record<string, unknown>;
  expected: (tx: number) => string[];
  message: (tx: number) => string;
}

const digest = (n: number) => (n * 2654435761 >>> 0).toString(16).padStart(8, '0').repeat(4);

const CAUSES: Cause[] = [
  { verdict: 'diverge', cls: 'lost', property: 'every in-flight h2g transaction is saved and restored', ev: 'pkt.completion', side: 'host', dir: 'h2g', extra: (tx) => ({ status: '00000000', digest: digest(tx) }), expected: (tx) => [`host pkt.restore ch=0 dir=h2g tx=${tx} saveDigest=${digest(tx + 1)}`], message: (tx) => `h2g tx ${tx} was saved but never restored` },
  { verdict: 'diverge', cls: 'status', property: 'completion status follows the protocol rule', ev: 'pkt.complete', side: 'host', dir: 'g2h', extra: (tx) => ({ status: 'c0000001', len: 16, digest: digest(tx) }), expected: (tx) => [`host pkt.complete ch=0 dir=g2h tx=${tx} status=00000000 len=16 digest=${digest(tx)}`], message: (tx) => `g2h tx ${tx} completed with status C0000001, the protocol rule gives 00000000` },
  { verdict: 'diverge', cls: 'payload', property: 'payload digests are equal end to end', ev: 'pkt.recv', side: 'guest', dir: 'h2g', extra: (tx) => ({ len: 64, digest: digest(tx + 7) }), expected: (tx) => [`guest pkt.recv ch=0 dir=h2g tx=${tx} len=64 digest=${digest(tx)}`], message: (tx) => `h2g tx ${tx} arrived with another payload` },
  { verdict: 'diverge', cls: 'duplicated', property: 'each packet is received exactly once', ev: 'pkt.recv', side: 'host', dir: 'g2h', extra: (tx) => ({ len: 32, digest: digest(tx) }), expected: () => [], message: (tx) => `g2h tx ${tx} was received twice` },
  { verdict: 'diverge', cls: 'savebuf-mismatch', property: 'every in-flight h2g transaction is saved and restored', ev: 'pkt.restore', side: 'host', dir: 'h2g', extra: (tx) => ({ saveDigest: digest(tx + 3) }), expected: (tx) => [`host pkt.restore ch=0 dir=h2g tx=${tx} saveDigest=${digest(tx + 1)}`], message: (tx) => `h2g tx ${tx} was restored with another SaveBuf` },
  { verdict: 'hang', cls: 'hang', property: 'exactly one completion per transaction that asked for one', ev: 'pkt.save', side: 'host', dir: 'h2g', extra: (tx) => ({ libLen: 64, saveLen: 32, saveDigest: digest(tx) }), expected: () => [], message: () => 'no trace event for 120 s after vm.save.begin' },
];

function timeline(c: Cause, tx: number, seq: number): { events: TraceEvent[]; hit: TraceEvent } {
  const out: TraceEvent[] = [];
  let s = seq;
  const e = (x: Record<string, unknown>) => out.push({ v: 1, seq: s++, src: 'hyperv', ...x } as unknown as TraceEvent);
  e({ side: 'host', ch: 0, ev: 'pkt.send', tx, dir: 'h2g', len: 64, digest: digest(tx), wantCompletion: true });
  e({ side: 'guest', ch: 0, ev: 'pkt.send', tx, dir: 'g2h', len: 32, digest: digest(tx), wantCompletion: true });
  e({ side: 'bench', ev: 'vm.checkpoint.apply.begin', name: 'base' });
  e({ side: 'host', ch: 0, ev: 'pkt.save', tx, dir: 'h2g', libLen: 64, saveLen: 32, saveDigest: digest(tx + 1) });
  e({ side: 'bench', ev: 'vm.checkpoint.apply.end', name: 'base' });
  e({ side: 'guest', ch: 0, ev: 'pkt.recv', tx, dir: 'h2g', len: 64, digest: digest(tx) });
  e({ side: c.side, ch: 0, ev: c.ev, tx, dir: c.dir, ...c.extra(tx) });
  const hit = out[out.length - 1]!;
  e({ side: 'bench', ev: 'vm.migrate.begin', from: 'hv-a', to: 'hv-b' });
  return { events: out, hit };
}

/** A run directory holding `failures` failing jobs (about a tenth of them errors) and some passes. */
export function manyFailuresRun(failures: number): { dir: string; summary: RunSummary } {
  const root = mkdtempSync(join(tmpdir(), `bench-many-${failures}-`));
  const runId = `2026-11-24-nightly-${failures}`;
  const dir = join(root, runId);
  const jobs: JobResult[] = [];
  const errors = Math.round(failures / 10);
  for (let n = 0; n < failures; n++) {
    const build = BUILDS[n % BUILDS.length]!;
    const guest = GUESTS[Math.floor(n / BUILDS.length) % GUESTS.length]!;
    const scenario = SCENARIOS[Math.floor(n / (BUILDS.length * GUESTS.length)) % SCENARIOS.length]!;
    const seed = 1 + Math.floor(n / (BUILDS.length * GUESTS.length * SCENARIOS.length));
    const host = `hv-${String((n % BUILDS.length) + 1).padStart(2, '0')}`;
    const jobId = `j${String(n + 1).padStart(4, '0')}`;
    const rel = `jobs/${jobId}`;
    const base: JobResult = {
      jobId, host, hostBuild: build, guest, template: `${guest}-gen2`, scenario, seed, verdict: 'pass',
      durationsMs: { real: 20_000 + n, emulator: 300, check: 40 }, evidence: {},
      reproduce: { scenarioFile: `/srv/bench/scenarios/${scenario}.yaml`, choices: n % 2 ? { sendOrdering: 'ring-first' } : {} },
    };
    mkdirSync(join(dir, rel), { recursive: true });
    if (n < errors) {
      // Day one: two hosts failed preflight; every job planned on them is an error.
      const down = n % 2 === 0 ? 'hv-07' : 'hv-08';
      jobs.push({ ...base, host: down, verdict: 'error', message: `no host of build ${build} is left in the run (${down}: preflight: reachable: connect ECONNREFUSED 10.0.0.${n % 2 === 0 ? 7 : 8}:22)`, durationsMs: {} });
      continue;
    }
    const c = CAUSES[n % CAUSES.length]!;
    const tx = 1 + (n % 40);
    const { events, hit } = timeline(c, tx, 100 + n);
    writeFileSync(join(dir, rel, 'trace.jsonl'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    writeFileSync(join(dir, rel, 'minimized.yaml'), `name: ${scenario}-min\nchannels: 1\nsteps:\n  - { op: host-send, count: ${tx}, size: 64, hold: 1000 }\n  - { op: save }\n  - { op: restore }\n`);
    writeFileSync(join(dir, rel, 'vmms.log'), `VMMS ${jobId}: saved\n`);
    jobs.push({
      ...base,
      verdict: c.verdict,
      divergenceClass: c.cls,
      message: c.message(tx),
      failedProperties: [c.property],
      firstUnexplained: { file: `${rel}/trace.jsonl`, line: 7, event: hit },
      expected: c.expected(tx),
      timeline: events,
      evidence: { trace: `${rel}/trace.jsonl`, minimizedScenario: `${rel}/minimized.yaml`, artefacts: [`${rel}/vmms.log`] },
      reproduce: { ...base.reproduce, faults: n % 3 === 0 ? ['drop-saved-packet'] : undefined },
    });
  }
  // Passing jobs fill the rest of the matrix, so it has green cells as a real run would.
  const taken = new Set(jobs.map((j) => `${j.hostBuild}|${j.guest}|${j.scenario}`));
  let p = 0;
  for (const build of BUILDS) for (const guest of GUESTS) for (const scenario of SCENARIOS) {
    if (taken.has(`${build}|${guest}|${scenario}`)) continue;
    jobs.push({ jobId: `p${String(++p).padStart(4, '0')}`, host: 'hv-01', hostBuild: build, guest, template: `${guest}-gen2`, scenario, seed: 99, verdict: 'pass', durationsMs: { real: 20_000 }, evidence: {} });
  }
  const summary: RunSummary = { version: 1, runId, lab: 'lab-east', startedAt: '2026-11-24T02:00:00Z', finishedAt: '2026-11-24T05:10:00Z', jobs };
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
  return { dir, summary };
}
