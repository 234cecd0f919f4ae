import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import { loadScenarioPaths } from '../../scenario/loader.ts';
import { checkTraces, formatCheckReport } from '../../run/commands/check-trace.ts';
import { statInput } from '../../input-files.ts';
import { checkTraceFilesPropertiesOnly, formatPropertiesOnlyReport } from '../../check/properties-only.ts';
import { CHOICE_HELP, collectChoice, parseChoices, parsePositiveInt } from '../options.ts';
import { stringifyWithIds } from '../../trace/json-ids.ts';
import type { GuestSends } from '../../check/replay.ts';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate observed traces against the emulator (trace validation) and classify the first divergence')
    .option('--scenario <file>', 'the scenario the traces come from (required unless --properties-only)')
    .requiredOption('--trace <file>', 'a trace file (repeat for a run\'s host, guest and bench files)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--choice <key=value>', CHOICE_HELP, collectChoice, [] as string[])
    .option('--guest-sends <queue|wait>', 'what the traced guest\'s send does when its ring is full: queue (KMCL: the twin, a Windows guest driver) or wait (a Linux guest driver sleeps until the host reads); default: wait if the scenario\'s devices are c-linux, else queue')
    .option('--align <file=key>', 'a --trace file without bench events, cut where the bench events\' at.<key> marks say (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--out <dir>', 'where to write the minimal scenario (default: beside the first trace)')
    .option('--no-minimise', 'do not search for a minimal scenario')
    .option('--minimise-time <s>', 'seconds to spend finding and shrinking a minimal scenario; the smallest found by then is kept', '60')
    .option('--properties-only', 'check only the device-independent properties, without the device model (payload and status rules are not checked); an opaque device is always checked so')
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: { scenario?: string; trace: string[]; choice: string[]; guestSends?: string; align: string[]; out?: string; minimise: boolean; minimiseTime: string; json?: boolean; propertiesOnly?: boolean }) => {
      // Commander counts the empty default as given: without a trace there is nothing to check.
      if (o.trace.length === 0) throw new InputError("required option '--trace <file>' not specified: name the trace to check", { field: '--trace' });
      // A FIFO or a looping link is refused before the reader opens it (opening a FIFO blocks).
      for (const t of o.trace) await statInput(t);
      if (o.propertiesOnly) {
        if (o.choice.length > 0) throw new InputError('--choice chooses for the model, which --properties-only does not replay', { field: '--choice' });
        if (o.guestSends !== undefined) throw new InputError('--guest-sends tells the model which guest wrote the trace, and --properties-only does not replay it', { field: '--guest-sends' });
        const [ps] = o.scenario === undefined ? [undefined] : await loadScenarioPaths([o.scenario]);
        const report = await checkTraceFilesPropertiesOnly(o.trace, { scenario: ps?.name });
        process.stdout.write(`${o.json ? stringifyWithIds(report) : formatPropertiesOnlyReport(report)}\n`);
        process.exitCode = report.result.verdict === 'pass' ? 0 : 1;
        return;
      }
      if (o.scenario === undefined) throw new InputError('bench check needs --scenario <file> (or --properties-only)', { field: '--scenario' });
      const [s] = await loadScenarioPaths([o.scenario]);
      const minimiseTimeMs = parsePositiveInt('--minimise-time', o.minimiseTime) * 1000;
      const progress = (line: string): void => void process.stderr.write(`${line}\n`);
      const guestSends = parseGuestSends(o.guestSends);
      const report = await checkTraces(s!, o.trace, { choices: parseChoices(o.choice), guestSends, minimise: o.minimise, outDir: o.out, minimiseTimeMs, onProgress: progress, align: parseAlign(o.align, o.trace) });
      if (o.json) process.stdout.write(`${stringifyWithIds(report)}\n`);
      else process.stdout.write(`${formatCheckReport(report)}\n`);
      process.exitCode = report.result.verdict === 'pass' ? 0 : 1;
    });
}

/** `--guest-sends queue|wait` (replay.ts GuestSends); absent: undefined (the scenario's devices say). */
function parseGuestSends(v: string | undefined): GuestSends | undefined {
  if (v === undefined || v === 'queue' || v === 'wait') return v;
  throw new InputError(`--guest-sends ${v}: expected queue (a KMCL guest: the twin, Windows) or wait (a Linux guest driver)`, { field: '--guest-sends' });
}

/** `--align FILE=KEY`: FILE must be one of the --trace files. */
function parseAlign(list: string[], traces: readonly string[]): Map<string, string> | undefined {
  if (list.length === 0) return undefined;
  const out = new Map<string, string>();
  for (const item of list) {
    const at = item.lastIndexOf('=');
    const file = item.slice(0, at);
    const key = item.slice(at + 1);
    if (at <= 0 || key === '') throw new InputError(`--align ${item}: expected FILE=KEY, KEY being the name in the bench events' at: { KEY: seq }`);
    if (!traces.includes(file)) throw new InputError(`--align ${item}: ${file} is not one of the --trace files`);
    out.set(file, key);
  }
  return out;
}
