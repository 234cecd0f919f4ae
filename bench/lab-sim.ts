// Benchmark of the run engine on the simulated lab (src/run/sim/sim-lab.ts). Prints numbers;
// asserts nothing (targets are printed beside them).
//
//   node bench/lab-sim.ts [--json] [--kills N]   the benchmark:
//     1. makespan of 40 hosts x 2,000 jobs in simulated time vs the lower bound
//        max(total work / total VM slots, longest attempt); target within 10 %;
//     2. the orchestrator's CPU while it waits on hosts: a real-time run with durations
//        scaled down, process.cpuUsage over wall time; target < 5 % of a core;
//     3. its memory (peak RSS, heap after the 2,000-job run); target < 300 MB;
//     4. crash safety: the orchestrator (a child process) killed with SIGKILL at N random
//        moments (default 20) and resumed each time; every job must end up recorded
//        exactly once and no VM of the run may be left in the simulated lab.
//   node bench/lab-sim.ts child --dir D --run-id R [--resume] [--seed N] [--ms-per-second M]
//     one engine run in real time on a small simulated lab whose VM registry is the file
//     D/registry.json; used by (4) and by test/run/engine/crash-resume.test.ts.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realClock } from '../src/run/engine/job-pipeline.ts';
import { readJournal } from '../src/run/engine/journal.ts';
import { SimClock } from '../src/run/sim/sim-clock.ts';
import { runSim, simPlan, type SimShape } from '../src/run/sim/sim-run.ts';
import { peakRssBytes } from '../src/peak-rss.ts';

const BIG: SimShape = { hosts: 40, builds: 4, templates: 2, scenarios: 5, seeds: 5, failPreflight: [7], dies: [{ host: 12, atS: 300 }] };
export const CRASH_SHAPE: SimShape = { hosts: 6, builds: 2, templates: 2, scenarios: 5, seeds: 2, vmSlots: 3 };
const SELF = fileURLToPath(import.meta.url);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function child(): Promise<void> {
  const dir = arg('--dir')!;
  const runId = arg('--run-id') ?? 'crash';
  const msPerSecond = Number(arg('--ms-per-second') ?? '2');
  const r = await runSim({
    shape: CRASH_SHAPE, runDir: join(dir, runId), runId, clock: realClock, seed: Number(arg('--seed') ?? '1'), msPerSecond,
    resume: process.argv.includes('--resume'), registryFile: join(dir, 'registry.json'),
  });
  process.stdout.write(`${JSON.stringify({ complete: r.complete, jobs: r.summary?.jobs.length ?? 0 })}\n`);
}

/**
 * The least time in which the lab's VM slots could have done `workS` slot-seconds: hosts
 * that failed preflight give nothing, a host that dies gives its slots until it dies.
 */
function capacityBound(workS: number): number {
  const hosts = simPlan(BIG).hosts.filter((_h, i) => !BIG.failPreflight?.includes(i));
  const at = (t: number) => hosts.reduce((n, h) => n + h.capacity.vmSlots * Math.min(t, h.diesAtS ?? Infinity), 0);
  let lo = 0;
  let hi = workS;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (at(mid) >= workS) hi = mid; else lo = mid;
  }
  return hi;
}

async function makespan(seed: number) {
  const dir = mkdtempSync(join(tmpdir(), 'lab-sim-'));
  const clock = new SimClock();
  const t0 = performance.now();
  const r = await clock.drive(runSim({ shape: BIG, runDir: join(dir, 'run'), runId: 'sim', clock, seed, msPerSecond: 1000, resume: false }));
  const wallMs = performance.now() - t0;
  const lowerBoundS = Math.max(capacityBound(r.work.slotMs / 1000), r.work.longestMs / 1000);
  const heapMB = process.memoryUsage().heapUsed / 2 ** 20;
  rmSync(dir, { recursive: true, force: true });
  return {
    jobs: r.plan.jobs.length, makespanS: round(clock.now() / 1000), lowerBoundS: round(lowerBoundS), overPct: round((clock.now() / 1000 / lowerBoundS - 1) * 100),
    attempts: r.work.attempts, provisioned: r.provisioned, reused: r.scheduler.reused, counts: r.outcome?.counts, vmsLeft: r.lab.vms.size, wallMs: round(wallMs), heapMB: round(heapMB),
  };
}

/**
 * CPU of the orchestrator while hosts work: a real-time run of 40 hosts in which one
 * simulated second takes 100 ms, i.e. the lab runs 10x faster than a real one and the
 * orchestrator sees 10x the events per second. The measured share of a core is printed,
 * and the share at real speed (a tenth of it, the work per event being the same).
 */
async function cpuWhileWaiting() {
  const dir = mkdtempSync(join(tmpdir(), 'lab-sim-cpu-'));
  const speedup = 10;
  const shape: SimShape = { hosts: 40, builds: 4, templates: 1, scenarios: 5, seeds: 1 };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runSim({ shape, runDir: join(dir, 'run'), runId: 'cpu', clock: realClock, seed: 3, msPerSecond: 1000 / speedup, resume: false });
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  rmSync(dir, { recursive: true, force: true });
  const pct = ((c.user + c.system) / 1000 / wallMs) * 100;
  return { jobs: r.plan.jobs.length, speedup, wallMs: round(wallMs), cpuMs: round((c.user + c.system) / 1000), cpuPctOfCoreAtSpeedup: round(pct), cpuPctOfCoreAtRealSpeed: round(pct / speedup) };
}

async function crashes(kills: number) {
  const dir = mkdtempSync(join(tmpdir(), 'lab-sim-crash-'));
  const runId = 'crash';
  let killed = 0;
  let starts = 0;
  let rand = 12345;
  const next = () => (rand = (rand * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let midRun = 0;
  for (;;) {
    starts++;
    // 20 ms per simulated second: the whole run takes about 15 s, so kills land mid-run.
    const exit = await runChild(dir, runId, starts > 1, killed < kills ? 300 + next() * 1200 : undefined, 20);
    if (exit === 'killed') {
      killed++;
      const ends = readJournal(join(dir, runId, 'journal.jsonl')).records.filter((r) => r.t === 'end').length;
      if (ends > 0 && ends < simPlan(CRASH_SHAPE).plan.jobs.length) midRun++;
      continue;
    }
    if (exit !== 0) throw new Error(`child exited with ${exit}`);
    break;
  }
  const verdict = verifyCrashRun(dir, runId);
  rmSync(dir, { recursive: true, force: true });
  return { kills: killed, killsMidRun: midRun, starts, ...verdict };
}

/** Runs the child; kills it with SIGKILL after `killAfterMs` if given. */
export function runChild(dir: string, runId: string, resume: boolean, killAfterMs: number | undefined, msPerSecond = 2): Promise<number | 'killed'> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SELF, 'child', '--dir', dir, '--run-id', runId, '--ms-per-second', String(msPerSecond), ...(resume ? ['--resume'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
    const t = killAfterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('exit', (code, signal) => {
      if (t) clearTimeout(t);
      resolve(signal === 'SIGKILL' ? 'killed' : (code ?? 3));
    });
  });
}

/** Every planned job recorded exactly once; no VM of the run left in the registry. */
export function verifyCrashRun(dir: string, runId: string): { jobs: number; recorded: number; duplicates: number; missing: number; vmsLeft: number; runEnded: boolean } {
  const { plan } = simPlan(CRASH_SHAPE);
  const { records } = readJournal(join(dir, runId, 'journal.jsonl'));
  const ends = new Map<string, number>();
  for (const r of records) if (r.t === 'end') ends.set(r.jobId, (ends.get(r.jobId) ?? 0) + 1);
  const registry = JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')) as Record<string, { runId: string }>;
  return {
    jobs: plan.jobs.length,
    recorded: ends.size,
    duplicates: [...ends.values()].filter((n) => n > 1).length,
    missing: plan.jobs.filter((j) => !ends.has(j.jobId)).length,
    vmsLeft: Object.values(registry).filter((v) => v.runId === runId).length,
    runEnded: records.some((r) => r.t === 'run-end'),
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child();
  const json = process.argv.includes('--json');
  const kills = Number(arg('--kills') ?? '20');
  const log = (s: string) => { if (!json) process.stdout.write(`${s}\n`); };
  const rss0 = process.memoryUsage().rss;
  const runs = [];
  for (const seed of [1, 2, 3]) {
    const m = await makespan(seed);
    runs.push(m);
    log(`makespan seed ${seed}: ${m.jobs} jobs on 40 hosts: ${m.makespanS} s simulated vs lower bound ${m.lowerBoundS} s (+${m.overPct} %, target <= 10 %); ${m.attempts} attempts, ${m.provisioned} VMs provisioned, ${m.reused} reused; ${m.vmsLeft} VMs left; ${JSON.stringify(m.counts)}; ${m.wallMs} ms wall, heap ${m.heapMB} MB`);
  }
  const cpu = await cpuWhileWaiting();
  log(`cpu while waiting: ${cpu.jobs} jobs in ${cpu.wallMs} ms real time with the lab ${cpu.speedup}x faster than real: orchestrator CPU ${cpu.cpuMs} ms = ${cpu.cpuPctOfCoreAtSpeedup} % of a core, i.e. ${cpu.cpuPctOfCoreAtRealSpeed} % at real speed (target < 5 %)`);
  const peakRssMB = round(Math.max(process.memoryUsage().rss, rss0) / 2 ** 20);
  const maxRssMB = round(peakRssBytes() / (1 << 20));
  log(`memory: peak RSS ${maxRssMB} MB (target < 300 MB), RSS now ${peakRssMB} MB`);
  const crash = await crashes(kills);
  log(`crash safety: ${crash.kills} SIGKILLs (${crash.killsMidRun} with the run part done), ${crash.starts} starts; ${crash.recorded}/${crash.jobs} jobs recorded, ${crash.duplicates} recorded twice, ${crash.missing} missing, ${crash.vmsLeft} VMs left, run ended: ${crash.runEnded}`);
  if (json) process.stdout.write(`${JSON.stringify({ makespan: runs, cpu, memory: { maxRssMB }, crash })}\n`);
}

// Only when run as a script: the crash test imports runChild / verifyCrashRun from here.
if (process.argv[1] !== undefined && fileURLToPath(`file://${process.argv[1]}`) === SELF) await main();
