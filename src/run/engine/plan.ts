// The plan of a lab run (DESIGN.md "Runs and results"; STYLE.md 9): the matrix
// hosts x templates x scenarios x seeds expanded into jobs, written to `plan.json` before
// anything starts and printed by `--dry-run`.
//
// `plan.json` is a pure function of inventory x scenarios x matrix: no clock, no run id,
// no randomness, and the job ids are built from the job's coordinates, so the same inputs
// give the same file byte for byte and a resumed run finds its jobs by id.
//
// - A scenario that migrates needs a host pair: it is planned on every host that names a
//   `migrationPartner`, with that partner. The scenario's first host name maps to the
//   job's host, its second to the partner; a scenario naming three hosts cannot be placed.
// - Each job carries `locks` (the hosts it occupies and the parent disk it reads) and an
//   `affinity` key (host + template): a VM left by one job can be reset to its base
//   checkpoint and reused by the next job with the same key, instead of provisioning.
// - Jobs are ordered longest first (estimated from the scenario's steps), so the long
//   jobs start early and the tail of the run is short (longest-processing-time order).

import { createHash } from 'node:crypto';
import { loopbackNotApplicable, type AttachMode } from '../../lab/attach.ts';
import { devicePath, type Scenario } from '../../scenario/model.ts';
import type { JobSpec } from '../../report/summary.ts';

/** What the plan needs from an inventory host (src/lab/inventory.ts LabHost has it). */
export interface PlanHost {
  name: string;
  build: string | undefined;
  migrationPartner: string | undefined;
  capacity: { vmSlots: number; memoryMB: number };
  /**
   * Attach modes the host offers (src/lab/attach.ts). Absent (emulated and simulated labs):
   * VM jobs only, as before attach modes existed.
   */
  attach?: readonly AttachMode[] | undefined;
  /**
   * The device module (absolute path) whose drivers the host runs (a real lab's inventory
   * `device`); absent: any. A scenario of another device is not planned on it.
   */
  device?: string | undefined;
}

/** The pseudo-template of loopback jobs: the Windows client driver in the host, no VM. */
export const LOOPBACK_TEMPLATE = 'loopback';
export const LOOPBACK_GUEST = 'client in host (loopback)';

/** What the plan needs from a VM template (src/lab/template.ts VmTemplate has it). */
export interface PlanTemplate {
  name: string;
  parentDisk: string;
  memoryMB: number;
  guest: { osName: string };
}

export interface Matrix {
  /** Only these hosts (default all). */
  hosts?: readonly string[] | undefined;
  /** Seeds each scenario runs with (default: the scenario's own seed, else 1). */
  seeds?: readonly number[] | undefined;
  /**
   * Whether a migrating scenario needs a host pair (default true). An emulated "host"
   * migrates to another emulator instance of its own, so an emulated lab says false.
   */
  pairs?: boolean | undefined;
}

export interface PlanInput {
  lab: string;
  hosts: readonly PlanHost[];
  templates: readonly PlanTemplate[];
  scenarios: readonly Scenario[];
  matrix?: Matrix | undefined;
  /**
   * A real lab's reason a VM job of scenario `s` with template `t` cannot run (the steps
   * its device and guest OS cannot drive: src/lab/vm-steps.ts), or undefined; such a job
   * is planned not applicable. Emulated labs run every step and pass none.
   */
  vmJobNotApplicable?: ((s: Scenario, t: PlanTemplate) => string | undefined) | undefined;
}

export interface PlannedJob extends JobSpec {
  attach: AttachMode;
  /**
   * Why the job cannot run in its attach mode: it is planned (so it shows in the plan, the
   * matrix and JUnit) but never started, and ends `skipped` with this reason.
   */
  notApplicable?: string | undefined;
  /** The partner host of a migration job (the VM goes there and back). */
  partner: string | undefined;
  partnerBuild: string | undefined;
  /** Scenario host name -> lab host (migration steps name the emulator's hosts). */
  hostMap: Record<string, string>;
  memoryMB: number;
  /** Hosts the job occupies and the parent disk it reads. */
  locks: string[];
  /** Jobs with the same key may reuse one VM through its base checkpoint; none for pairs. */
  affinity: string | undefined;
  /** Rough seconds on a real lab, for ordering only. */
  estimateS: number;
  /** Digest of the scenario's content: a changed scenario file is a different job. */
  scenarioDigest: string;
}

export interface Unplaced {
  scenario: string;
  template: string;
  host: string;
  reason: string;
}

export interface Plan {
  version: 1;
  lab: string;
  /** Digest of everything the plan was made from; a resume refuses a different plan. */
  digest: string;
  jobs: PlannedJob[];
  unplaced: Unplaced[];
}

export function needsPair(s: Scenario): boolean {
  return s.steps.some((st) => st.op === 'migrate');
}

/** The scenario's host names in order of appearance (its start host first). */
export function scenarioHosts(s: Scenario): string[] {
  const names = [s.host];
  for (const st of s.steps) if (st.op === 'migrate' && !names.includes(st.to)) names.push(st.to);
  return names;
}

/**
 * Seconds a job takes on a real lab, roughly (reference/hyperv-timings.md medians):
 * provisioning and boot once, then each VM operation, then collection and cleanup.
 */
export function estimateSeconds(s: Scenario): number {
  let t = 60;
  for (const st of s.steps) {
    switch (st.op) {
      case 'save': t += 5; break;
      case 'restore': t += 8; break;
      case 'pause': case 'resume': t += 1; break;
      case 'checkpoint': t += 6; break;
      case 'apply-checkpoint': t += 12; break;
      case 'migrate': t += 20; break;
      case 'run': t += st.ms / 1000; break;
      default: t += 1;
    }
  }
  return Math.round(t);
}

/** A job id from its coordinates. `@`, `+` and `=` never occur in names, so ids are unique. */
export function jobIdOf(scenario: string, template: string, host: string, partner: string | undefined, seed: number): string {
  return `${scenario}+${template}@${host}${partner ? `@${partner}` : ''}=${seed}`;
}

export function scenarioDigest(s: Scenario): string {
  const { source: _source, ...content } = s;
  return sha256(stableJson(content)).slice(0, 16);
}

export function makePlan(input: PlanInput): Plan {
  const wanted = input.matrix?.hosts;
  const hosts = input.hosts.filter((h) => wanted === undefined || wanted.includes(h.name));
  const byName = new Map(input.hosts.map((h) => [h.name, h]));
  const jobs: PlannedJob[] = [];
  const unplaced: Unplaced[] = [];
  for (const s of input.scenarios) {
    const digest = scenarioDigest(s);
    const seeds = input.matrix?.seeds ?? [s.seed ?? 1];
    const names = scenarioHosts(s);
    const pair = needsPair(s) && input.matrix?.pairs !== false;
    // A host runs one device's drivers: another device's scenario is not planned there.
    const otherDevice = (h: PlanHost): string | undefined => (h.device !== undefined && h.device !== devicePath(s)
      ? `the scenario tests the device ${devicePath(s)}; ${h.name} runs the drivers of ${h.device} (inventory device)` : undefined);
    // Loopback jobs: one per host offering it, no VM, no partner (attach.ts).
    for (const h of hosts) {
      if (!h.attach?.includes('loopback')) continue;
      const other = otherDevice(h);
      if (other) { unplaced.push({ scenario: s.name, template: LOOPBACK_TEMPLATE, host: h.name, reason: other }); continue; }
      const na = loopbackNotApplicable(s);
      for (const seed of seeds) {
        jobs.push({
          jobId: jobIdOf(s.name, LOOPBACK_TEMPLATE, h.name, undefined, seed),
          host: h.name, hostBuild: h.build ?? 'unknown', guest: LOOPBACK_GUEST, template: LOOPBACK_TEMPLATE, scenario: s.name, seed,
          attach: 'loopback', ...(na ? { notApplicable: na } : {}),
          partner: undefined, partnerBuild: undefined, hostMap: { [names[0]!]: h.name }, memoryMB: 0,
          locks: [`host:${h.name}`], affinity: undefined, estimateS: na ? 0 : Math.max(1, estimateSeconds(s) - 50), scenarioDigest: digest,
        });
      }
    }
    for (const t of input.templates) {
      for (const h of hosts) {
        const skip = (reason: string) => unplaced.push({ scenario: s.name, template: t.name, host: h.name, reason });
        // A host that offers no vm-handle cannot reach a VM's guest driver: planned, not run.
        const vmNa = h.attach && !h.attach.includes('vm-handle')
          ? `vm-handle: ${h.name} has no handle broker (attach: ${h.attach.join(', ')}), so the VSP cannot reach a VM; a guest driver in a VM cannot be the peer of a loopback offer`
          : undefined;
        const other = otherDevice(h);
        if (other) { skip(other); continue; }
        const stepNa = vmNa ?? input.vmJobNotApplicable?.(s, t);
        if (pair) {
          const p = h.migrationPartner === undefined ? undefined : byName.get(h.migrationPartner);
          const otherPartner = p ? otherDevice(p) : undefined;
          if (otherPartner) { skip(`the partner: ${otherPartner}`); continue; }
        }
        if (t.memoryMB > h.capacity.memoryMB) { skip(`the template needs ${t.memoryMB} MB, the host offers ${h.capacity.memoryMB} MB`); continue; }
        let partner: PlanHost | undefined;
        if (pair) {
          if (names.length > 2) { skip(`the scenario uses ${names.length} hosts (${names.join(', ')}); a job has at most a host pair`); continue; }
          partner = h.migrationPartner === undefined ? undefined : byName.get(h.migrationPartner);
          if (!partner) { skip('the scenario migrates and the host names no migrationPartner'); continue; }
          if (!vmNa && partner.attach && !partner.attach.includes('vm-handle')) { skip(`the partner ${partner.name} offers no vm-handle attach`); continue; }
          if (t.memoryMB > partner.capacity.memoryMB) { skip(`the partner ${partner.name} offers only ${partner.capacity.memoryMB} MB`); continue; }
        }
        const hostMap: Record<string, string> = { [names[0]!]: h.name };
        if (partner && names[1] !== undefined) hostMap[names[1]] = partner.name;
        for (const seed of seeds) {
          jobs.push({
            jobId: jobIdOf(s.name, t.name, h.name, partner?.name, seed),
            host: h.name,
            hostBuild: h.build ?? 'unknown',
            guest: t.guest.osName,
            template: t.name,
            scenario: s.name,
            seed,
            attach: 'vm-handle',
            ...(stepNa ? { notApplicable: stepNa } : {}),
            partner: partner?.name,
            partnerBuild: partner ? (partner.build ?? 'unknown') : undefined,
            hostMap,
            memoryMB: t.memoryMB,
            locks: [`host:${h.name}`, ...(partner ? [`host:${partner.name}`] : []), `disk:${t.parentDisk}`],
            affinity: partner ? undefined : `${h.name}|${t.name}`,
            estimateS: stepNa ? 0 : estimateSeconds(s),
            scenarioDigest: digest,
          });
        }
      }
    }
  }
  // Longest first; ties by id so the order is total and the plan deterministic.
  jobs.sort((a, b) => b.estimateS - a.estimateS || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
  const seen = new Set<string>();
  for (const j of jobs) {
    if (seen.has(j.jobId)) throw new Error(`duplicate job id ${j.jobId}: two scenarios or templates share a name`);
    seen.add(j.jobId);
  }
  const body = { version: 1 as const, lab: input.lab, jobs, unplaced };
  return { version: 1, lab: input.lab, digest: sha256(stableJson(body)).slice(0, 32), jobs, unplaced };
}

/** plan.json text: stable key order, one job per line block, ending in a newline. */
export function planJson(plan: Plan): string {
  return `${JSON.stringify(JSON.parse(stableJson(plan)), null, 2)}\n`;
}

/** The plan for people (`--dry-run`). */
export function formatPlan(plan: Plan): string {
  const lines = [`plan for ${plan.lab}: ${plan.jobs.length} job(s), digest ${plan.digest}`];
  const na = plan.jobs.filter((j) => j.notApplicable);
  lines[0] += na.length ? ` (${na.length} not applicable, shown as skipped)` : '';
  for (const j of plan.jobs) {
    if (j.notApplicable) continue;
    const vm = j.attach === 'loopback' ? '  (no VM)' : `  ${j.memoryMB} MB${j.affinity ? `  reuse ${j.affinity}` : '  (host pair, fresh VM)'}`;
    lines.push(`  ${j.jobId}  [${j.attach}]  ~${j.estimateS}s${vm}`);
  }
  for (const j of na) lines.push(`  not applicable: ${j.jobId}  [${j.attach}]: ${j.notApplicable}`);
  for (const u of plan.unplaced) lines.push(`  not planned: ${u.scenario} / ${u.template} on ${u.host}: ${u.reason}`);
  return lines.join('\n');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
