// A whole engine run on the simulated lab: the lab shape, its scenarios and plan, and the
// wiring of engine + job pipeline + SimLab. Used by bench/lab-sim.ts (the benchmark and
// the crash-test child) and by the engine tests.

import type { Scenario } from '../../scenario/model.ts';
import { runEngine, type EngineOptions, type EngineResult } from '../engine/engine.ts';
import { JobPipeline, type Clock } from '../engine/job-pipeline.ts';
import { makePlan, type Plan, type PlanTemplate } from '../engine/plan.ts';
import type { QuarantineList } from '../engine/quarantine.ts';
import type { AttemptOutcome, JobExecutor, Lease } from '../engine/scheduler.ts';
import { SimLab, type SimHostSpec } from './sim-lab.ts';

export interface SimShape {
  hosts: number;
  builds: number;
  templates: number;
  scenarios: number;
  seeds: number;
  vmSlots?: number;
  memoryMB?: number;
  /** Host indexes that fail preflight / die at the given simulated second. */
  failPreflight?: number[];
  dies?: Array<{ host: number; atS: number }>;
}

const STEPS: Scenario['steps'][] = [
  [{ op: 'host-send', channel: 0, count: 12, size: 200, hold: 50 }, { op: 'run', ms: 5 }, { op: 'save' }, { op: 'restore' }],
  [{ op: 'host-send', channel: 0, count: 4, size: 64, hold: 0 }, { op: 'save' }, { op: 'restore' }, { op: 'save' }, { op: 'restore' }, { op: 'save' }, { op: 'restore' }],
  [{ op: 'checkpoint', name: 'cp' }, { op: 'guest-send', channel: 0, count: 3, size: 64, mode: 'inline', hold: 0 }, { op: 'apply-checkpoint', name: 'cp' }],
  [{ op: 'pause' }, { op: 'run', ms: 10 }, { op: 'resume' }, { op: 'settle' }],
  [{ op: 'host-send', channel: 0, count: 8, size: 300, hold: 10 }, { op: 'migrate', to: 'host-b' }, { op: 'run', ms: 3 }, { op: 'migrate', to: 'host-a' }],
];

export function simScenarios(n: number): Scenario[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `sim-${i}`, channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'host-a', choices: {},
    steps: STEPS[i % STEPS.length]!,
  }));
}

export function simHosts(shape: SimShape): SimHostSpec[] {
  return Array.from({ length: shape.hosts }, (_, i) => ({
    name: `sim-${String(i).padStart(3, '0')}`,
    // Pairs share a build, so a migration job can move to another pair of its build.
    build: `10.0.${26100 + (Math.floor(i / 2) % shape.builds)}`,
    capacity: { vmSlots: shape.vmSlots ?? 4, memoryMB: shape.memoryMB ?? 16384 },
    partner: `sim-${String(i % 2 === 0 ? i + 1 : i - 1).padStart(3, '0')}`,
    failsPreflight: shape.failPreflight?.includes(i),
    diesAtS: shape.dies?.find((d) => d.host === i)?.atS,
  })).map((h, _i, all) => ({ ...h, partner: all.some((x) => x.name === h.partner) ? h.partner : undefined }));
}

export function simPlan(shape: SimShape): { plan: Plan; hosts: SimHostSpec[]; scenarios: Scenario[] } {
  const hosts = simHosts(shape);
  const scenarios = simScenarios(shape.scenarios);
  const templates: PlanTemplate[] = Array.from({ length: shape.templates }, (_, i) => ({
    name: `tmpl-${i}`, parentDisk: `D:\\parents\\t${i}.vhdx`, memoryMB: 4096, guest: { osName: `Guest OS ${i}` },
  }));
  const plan = makePlan({
    lab: 'sim-lab',
    hosts: hosts.map((h) => ({ name: h.name, build: h.build, migrationPartner: h.partner, capacity: h.capacity })),
    templates, scenarios,
    matrix: { seeds: Array.from({ length: shape.seeds }, (_, i) => i + 1) },
  });
  return { plan, hosts, scenarios };
}

export interface SimRunOptions {
  shape: SimShape;
  runDir: string;
  runId: string;
  clock: Clock;
  seed: number;
  msPerSecond: number;
  resume: boolean;
  registryFile?: string;
  failureScale?: number;
  divergeRate?: number;
  keepFailed?: boolean;
  quarantine?: QuarantineList;
  stopSignal?: AbortSignal;
  log?: (line: string) => void;
  observe?: EngineOptions['observe'];
  /** Second attempts for stragglers (default on). */
  hedge?: boolean;
  reporter?: EngineOptions['reporter'];
}

export interface SimRunResult extends EngineResult {
  lab: SimLab;
  plan: Plan;
  /** Busy slot-milliseconds of every attempt, and the longest attempt. */
  work: { slotMs: number; longestMs: number; attempts: number };
  provisioned: number;
}

export async function runSim(o: SimRunOptions): Promise<SimRunResult> {
  const { plan, hosts, scenarios } = simPlan(o.shape);
  const lab = new SimLab({
    hosts, clock: o.clock, seed: o.seed, runId: o.runId, msPerSecond: o.msPerSecond, registryFile: o.registryFile,
    failureScale: o.failureScale, divergeRate: o.divergeRate,
  });
  const work = { slotMs: 0, longestMs: 0, attempts: 0 };
  let pipeline: JobPipeline | undefined;
  const result = await runEngine({
    runId: o.runId, runDir: o.runDir, plan, hosts, resume: o.resume, quarantine: o.quarantine, stopSignal: o.stopSignal, log: o.log, observe: o.observe, reporter: o.reporter,
    nowIso: () => new Date(Date.UTC(2026, 10, 24, 3) + o.clock.now()).toISOString(),
    scheduler: { placement: 'same-build', maxAttempts: 3, hostFailureLimit: 3, hedge: o.hedge === false ? undefined : { clock: o.clock } },
    hooks: {
      sweepHost: async (host, keep) => lab.sweepHost(host, keep),
      preflight: async () => lab.preflight(),
    },
    executor: (journal) => {
      pipeline = new JobPipeline({
        runId: o.runId, runDir: o.runDir, journal, clock: o.clock, real: lab.realSide(), emulator: lab.emulatorSide(), checker: lab.checker(),
        scenarios: new Map(scenarios.map((s) => [s.name, s])), jobTimeoutMs: 3600 * o.msPerSecond, keepFailed: o.keepFailed ?? false,
      });
      return measured(pipeline, o.clock, work);
    },
  });
  return { ...result, lab, plan, work, provisioned: pipeline?.provisioned ?? 0 };
}

/** Wraps an executor to add up the slot time each attempt occupies. */
function measured(inner: JobExecutor, clock: Clock, work: SimRunResult['work']): JobExecutor {
  return {
    async runAttempt(job, attempt, lease: Lease, signal): Promise<AttemptOutcome> {
      const t0 = clock.now();
      try {
        return await inner.runAttempt(job, attempt, lease, signal);
      } finally {
        const ms = clock.now() - t0;
        work.slotMs += ms * lease.hosts.length;
        work.longestMs = Math.max(work.longestMs, ms);
        work.attempts++;
      }
    },
    dropIdleVm: (vm) => inner.dropIdleVm(vm),
  };
}
