// The plan of an emulated nightly run, `results/<run-id>/plan.json`: every job of
// hosts x guests x scenarios x seeds, decided before anything runs. It is a pure function
// of the lab file, the scenarios and the run id, and it carries the scenarios themselves
// and each host's choices, so `--resume` runs exactly what was planned even if the
// scenario files changed in between.
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../report/atomic-file.ts';
import type { JobSpec } from '../report/summary.ts';
import { InputError } from '../errors.ts';
import type { Scenario } from '../scenario/model.ts';
import type { GapChoices } from '../vmbus/choices.ts';
import type { EmulatedHost, EmulatedLab } from './emulated-lab.ts';

export const PLAN_VERSION = 1;

export interface PlannedJob extends JobSpec {
  /** The host's gap choices, applied over the scenario's own. */
  choices: Partial<GapChoices>;
  /** Where the job's trace goes, relative to the run directory. */
  trace: string;
}

export interface EmulatedPlan {
  version: 1;
  kind: 'emulated';
  runId: string;
  lab: string;
  labFile: string;
  hosts: EmulatedHost[];
  guests: string[];
  seeds: number[];
  scenarios: Scenario[];
  jobs: PlannedJob[];
}

export function planEmulatedRun(lab: EmulatedLab, scenarios: readonly Scenario[], runId: string): EmulatedPlan {
  const jobs: PlannedJob[] = [];
  for (const host of lab.hosts) {
    for (const guest of lab.guests) {
      for (const s of scenarios) {
        for (const seed of lab.seeds) {
          // Host, guest and scenario names are [A-Za-z0-9._-], so the id is file-name safe.
          const jobId = `${host.name}.${guest}.${s.name}.s${seed}`;
          jobs.push({
            jobId, host: host.name, hostBuild: host.build, guest, template: lab.template, scenario: s.name, seed,
            choices: host.choices, trace: `traces/${jobId}.jsonl`,
          });
        }
      }
    }
  }
  return {
    version: PLAN_VERSION, kind: 'emulated', runId, lab: lab.name, labFile: lab.file,
    hosts: lab.hosts, guests: lab.guests, seeds: lab.seeds, scenarios: [...scenarios], jobs,
  };
}

/** `2026-11-24T03-53-00Z-7f3a`: the start time in UTC, file-name safe, and a suffix for runs started in the same second. */
export function newRunId(now: Date): string {
  return `${now.toISOString().slice(0, 19).replace(/:/g, '-')}Z-${randomBytes(2).toString('hex')}`;
}

export async function writePlan(file: string, plan: EmulatedPlan): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(plan, null, 2)}\n`);
}

/** Reads plan.json back for a resume; a missing or foreign plan is bad input. */
export async function readPlan(file: string): Promise<EmulatedPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no plan.json here: is this a run directory?' : `cannot read: ${(e as Error).message}`, { file });
  }
  let plan: EmulatedPlan;
  try {
    plan = JSON.parse(text) as EmulatedPlan;
  } catch {
    throw new InputError('plan.json is not valid JSON', { file });
  }
  if (plan?.version !== PLAN_VERSION) throw new InputError(`plan version ${JSON.stringify(plan?.version)} is not ${PLAN_VERSION}`, { file, field: 'version' });
  if (plan.kind !== 'emulated') throw new InputError('this run was not an emulated run', { file, field: 'kind' });
  if (!Array.isArray(plan.jobs) || !Array.isArray(plan.scenarios)) throw new InputError('plan.json has no jobs or scenarios', { file, field: 'jobs' });
  return plan;
}
