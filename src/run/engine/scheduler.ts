// Dispatching planned jobs onto lab hosts (STYLE.md 9, after Playwright's dispatcher).
//
// - Capacity: a host runs as many VMs as its VM slots and memory allow. A job takes one
//   slot and its template's memory on its host, a migration job on both hosts of its pair
//   for its whole length (the pair stays together).
// - Reuse: a finished job may hand its VM back as idle, keyed by host + template. The
//   next job with that key takes it (the executor resets it to its base checkpoint)
//   instead of provisioning. Idle VMs hold their capacity; when a job needs the room,
//   idle VMs of other keys on that host are removed first.
// - Placement: a job may run on its planned host or, with `placement: 'same-build'`, on
//   any host of the same Windows build (the report's matrix is by build); the planned
//   host is preferred. A host taken out of the run (failed preflight, repeated
//   infrastructure failures) sends its jobs to hosts of the same build; a job no host
//   can take any more gets an `error` result saying why.
// - Failures: only infrastructure failures are retried (the executor says which are
//   retryable: host unreachable, SSH dropped before the scenario started), up to
//   `maxAttempts`; a retried job goes to the front of the queue. Divergences and hangs are
//   results and are never retried.
// - The scheduling step (`dispatch`) is synchronous: every event that frees capacity or
//   adds work calls it, and it places jobs with no await in between. `stopped` is checked
//   again after every await. A stopped run records no result for the attempts it cut
//   short, so a resume runs them again.
// - Stragglers: once no job waits, an attempt running longer than 90 % of the attempts
//   so far took gets a second attempt on free capacity (`hedge`); the first to finish
//   gives the job its result and the other is cancelled. A VM stuck booting or saving
//   at the end of a run then costs the run a fresh attempt's time, not its deadline.
//   Hedges never run while jobs wait, so they only use capacity that would idle.

import type { JobResult } from '../../report/summary.ts';
import type { Clock } from './job-pipeline.ts';
import type { PlannedJob } from './plan.ts';

export interface SchedHost {
  name: string;
  build: string;
  capacity: { vmSlots: number; memoryMB: number };
  partner: string | undefined;
}

/** A VM left running at its base checkpoint, ready for the next job with its affinity. */
export interface IdleVm {
  key: string;
  host: string;
  affinity: string;
  memoryMB: number;
}

export interface Lease {
  /** The job's host, then its partner for a migration job. */
  hosts: string[];
  /** Reuse this VM (reset to its base checkpoint) instead of provisioning. */
  reuse: IdleVm | undefined;
  /** The affinity key on the host actually chosen. */
  affinity: string | undefined;
}

export type AttemptOutcome =
  | { kind: 'done'; result: JobResult; idle?: IdleVm | undefined }
  /** The attempt could not be judged for reasons of the lab; `host` is the one at fault. */
  | { kind: 'infra'; message: string; host: string | undefined; retryable: boolean }
  /** Cut short by stop(): no result, a resume runs it again. */
  | { kind: 'canceled' };

export interface JobExecutor {
  runAttempt(job: PlannedJob, attempt: number, lease: Lease, signal: AbortSignal): Promise<AttemptOutcome>;
  /** Removes an idle VM (capacity is needed for another key, or the run is over). */
  dropIdleVm(vm: IdleVm): Promise<void>;
}

export interface SchedulerEvents {
  onAttempt?(job: PlannedJob, attempt: number, lease: Lease): void;
  onAttemptFailed?(job: PlannedJob, attempt: number, host: string | undefined, retry: boolean, message: string): void;
  onResult(job: PlannedJob, result: JobResult): void;
  onHostOut?(host: string, reason: string): void;
}

export interface SchedulerOptions {
  maxAttempts?: number;
  /** Infrastructure failures after which a host is taken out of the run. */
  hostFailureLimit?: number;
  placement?: 'pinned' | 'same-build';
  /** Host pairs held back at once for waiting migration jobs (default: one per build). */
  pairReservations?: number;
  /** Attempts already made per job (a resumed run continues counting). */
  attemptsSoFar?: ReadonlyMap<string, number>;
  /** Hosts already out (from the journal, or preflight). */
  hostsOut?: ReadonlyMap<string, string>;
  /** Second attempts for stragglers at the end of the run (needs the run's clock). */
  hedge?: { clock: Clock; minSamples?: number } | undefined;
}

interface Live {
  job: PlannedJob;
  attempt: number;
  lease: Lease;
  abort: AbortController;
  startedAt: number;
}

/** plan.ts's hostBuild for a host without `build` in the inventory. */
const UNKNOWN_BUILD = 'unknown';

/** How far down the queue an idle VM looks for a job of its template. */
const IDLE_MATCH_LOOKAHEAD = 256;

interface HostState {
  info: SchedHost;
  slots: number;
  memoryMB: number;
  out: string | undefined;
  failures: number;
  idle: IdleVm[];
  evicting: number;
}

// Longer than the 300 lines aimed at: placement, reuse, retries, host removal and hedging
// all change the same capacity counts, and keeping them in one class keeps every change
// to those counts in the one synchronous dispatch path.
export class Scheduler {
  readonly hosts = new Map<string, HostState>();
  private readonly queue: PlannedJob[];
  private readonly executor: JobExecutor;
  private readonly events: SchedulerEvents;
  private readonly maxAttempts: number;
  private readonly hostFailureLimit: number;
  private readonly placement: 'pinned' | 'same-build';
  private readonly pairReservations: number;
  private readonly attempts = new Map<string, number>();
  private readonly failures = new Map<string, string[]>();
  private running = 0;
  private readonly live = new Map<string, Live[]>();
  private readonly finishedJobs = new Set<string>();
  private readonly hedged = new Set<string>();
  private readonly durations: number[] = [];
  private readonly hedge: SchedulerOptions['hedge'];
  private hedgeWake: AbortController | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private done!: () => void;
  private readonly finished: Promise<void>;
  /** VMs reused instead of provisioned (for the benchmark). */
  reused = 0;
  /** Second attempts started for stragglers. */
  hedges = 0;

  constructor(hosts: readonly SchedHost[], jobs: readonly PlannedJob[], executor: JobExecutor, events: SchedulerEvents, options: SchedulerOptions = {}) {
    for (const h of hosts) this.hosts.set(h.name, { info: h, slots: 0, memoryMB: 0, out: options.hostsOut?.get(h.name), failures: 0, idle: [], evicting: 0 });
    this.queue = [...jobs];
    this.executor = executor;
    this.events = events;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.hostFailureLimit = options.hostFailureLimit ?? 3;
    this.placement = options.placement ?? 'same-build';
    this.pairReservations = options.pairReservations ?? Math.max(1, new Set(hosts.map((h) => h.build)).size);
    for (const [k, v] of options.attemptsSoFar ?? []) this.attempts.set(k, v);
    this.hedge = options.hedge;
    this.finished = new Promise((r) => { this.done = r; });
  }

  /** Runs until every job has a result, or until stop() and the running attempts ended. */
  run(): Promise<void> {
    this.dispatch();
    return this.finished;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  stop(reason = 'stopped'): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort(new Error(reason));
    this.checkFinished();
  }

  /** Now: attempts running, jobs waiting, idle VMs, slots in use, hosts in the run. */
  stats(): { running: number; queued: number; idle: number; slotsUsed: number; hostsUp: number } {
    let idle = 0;
    let slotsUsed = 0;
    let hostsUp = 0;
    for (const h of this.hosts.values()) {
      idle += h.idle.length;
      slotsUsed += h.slots;
      if (h.out === undefined) hostsUp++;
    }
    return { running: this.running, queued: this.queue.length, idle, slotsUsed, hostsUp };
  }

  /** Idle VMs still held (the engine removes them at the end). */
  idleVms(): IdleVm[] {
    return [...this.hosts.values()].flatMap((h) => h.idle);
  }

  takeHostOut(host: string, reason: string): void {
    const h = this.hosts.get(host);
    if (!h || h.out !== undefined) return;
    h.out = reason;
    this.events.onHostOut?.(host, reason);
    for (const vm of h.idle.splice(0)) this.evict(h, vm);
    // Jobs planned on that host were waiting for it: they go first, elsewhere.
    const moved = this.queue.filter((j) => j.host === host || j.partner === host);
    const rest = this.queue.filter((j) => j.host !== host && j.partner !== host);
    this.queue.splice(0, this.queue.length, ...moved, ...rest);
    this.dispatch();
  }

  /** The scheduling step: synchronous, places whatever fits now. */
  private dispatch(): void {
    if (this.stopped) return this.checkFinished();
    // Hosts held back in this pass for a migration job waiting for both hosts of a pair
    // to have room; without it, single jobs would take every freed slot and the pair
    // jobs would all wait for the end of the run.
    this.matchIdleVms();
    const reserved = new Set<string>();
    let reservations = 0;
    for (let i = 0; i < this.queue.length; i++) {
      if (!this.anyRoom(reserved)) break;
      const job = this.queue[i]!;
      const candidates = this.candidates(job);
      if (candidates.length === 0) {
        this.queue.splice(i--, 1);
        this.giveUp(job, this.noHostReason(job));
        continue;
      }
      const usable = candidates.filter((hs) => hs.every((n) => !reserved.has(n)));
      const lease = this.place(job, usable);
      if (!lease) {
        if (job.partner && reservations < this.pairReservations) {
          const best = usable.sort((a, b) => this.freeSlots(b) - this.freeSlots(a))[0];
          if (best) { best.forEach((n) => reserved.add(n)); reservations++; }
        }
        continue;
      }
      this.queue.splice(i--, 1);
      void this.start(job, lease);
    }
    if (this.hedge && this.queue.length === 0) this.hedgeStragglers();
    // Nothing runs, nothing is being freed, and still jobs wait: they can never fit.
    if (this.running === 0 && this.queue.length > 0 && [...this.hosts.values()].every((h) => h.evicting === 0 && h.idle.length === 0)) {
      for (const job of this.queue.splice(0)) this.giveUp(job, this.candidates(job).length === 0 ? this.noHostReason(job) : `no host has room for it (${job.memoryMB} MB${job.partner ? ' on both hosts of a pair' : ''})`);
    }
    this.checkFinished();
  }

  /**
   * Idle VMs first: each takes the first waiting job of its template that may run on its
   * host (looking a bounded way down the queue), so VMs are reused rather than removed
   * to make room for a job that would provision a new one.
   */
  private matchIdleVms(): void {
    for (const h of this.hosts.values()) {
      if (h.out !== undefined) continue;
      for (const vm of [...h.idle]) {
        const template = vm.affinity.slice(vm.affinity.indexOf('|') + 1);
        const limit = Math.min(this.queue.length, IDLE_MATCH_LOOKAHEAD);
        for (let i = 0; i < limit; i++) {
          const job = this.queue[i]!;
          if (job.partner || job.template !== template || job.hostBuild !== h.info.build) continue;
          if (job.hostBuild === UNKNOWN_BUILD && job.host !== h.info.name) continue;
          if (this.placement === 'pinned' && job.host !== h.info.name && this.hosts.get(job.host)?.out === undefined) continue;
          this.queue.splice(i, 1);
          h.idle.splice(h.idle.indexOf(vm), 1);
          this.reused++;
          void this.start(job, { hosts: [h.info.name], reuse: vm, affinity: vm.affinity });
          break;
        }
      }
    }
  }

  /** Second attempts for the oldest attempts past the 90th percentile of attempt times. */
  private hedgeStragglers(): void {
    const h = this.hedge!;
    if (this.durations.length < (h.minSamples ?? 20)) return;
    const sorted = [...this.durations].sort((a, b) => a - b);
    const threshold = sorted[Math.floor(sorted.length * 0.9)]!;
    const now = h.clock.now();
    let wake = Infinity;
    const lone = [...this.live.values()].filter((a) => a.length === 1 && !this.hedged.has(a[0]!.job.jobId)).map((a) => a[0]!).sort((a, b) => a.startedAt - b.startedAt);
    for (const r of lone) {
      const age = now - r.startedAt;
      if (age <= threshold) { wake = Math.min(wake, threshold - age); continue; }
      if ((this.attempts.get(r.job.jobId) ?? 0) >= this.maxAttempts) continue;
      // Another host first: the one running the straggler may be the slow part.
      const cands = this.candidates(r.job).sort((a, b) => Number(a[0] === r.lease.hosts[0]) - Number(b[0] === r.lease.hosts[0]));
      const lease = this.place(r.job, cands);
      if (!lease) break;
      this.hedged.add(r.job.jobId);
      this.hedges++;
      void this.start(r.job, lease);
    }
    if (wake !== Infinity && !this.stopped) {
      this.hedgeWake?.abort();
      const ctl = new AbortController();
      this.hedgeWake = ctl;
      h.clock.sleep(wake + 1, ctl.signal).then(() => this.dispatch(), () => {});
    }
  }

  private freeSlots(hosts: string[]): number {
    return hosts.reduce((n, h) => {
      const s = this.hosts.get(h)!;
      return n + s.info.capacity.vmSlots - s.slots + s.idle.length;
    }, 0);
  }

  private anyRoom(reserved: ReadonlySet<string>): boolean {
    for (const h of this.hosts.values()) if (h.out === undefined && !reserved.has(h.info.name) && (h.slots < h.info.capacity.vmSlots || h.idle.length > 0)) return true;
    return false;
  }

  /** Host lists (1 or 2 hosts) the job may run on, planned placement first. */
  private candidates(job: PlannedJob): string[][] {
    const up = (n: string | undefined) => n !== undefined && this.hosts.get(n)?.out === undefined && this.hosts.has(n);
    const out: string[][] = [];
    const planned = job.partner ? [job.host, job.partner] : [job.host];
    if (planned.every(up)) out.push(planned);
    // A host whose build the inventory does not give could be anything: its jobs stay on it.
    const pinned = (this.placement === 'pinned' && out.length > 0) || job.hostBuild === UNKNOWN_BUILD;
    if (pinned) return out;
    for (const h of this.hosts.values()) {
      if (h.out !== undefined || h.info.name === job.host || h.info.build !== job.hostBuild) continue;
      if (!job.partner) { out.push([h.info.name]); continue; }
      const p = h.info.partner ? this.hosts.get(h.info.partner) : undefined;
      if (p && p.out === undefined && p.info.build === job.partnerBuild) out.push([h.info.name, p.info.name]);
    }
    return out;
  }

  private noHostReason(job: PlannedJob): string {
    const outs = [job.host, job.partner].filter((n): n is string => n !== undefined).map((n) => `${n}: ${this.hosts.get(n)?.out ?? 'not in the lab'}`);
    return `no host of build ${job.hostBuild}${job.partner ? ` paired with build ${job.partnerBuild}` : ''} is left in the run (${outs.join('; ')})`;
  }

  private place(job: PlannedJob, candidates: string[][]): Lease | undefined {
    // A host with an idle VM of the job's key wins: no provisioning at all.
    if (!job.partner) {
      for (const [name] of candidates) {
        const h = this.hosts.get(name!)!;
        const affinity = `${name}|${job.template}`;
        const at = h.idle.findIndex((v) => v.affinity === affinity);
        if (at >= 0) {
          const vm = h.idle.splice(at, 1)[0]!;
          this.reused++;
          return { hosts: [name!], reuse: vm, affinity };
        }
      }
    }
    for (const hosts of candidates) {
      if (!hosts.every((n) => this.fits(this.hosts.get(n)!, job.memoryMB))) continue;
      for (const n of hosts) {
        const h = this.hosts.get(n)!;
        h.slots++;
        h.memoryMB += job.memoryMB;
      }
      return { hosts, reuse: undefined, affinity: job.partner ? undefined : `${hosts[0]}|${job.template}` };
    }
    // No room: make room by removing an idle VM of another key, on the first candidate
    // where that is enough and no removal is already under way (it frees a slot soon).
    for (const hosts of candidates) {
      const blocked = hosts.map((n) => this.hosts.get(n)!).filter((h) => !this.fits(h, job.memoryMB));
      if (blocked.some((h) => h.evicting > 0)) return undefined;
      if (blocked.every((h) => h.idle.length > 0)) {
        for (const h of blocked) this.evict(h, h.idle.shift()!);
        return undefined;
      }
    }
    return undefined;
  }

  private fits(h: HostState, memoryMB: number): boolean {
    return h.out === undefined && h.slots + 1 <= h.info.capacity.vmSlots && h.memoryMB + memoryMB <= h.info.capacity.memoryMB;
  }

  private evict(h: HostState, vm: IdleVm): void {
    h.evicting++;
    void this.executor.dropIdleVm(vm).catch(() => undefined).finally(() => {
      h.evicting--;
      this.release(h.info.name, vm.memoryMB);
      this.dispatch();
    });
  }

  private release(host: string, memoryMB: number): void {
    const h = this.hosts.get(host);
    if (!h) return;
    h.slots--;
    h.memoryMB -= memoryMB;
  }

  private async start(job: PlannedJob, lease: Lease): Promise<void> {
    this.running++;
    const attempt = (this.attempts.get(job.jobId) ?? 0) + 1;
    this.attempts.set(job.jobId, attempt);
    const me: Live = { job, attempt, lease, abort: new AbortController(), startedAt: this.hedge?.clock.now() ?? 0 };
    this.live.set(job.jobId, [...(this.live.get(job.jobId) ?? []), me]);
    this.events.onAttempt?.(job, attempt, lease);
    let outcome: AttemptOutcome;
    try {
      outcome = await this.executor.runAttempt(job, attempt, lease, AbortSignal.any([this.abort.signal, me.abort.signal]));
    } catch (e) {
      // An executor that throws has a bug; the job is not lost, it is an error result.
      outcome = { kind: 'infra', message: `internal error: ${e instanceof Error ? e.message : String(e)}`, host: undefined, retryable: false };
    }
    this.running--;
    const siblings = (this.live.get(job.jobId) ?? []).filter((x) => x !== me);
    if (siblings.length) this.live.set(job.jobId, siblings); else this.live.delete(job.jobId);
    if (outcome.kind === 'done' && this.hedge) this.durations.push(this.hedge.clock.now() - me.startedAt);
    if (outcome.kind === 'done' && outcome.idle && !this.stopped && this.hosts.get(outcome.idle.host)?.out === undefined) {
      this.hosts.get(outcome.idle.host)!.idle.push(outcome.idle);
      // The job's other reservations (a pair's partner) end here.
      for (const n of lease.hosts) if (n !== outcome.idle.host) this.release(n, job.memoryMB);
    } else {
      if (outcome.kind === 'done' && outcome.idle) void this.executor.dropIdleVm(outcome.idle).catch(() => undefined);
      for (const n of lease.hosts) this.release(n, job.memoryMB);
    }
    // Rechecked after the await: a stopped run records only what finished on its own.
    if (this.stopped && outcome.kind !== 'done') return this.checkFinished();
    // A hedge that lost the race (cancelled, or finished second) only gives back its capacity.
    if (outcome.kind === 'canceled' || this.finishedJobs.has(job.jobId)) return this.dispatch();
    if (outcome.kind === 'done') {
      this.finishedJobs.add(job.jobId);
      for (const s of siblings) s.abort.abort(new Error('another attempt of the job finished first'));
      const earlier = this.failures.get(job.jobId);
      this.events.onResult(job, { ...outcome.result, attempts: attempt, ...(earlier ? { attemptErrors: earlier } : {}) } as JobResult);
      if (outcome.result.host) this.hosts.get(outcome.result.host)!.failures = 0;
    } else {
      const list = this.failures.get(job.jobId) ?? [];
      list.push(`attempt ${attempt}${outcome.host ? ` on ${outcome.host}` : ''}: ${outcome.message}`);
      this.failures.set(job.jobId, list);
      // While another attempt of the job runs, that one decides its fate.
      const retry = outcome.retryable && attempt < this.maxAttempts && siblings.length === 0;
      this.events.onAttemptFailed?.(job, attempt, outcome.host, retry, outcome.message);
      if (outcome.host !== undefined) {
        const h = this.hosts.get(outcome.host);
        if (h && ++h.failures >= this.hostFailureLimit) this.takeHostOut(outcome.host, `${h.failures} infrastructure failures in a row, the last: ${outcome.message}`);
      }
      if (siblings.length === 0) {
        if (retry) this.queue.unshift(job);
        else this.giveUp(job, outcome.message, lease.hosts[0]);
      }
    }
    this.dispatch();
  }

  private giveUp(job: PlannedJob, message: string, host = job.host): void {
    const attempts = this.attempts.get(job.jobId) ?? 0;
    const earlier = this.failures.get(job.jobId);
    this.finishedJobs.add(job.jobId);
    const result = {
      jobId: job.jobId, host, hostBuild: job.hostBuild, guest: job.guest, template: job.template, scenario: job.scenario, seed: job.seed, attach: job.attach,
      verdict: 'error', message, durationsMs: {}, evidence: {}, attempts, ...(earlier ? { attemptErrors: earlier } : {}),
    } as JobResult;
    this.events.onResult(job, result);
  }

  private checkFinished(): void {
    if (this.running > 0) return;
    if (this.stopped || this.queue.length === 0) {
      this.hedgeWake?.abort();
      this.done();
    }
  }
}
