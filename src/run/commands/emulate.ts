// `bench emulate`: run scenarios on the emulator, write one trace per scenario and a
// summary, and check the properties of DESIGN.md on each run as it goes.
//
// Files are written to a temporary name and renamed when complete, so an interrupted
// run never leaves a trace or summary that looks whole but is not.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { executeScenario, type ExecuteResult } from '../../scenario/execute.ts';
import { usesCDrivers, type DevicesMode, type Scenario } from '../../scenario/model.ts';
import { PropertyChecker, statusRuleOf, type Violation } from '../../check/properties.ts';
import { StampingSink } from '../../trace/sink.ts';
import { withTraceFileAsync } from '../../trace/writer.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import { executeAcrossThreads } from '../workers/migrate-threads.ts';
import type { FaultMode } from '../../vmbus/faults.ts';

export interface EmulateOptions {
  seed: number;
  outDir: string;
  dumpRingsDir?: string | undefined;
  choices?: Partial<GapChoices> | undefined;
  onProgress?: ((line: string) => void) | undefined;
  /** run each migration's destination on another worker thread (migrate-threads.ts) */
  migrateThreads?: boolean | undefined;
  /** platform bugs to imitate in every scenario (`--fault`, vmbus/faults.ts) */
  faults?: readonly FaultMode[] | undefined;
  /** `--devices c`: the C VSP instead of the twins, in every scenario (else each scenario's own) */
  devices?: DevicesMode | undefined;
  /** devices: c: C VSP sources replaced (ExecuteOptions.cVspReplace; no CLI flag) */
  cVspReplace?: Readonly<Record<string, string>> | undefined;
}

export interface ScenarioOutcome {
  name: string;
  seed: number;
  verdict: 'pass' | 'fail';
  trace: string;
  events: number;
  steps: number;
  durationMs: number;
  violations: Violation[];
  /** the faults asked for that acted in this run (one aimed at queued packets cannot act when nothing is queued) */
  faultsFired?: FaultMode[] | undefined;
}

export interface EmulateSummary {
  kind: 'emulate';
  seed: number;
  passed: number;
  failed: number;
  scenarios: ScenarioOutcome[];
}

export async function emulateScenarios(scenarios: readonly Scenario[], opts: EmulateOptions): Promise<EmulateSummary> {
  mkdirSync(opts.outDir, { recursive: true });
  const outcomes: ScenarioOutcome[] = [];
  for (const s of scenarios) {
    const seed = s.seed ?? opts.seed;
    const file = join(opts.outDir, `${s.name}.jsonl`);
    const checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
    const started = performance.now();
    let events = 0;
    const migrates = s.steps.some((st) => st.op === 'migrate');
    const result: ExecuteResult = await withTraceFileAsync(file, async (write) => {
      const sink = new StampingSink('emulator', (e) => {
        write(e);
        checker.onEvent(e);
      });
      const r =
        opts.migrateThreads && migrates && !usesCDrivers(opts.devices ?? s.devices)
          ? await executeAcrossThreads(s, { seed, sink, choices: opts.choices, faults: opts.faults ? [...opts.faults] : undefined })
          : executeScenario(s, {
              seed,
              sink,
              choices: opts.choices,
              faults: opts.faults,
              devices: opts.devices,
              cVspReplace: opts.cVspReplace,
              dumpRing: opts.dumpRingsDir ? ringDumper(opts.dumpRingsDir, s.name) : undefined,
            });
      events = sink.lastSeq;
      return r;
    });
    const violations = checker.finish(result.hang, result.refusedRestores);
    const outcome: ScenarioOutcome = {
      name: s.name,
      seed,
      verdict: violations.length === 0 ? 'pass' : 'fail',
      trace: file,
      events,
      steps: result.steps,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      violations,
      ...(opts.faults?.length ? { faultsFired: result.faultsFired } : {}),
    };
    outcomes.push(outcome);
    const idle = (opts.faults ?? []).filter((f) => !result.faultsFired.includes(f));
    opts.onProgress?.(
      `${outcome.verdict === 'pass' ? 'pass' : 'FAIL'}  ${s.name}  (${outcome.events} events, ${outcome.steps} save points, ${outcome.durationMs} ms)` +
        violations.map((v) => `\n      ${v.class}: ${v.message}${v.seq !== null ? ` (seq ${v.seq})` : ''}`).join('') +
        (idle.length > 0 ? `\n      fault ${idle.join(', ')} did not act in this run (what it acts on never happened here)` : ''),
    );
  }
  const summary: EmulateSummary = {
    kind: 'emulate',
    seed: opts.seed,
    passed: outcomes.filter((o) => o.verdict === 'pass').length,
    failed: outcomes.filter((o) => o.verdict === 'fail').length,
    scenarios: outcomes,
  };
  const path = join(opts.outDir, 'summary.json');
  writeFileSync(`${path}.partial`, `${JSON.stringify(summary, null, 2)}\n`);
  renameSync(`${path}.partial`, path);
  return summary;
}

function ringDumper(dir: string, scenario: string) {
  const base = join(dir, scenario);
  mkdirSync(base, { recursive: true });
  return (label: string, ch: number, dirName: 'g2h' | 'h2g', bytes: Uint8Array): void => {
    writeFileSync(join(base, `${label}-ch${ch}-${dirName}.ring`), bytes);
  };
}
