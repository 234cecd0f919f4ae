// The commands that reproduce a failure, for a failure card to offer for copying:
//
//   bench check --scenario S --trace T... [--choice k=v]...   check the job's traces again:
//       the exact verdict, from the run's own evidence (the model runs with the job's
//       documented-gap choices)
//   bench emulate S --seed N [--choice k=v]... [--fault F]... run the scenario again on the
//       emulator with the job's seed and choices (and fault modes, when some were injected)
//   bench emulate M --seed N [--choice k=v]... [--fault F]... the same for the minimised scenario
//   bench explore S --seed N [--choice k=v]... [--fault F]... try every save point
//
// Evidence paths in a summary are relative to the run directory, so the commands are to be
// run from there; the scenario file is as the run read it. Arguments are quoted for a POSIX
// shell only when they need it. Pure.
import type { JobResult } from './summary.ts';

export interface ReproCommand {
  /** What running it shows. */
  purpose: string;
  argv: string[];
}

/** Single-quotes an argument for sh / bash / zsh when it holds anything but safe characters. */
export function shellQuote(arg: string): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** The scenario file, or a placeholder that names the scenario when the run did not record it. */
export function scenarioArg(j: JobResult): string {
  return j.reproduce?.scenarioFile ?? `<file of scenario ${j.scenario}>`;
}

export function reproCommands(j: JobResult): ReproCommand[] {
  const out: ReproCommand[] = [];
  const scenario = scenarioArg(j);
  const faults = j.reproduce?.faults ?? [];
  const fault = faults.flatMap((f) => ['--fault', f]);
  const choices = Object.entries(j.reproduce?.choices ?? {}).sort(([a], [b]) => a.localeCompare(b)).flatMap(([k, v]) => ['--choice', `${k}=${String(v)}`]);
  // A lab job's own traces are its host and guest files (`trace` is then the emulator's run
  // beside it); an emulated job has only `trace`, and that is the one the checker judged.
  const ev = j.evidence;
  const real = [ev.hostTrace, ev.guestTrace].filter((t): t is string => t !== undefined);
  const traces = real.length > 0 ? real : ev.trace ? [ev.trace] : [];
  if (traces.length > 0) {
    out.push({
      purpose: 'check the traces this job kept again (the same verdict, from the evidence)',
      argv: ['bench', 'check', '--scenario', scenario, ...traces.flatMap((t) => ['--trace', t]), ...choices],
    });
  }
  out.push({ purpose: `run the scenario again on the emulator with seed ${j.seed}${faults.length ? ` and fault${faults.length > 1 ? 's' : ''} ${faults.join(', ')}` : ''}`, argv: ['bench', 'emulate', scenario, '--seed', String(j.seed), ...choices, ...fault] });
  if (j.evidence.minimizedScenario) {
    out.push({ purpose: 'run the minimised scenario, the smallest that still fails', argv: ['bench', 'emulate', j.evidence.minimizedScenario, '--seed', String(j.seed), ...choices, ...fault] });
  }
  out.push({ purpose: 'try every save point and choice of the scenario', argv: ['bench', 'explore', scenario, '--seed', String(j.seed), ...choices, ...fault] });
  return out;
}

/** The host build's choices, said in words for the card (the commands carry them as --choice). */
export function choicesNote(j: JobResult): string | undefined {
  const entries = Object.entries(j.reproduce?.choices ?? {});
  if (entries.length === 0) return undefined;
  const list = entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${String(v)}`).join(', ');
  return `The model ran with these documented-gap choices of host build ${j.hostBuild}: ${list}. Each command below passes them as --choice.`;
}
