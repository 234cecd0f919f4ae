// A simulated Hyper-V lab for the engine's tests and the scheduler benchmark: hosts whose
// operations take the durations, and fail at the rates, of reference/hyperv-timings.md
// section 3 (lognormal with the given median and 95th percentile), in simulated time
// (SimClock) or in real time scaled down (`msPerSecond`), for the crash test and the CPU
// measurement. Durations are for 4 GB VMs on NVMe over 10 GbE; per-host disk and network
// bandwidth sharing (which the reference notes suggest) is not modelled.
//
// What it keeps like a lab: a VM exists from New-VM until it is removed, whatever happens
// to the orchestrator, so the VM registry can be persisted in a file (`registryFile`) and
// checked after the orchestrator was killed. A host can fail its preflight, or go down at
// a given time (then every operation on it fails as unreachable). "IP never appears" and
// "stuck saving" are timeouts, not quick errors, as the reference notes ask.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { InfraError } from '../../errors.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { CheckOutcome, Clock, EmulatorOutcome, EmulatorSide, RealOutcome, RealSide, TraceChecker, VmHandle } from '../engine/job-pipeline.ts';
import type { PlannedJob } from '../engine/plan.ts';
import type { SchedHost } from '../engine/scheduler.ts';

export interface SimHostSpec extends SchedHost {
  failsPreflight?: boolean;
  /** Simulated seconds after which the host stops answering. */
  diesAtS?: number;
}

type Op = 'newVhd' | 'newVm' | 'start' | 'boot' | 'deploy' | 'save' | 'restore' | 'pause' | 'checkpoint' | 'apply' | 'migrate' | 'turnOff' | 'remove' | 'collect' | 'reset' | 'command';

/** Seconds: median, p95, failure rate, rate of never finishing (a timeout). hyperv-timings.md 3, 4 GB VMs on NVMe, 10 GbE. */
const OPS: Record<Op, { m: number; p: number; fail: number; stuck: number }> = {
  newVhd: { m: 0.3, p: 1, fail: 0.002, stuck: 0 },
  newVm: { m: 3, p: 8, fail: 0.005, stuck: 0.002 },
  start: { m: 2, p: 5.5, fail: 0.005, stuck: 0 },
  boot: { m: 25, p: 60, fail: 0, stuck: 0.02 },
  deploy: { m: 6, p: 15, fail: 0.002, stuck: 0 },
  save: { m: 5, p: 10, fail: 0.005, stuck: 0.002 },
  restore: { m: 4, p: 10, fail: 0.005, stuck: 0 },
  pause: { m: 0.2, p: 1, fail: 0, stuck: 0 },
  checkpoint: { m: 6, p: 18, fail: 0.005, stuck: 0 },
  apply: { m: 8, p: 24, fail: 0.005, stuck: 0 },
  migrate: { m: 8, p: 12, fail: 0.01, stuck: 0 },
  turnOff: { m: 0.5, p: 2, fail: 0, stuck: 0 },
  remove: { m: 0.5, p: 2, fail: 0.002, stuck: 0 },
  collect: { m: 2, p: 5, fail: 0.002, stuck: 0 },
  reset: { m: 8, p: 20, fail: 0.005, stuck: 0 },
  command: { m: 0.03, p: 0.15, fail: 0, stuck: 0 },
};

/** Harness deadlines (seconds) for operations that may never finish. */
// Boot gets 2.5x its p95 rather than the 600 s harnesses often use: a guest that has not
// answered by then almost never will (reference notes: detect hangs fast).
const DEADLINE_S: Partial<Record<Op, number>> = { boot: 120, save: 60, newVm: 60 };

export interface SimLabOptions {
  hosts: readonly SimHostSpec[];
  clock: Clock;
  seed: number;
  runId: string;
  /** Real milliseconds per simulated second: 1000 in SimClock runs, small for real-time runs. */
  msPerSecond?: number;
  /** Persist the VM registry here after every change (crash test). */
  registryFile?: string;
  /** Probability that a job's check finds a divergence. */
  divergeRate?: number;
  /** Multiplies every failure rate (0: a lab that never fails). */
  failureScale?: number;
}

export interface SimVm {
  host: string;
  runId: string;
  state: 'Off' | 'Running' | 'Saved' | 'Paused';
}

export class SimLab {
  readonly hosts: Map<string, SimHostSpec>;
  readonly vms = new Map<string, SimVm>();
  private readonly o: SimLabOptions;
  private readonly ms: number;
  private rand: () => number;
  /** Busy slot-seconds per attempt outcome, for the benchmark's lower bound. */
  work = { slotSeconds: 0, longestJobS: 0 };

  constructor(options: SimLabOptions) {
    this.o = options;
    this.ms = options.msPerSecond ?? 1000;
    this.rand = mulberry32(options.seed);
    this.hosts = new Map(options.hosts.map((h) => [h.name, h]));
    if (options.registryFile) {
      try {
        const saved = JSON.parse(readFileSync(options.registryFile, 'utf8')) as Record<string, SimVm>;
        for (const [k, v] of Object.entries(saved)) this.vms.set(k, v);
      } catch { /* no registry yet */ }
    }
  }

  /** Hosts that fail preflight, with why. */
  preflight(): Map<string, string> {
    return new Map([...this.hosts.values()].filter((h) => h.failsPreflight).map((h) => [h.name, 'preflight: Hyper-V module not found (simulated)']));
  }

  /** One operation on a host: takes its time, may fail or hang until its deadline. */
  async op(host: string, op: Op, signal?: AbortSignal, extraS = 0): Promise<void> {
    this.reachable(host);
    const spec = OPS[op];
    const scale = this.o.failureScale ?? 1;
    const r = this.rand();
    const deadline = DEADLINE_S[op];
    if (deadline !== undefined && r < spec.stuck * scale) {
      await this.o.clock.sleep(deadline * this.ms, signal);
      throw new SimTimeout(host, op, deadline);
    }
    const seconds = lognormal(this.rand, spec.m, spec.p) + extraS;
    await this.o.clock.sleep(seconds * this.ms, signal);
    this.reachable(host);
    if (this.rand() < spec.fail * scale) throw new InfraError(`${op} failed on ${host} (simulated WMI job failure)`, { host });
  }

  private reachable(host: string): void {
    const h = this.hosts.get(host);
    if (!h) throw new InfraError(`no host ${host}`, { host });
    if (h.diesAtS !== undefined && this.o.clock.now() >= h.diesAtS * this.ms) throw new InfraError(`host ${host} is unreachable (simulated)`, { host });
  }

  setVm(name: string, vm: SimVm | undefined): void {
    if (vm) this.vms.set(name, vm); else this.vms.delete(name);
    if (this.o.registryFile) {
      const tmp = `${this.o.registryFile}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.vms)));
      renameSync(tmp, this.o.registryFile);
    }
  }

  sweepHost(host: string, keep: ReadonlySet<string>): number {
    let n = 0;
    for (const [name, vm] of [...this.vms]) {
      if (vm.host === host && vm.runId === this.o.runId && !keep.has(name)) { this.setVm(name, undefined); n++; }
    }
    return n;
  }

  realSide(): RealSide {
    return new SimRealSide(this);
  }

  emulatorSide(): EmulatorSide {
    const lab = this;
    return {
      async run(): Promise<EmulatorOutcome> {
        await lab.o.clock.sleep(0.5 * lab.ms);
        return { trace: '', verdict: 'pass', ms: 500 };
      },
    };
  }

  checker(): TraceChecker {
    const lab = this;
    return {
      async check(): Promise<CheckOutcome> {
        if (lab.rand() < (lab.o.divergeRate ?? 0)) return { verdict: 'diverge', divergenceClass: 'lost', message: 'simulated divergence' };
        return { verdict: 'pass' };
      },
    };
  }

  get msPerSecond(): number {
    return this.ms;
  }

  get runId(): string {
    return this.o.runId;
  }

  get clock(): Clock {
    return this.o.clock;
  }
}

export class SimTimeout extends InfraError {
  readonly op: string;
  constructor(host: string, op: string, seconds: number) {
    super(`${op} on ${host} did not finish within ${seconds} s (simulated)`, { host, timedOut: true });
    this.op = op;
  }
}

class SimRealSide implements RealSide {
  private readonly lab: SimLab;
  constructor(lab: SimLab) {
    this.lab = lab;
  }

  async provision(job: PlannedJob, host: string, name: string, signal: AbortSignal): Promise<VmHandle> {
    const lab = this.lab;
    await lab.op(host, 'newVhd', signal);
    await lab.op(host, 'newVm', signal);
    lab.setVm(name, { host, runId: lab.runId, state: 'Off' });
    await lab.op(host, 'start', signal);
    lab.setVm(name, { host, runId: lab.runId, state: 'Running' });
    await lab.op(host, 'boot', signal);
    await lab.op(host, 'deploy', signal);
    await lab.op(host, 'checkpoint', signal);
    return { key: name, host, name, memoryMB: job.memoryMB };
  }

  async reset(vm: VmHandle, signal: AbortSignal): Promise<void> {
    await this.lab.op(vm.host, 'reset', signal);
  }

  async execute(job: PlannedJob, scenario: Scenario, vm: VmHandle, hosts: string[], _dir: string, signal: AbortSignal): Promise<RealOutcome> {
    const lab = this.lab;
    const t0 = lab.clock.now();
    let where = vm.host;
    let started = false;
    try {
      for (const step of scenario.steps) {
        started = true;
        switch (step.op) {
          case 'save': await lab.op(where, 'save', signal); break;
          case 'restore': await lab.op(where, 'restore', signal); break;
          case 'pause': case 'resume': await lab.op(where, 'pause', signal); break;
          case 'checkpoint': await lab.op(where, 'checkpoint', signal); break;
          case 'apply-checkpoint': await lab.op(where, 'apply', signal); break;
          case 'migrate': {
            const to = job.hostMap[step.to] ?? hosts[1] ?? where;
            await lab.op(where, 'migrate', signal);
            lab.setVm(vm.name, { host: to, runId: lab.runId, state: 'Running' });
            where = to;
            break;
          }
          case 'run': await lab.clock.sleep(step.ms * lab.msPerSecond / 1000, signal); break;
          default: await lab.op(where, 'command', signal);
        }
      }
      await lab.op(where, 'collect', signal);
    } catch (e) {
      if (signal.aborted) throw e;
      if (e instanceof SimTimeout) {
        return { kind: 'hang', message: e.message, evidence: {}, realMs: lab.clock.now() - t0, host: where };
      }
      return { kind: 'infra', started, host: where, message: (e as Error).message, evidence: {} };
    } finally {
      // Migration scenarios end where they began; a VM left elsewhere is still tracked by name.
      vm.host = where;
    }
    const realMs = lab.clock.now() - t0;
    lab.work.longestJobS = Math.max(lab.work.longestJobS, realMs / lab.msPerSecond);
    return { kind: 'ran', traces: [], evidence: {}, realMs, host: hosts[0]! };
  }

  async turnOff(vm: VmHandle): Promise<Record<string, never>> {
    await this.lab.op(vm.host, 'turnOff').catch(() => undefined);
    return {};
  }

  async remove(vm: VmHandle): Promise<void> {
    if (!this.lab.vms.has(vm.name)) return;
    await this.lab.op(vm.host, 'remove');
    this.lab.setVm(vm.name, undefined);
  }

  async keep(vm: VmHandle): Promise<void> {
    await this.lab.op(vm.host, 'checkpoint');
  }
}

/** Lognormal with median m and 95th percentile p (hyperv-timings.md 3). */
export function lognormal(rand: () => number, m: number, p: number): number {
  const sigma = Math.log(p / m) / 1.645;
  const u1 = Math.max(rand(), 1e-12);
  const u2 = rand();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return Math.exp(Math.log(m) + sigma * z);
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
