// `bench check`: validate observed traces against the emulator, then help explain a
// divergence: which documented-gap option the trace fits instead, and the smallest
// scenario that shows the same divergence on the emulator.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { stringify } from 'yaml';
import { InputError } from '../../errors.ts';
import { devicePath, type Scenario } from '../../scenario/model.ts';
import { deviceOf } from '../../device-api/load.ts';
import { checkReplayFirst, checkTrace, describeEvent, guestSendsOf, type CheckResult, type GuestSends } from '../../check/replay.ts';
import { ArraySource, FileSource, type ObservedEvent, type ObservedSource } from '../../check/observed.ts';
import { findReproduction, minimise, scenarioToYaml, type MinimiseProgress } from '../../check/minimise.ts';
import { normaliseToArray, fileSource } from '../../trace/normalise.ts';
import { DEFAULT_CHOICES, GAP_CHOICES, type GapChoices } from '../../vmbus/choices.ts';
import { FAULT_MODES } from '../../vmbus/faults.ts';
import { checkTraceFilesPropertiesOnly } from '../../check/properties-only.ts';

export interface CheckReport {
  scenario: string;
  traces: string[];
  result: CheckResult;
  /** set when the last line of a trace was cut short (a writer that crashed) */
  truncatedAt: { file: string; line: number } | null;
  /** gap options under which the trace is explained, when the defaults diverge */
  fitsChoices: Array<{ key: keyof GapChoices; value: string | boolean }>;
  minimal: null | { file: string; fault: string; seed: number; tries: number; timedOut: boolean };
  /** minimisation ran out of its time (--minimise-time) before it found a reproduction */
  minimiseTimedOut?: boolean | undefined;
  /** set when the check left things out (propertiesOnly): what it did not check, one sentence each */
  notChecked?: string[] | undefined;
  /** what the model took the traced guest's send to do on a full ring (absent: not replayed) */
  guestSends?: GuestSends | undefined;
}

export interface CheckOptions {
  choices?: Partial<GapChoices> | undefined;
  minimise: boolean;
  outDir?: string | undefined;
  /**
   * Check the device-independent properties alone, without replaying the device's twins
   * (check/properties-only.ts). A scenario whose device is opaque is checked so anyway.
   */
  propertiesOnly?: boolean | undefined;
  /** What the traced guest's send does on a full ring (replay.ts GuestSends); absent: from the scenario's devices. */
  guestSends?: GuestSends | undefined;
  /** Traces without bench events, cut at the bench events' `at[markKey]` (normalise.ts), by file. */
  align?: ReadonlyMap<string, string> | undefined;
  /** Time for finding and shrinking a reproduction, ms (default: no limit). */
  minimiseTimeMs?: number | undefined;
  /** Progress lines while minimising (to stderr in the CLI). */
  onProgress?: ((line: string) => void) | undefined;
}

export async function checkTraces(s: Scenario, traces: readonly string[], opts: CheckOptions): Promise<CheckReport> {
  checkHeap(+1);
  try {
    return await check(s, traces, opts);
  } finally {
    checkHeap(-1);
  }
}

async function check(s: Scenario, traces: readonly string[], opts: CheckOptions): Promise<CheckReport> {
  // An opaque device, or one without twins, has no model to replay: its properties alone.
  const device = deviceOf(devicePath(s));
  if (opts.propertiesOnly || device.statusRule === 'opaque' || !device.emulator) {
    const r = await checkTraceFilesPropertiesOnly(traces, { scenario: s.name });
    return { scenario: r.scenario, traces: r.traces, result: r.result, truncatedAt: r.truncatedAt, fitsChoices: [], minimal: null, notChecked: r.notChecked };
  }
  const open = await opener(traces, opts.align);
  // The traces are read a second time only if they diverge (checkReplayFirst).
  let last: ReturnType<typeof open> | undefined;
  const guestSends = opts.guestSends ?? guestSendsOf(s);
  const result = checkReplayFirst(s, () => (last = open()).source, { choices: opts.choices, guestSends });
  const report: CheckReport = {
    scenario: s.name,
    traces: [...traces],
    result,
    truncatedAt: last!.truncatedAt(),
    fitsChoices: [],
    minimal: null,
    guestSends,
  };
  if (result.verdict === 'pass') return report;

  // Would another reading of the documentation explain the trace?
  for (const c of GAP_CHOICES) {
    const current = opts.choices?.[c.key] ?? DEFAULT_CHOICES[c.key];
    for (const value of c.options) {
      if (value === current) continue;
      const alt = { ...(opts.choices ?? {}), [c.key]: value } as Partial<GapChoices>;
      // The verdict alone: without the properties it is the same (checkReplayFirst).
      if (checkTrace(s, open().source, { choices: alt, properties: false, guestSends }).verdict === 'pass') report.fitsChoices.push({ key: c.key, value });
    }
  }

  if (opts.minimise && report.fitsChoices.length === 0) {
    const deadline = performance.now() + (opts.minimiseTimeMs ?? Infinity);
    opts.onProgress?.(`minimising: looking for a fault mode that reproduces "${result.class}" on the emulator (${s.steps.length} steps)`);
    const repro = findReproduction(s, result.class, FAULT_MODES, opts.choices, deadline);
    if (!repro && performance.now() > deadline) report.minimiseTimedOut = true;
    if (repro) {
      const tell = (p: MinimiseProgress): void => opts.onProgress?.(`minimising: ${p.tries} tries, ${p.steps} steps left, ${Math.round(p.elapsedMs / 1000)} s`);
      const { scenario, tries, timedOut } = minimise(s, repro, { deadline, onProgress: tell });
      const dir = opts.outDir ?? dirname(traces[0]!);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${s.name}-minimal.yaml`);
      const text = `# Written by bench check: ${result.class} reproduces on the emulator with fault ${repro.fault}.\n${stringify(scenarioToYaml(scenario, repro))}`;
      writeFileSync(`${file}.partial`, text);
      renameSync(`${file}.partial`, file);
      report.minimal = { file, fault: repro.fault, seed: repro.seed, tries, timedOut };
    }
  }
  return report;
}

let checksRunning = 0;

/**
 * Two V8 settings while checks run (process-wide flags, so counted and put back to V8's
 * defaults after the last one). A check's objects live for a few thousand events at
 * most, but a long check ran into two V8 heuristics that grew the peak for nothing:
 *
 * - Allocation-site pretenuring: once most objects from one object literal have survived
 *   a young collection, V8 allocates that literal straight into the old generation. Early
 *   in a check (small young generation, a round of packets in flight) the per-event
 *   objects look long-lived; once decided, every later one died in the old generation,
 *   and the peak of a 1-million-event check doubled (about 210 -> 410 MB) in one run in four.
 * - Young-generation growth: V8 doubles the young generation each time as many bytes have
 *   survived as it holds, up to 2 x 64 MB, so the peak grew with the trace's length
 *   (about 330 MB at 10 million events). With the growth factor at 1 it keeps the size it
 *   had when the check began (8-32 MB after loading the scenario), which also runs faster.
 * Both are flags V8 reads at each collection, so setting them here (for every `bench
 * check`, not only the benchmark) takes effect at once.
 */
function checkHeap(delta: 1 | -1): void {
  checksRunning += delta;
  if (delta === 1 && checksRunning === 1) {
    setFlagsFromString('--no-allocation-site-pretenuring');
    setFlagsFromString('--semi-space-growth-factor=1');
  } else if (checksRunning === 0) {
    setFlagsFromString('--allocation-site-pretenuring');
    setFlagsFromString('--semi-space-growth-factor=2');
  }
}

/** Returns a function that opens the observed stream afresh (it is read once per check). */
async function opener(traces: readonly string[], align?: ReadonlyMap<string, string>): Promise<() => { source: ObservedSource; truncatedAt: () => CheckReport['truncatedAt'] }> {
  if (traces.length === 1 && !align?.size) {
    const file = traces[0]!;
    return () => {
      const src = new FileSource(file);
      return { source: src, truncatedAt: () => (src.truncatedAt === null ? null : { file, line: src.truncatedAt }) };
    };
  }
  const merged = await normaliseToArray(traces.map((t) => {
    const markKey = align?.get(t);
    return fileSource(t, { ids: { ch: 'auto', tx: 'auto' }, acceptTruncated: true, ...(markKey !== undefined ? { align: { markKey } } : {}) }).source;
  }));
  if (merged.length > 0 && !merged.some((n) => n.event.side === 'bench')) {
    // Several files and not one bench event: nothing says which event came before which
    // VM operation, so a check could only blame the wrong thing (a "spurious" event).
    throw new InputError('none of these traces holds the bench\'s events (scenario.begin, vm.save.begin, ...), so their events cannot be placed around the VM operations', {
      file: traces[0]!,
    }, { hint: 'check them with the bench\'s own trace as well (one more --trace), or with --align FILE=KEY for a file cut at the at-marks of the bench events' });
  }
  // Each event's place in the merged stream: the replay orders host against guest by it
  // (the merge's cuts, a bench.mark's among them), not by lines of two different files.
  const events: ObservedEvent[] = merged.map((n, order) => ({ event: n.event, file: n.refs[0]!.file, line: n.refs[0]!.line, order }));
  return () => ({ source: new ArraySource(events), truncatedAt: () => null });
}

/** The human-readable verdict. */
export function formatCheckReport(r: CheckReport): string {
  const lines: string[] = [];
  const res = r.result;
  if (r.truncatedAt) lines.push(`note: ${r.truncatedAt.file}:${r.truncatedAt.line} is cut short (a writer that crashed); the events before it were checked`);
  if (res.verdict === 'pass') {
    lines.push(`pass  ${r.scenario}: all ${res.events} events explained by the emulator`);
    return lines.join('\n');
  }
  lines.push(`DIVERGE  ${r.scenario}: ${res.class}`);
  lines.push(`  ${res.message}`);
  if (res.firstUnexplained) lines.push(`  first unexplained event: ${res.firstUnexplained.file}:${res.firstUnexplained.line}  ${describeEvent(res.firstUnexplained.event)}`);
  if (res.expected.length > 0) {
    lines.push('  the model allowed there:');
    for (const e of res.expected.slice(0, 8)) lines.push(`    ${e}`);
  }
  if (res.failedProperties.length > 0) lines.push(`  properties broken by the trace: ${res.failedProperties.join(', ')}`);
  if (r.guestSends) lines.push(`  checked as a guest whose send ${r.guestSends === 'wait' ? 'waits for room in a full ring (a Linux driver)' : 'queues in the library when its ring is full (KMCL)'}: --guest-sends ${r.guestSends}`);
  for (const f of r.fitsChoices) lines.push(`  the trace fits the emulator with ${f.key}: ${String(f.value)} (a documented-gap choice; this host behaves that way)`);
  if (r.minimal) lines.push(`  minimal scenario (fault ${r.minimal.fault}, seed ${r.minimal.seed}${r.minimal.timedOut ? '; stopped at the --minimise-time limit, so not the smallest' : ''}): ${r.minimal.file}`);
  if (r.minimiseTimedOut) lines.push('  no minimal scenario: the --minimise-time limit came before a reproduction on the emulator was found');
  return lines.join('\n');
}

/**
 * Which option of each documented-gap choice the traces fit (the verdict alone, as
 * `bench check`'s search does): `bench lab probe` learns from it what a host does where
 * the documentation is silent. A choice whose every option fits was not decided by them.
 */
export async function fittingChoices(s: Scenario, traces: readonly string[]): Promise<Array<{ key: keyof GapChoices; fits: Array<string | boolean> }>> {
  const open = await opener(traces);
  return GAP_CHOICES.map((c) => ({
    key: c.key,
    fits: c.options.filter((value) => checkTrace(s, open().source, { choices: { [c.key]: value } as Partial<GapChoices>, properties: false }).verdict === 'pass'),
  }));
}
