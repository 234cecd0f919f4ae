import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import { loadScenarioPaths } from '../../scenario/loader.ts';
import { usesCDrivers } from '../../scenario/model.ts';
import { EXPLORE_OPS } from '../../check/explore.ts';
import { exploreParallel } from '../../run/commands/explore-parallel.ts';
import { availableParallelism } from 'node:os';
import { cDriversKeyed, type InjectedOp } from '../../scenario/execute.ts';
import { CHOICE_HELP, collectChoice, collectFaults, FAULT_HELP, parseChoices, parseDevices, parsePositiveInt, parseSeed } from '../options.ts';
import type { FaultMode } from '../../vmbus/faults.ts';

export function registerExplore(program: Command): void {
  program
    .command('explore')
    .description('inject save/restore, migration, a checkpoint the VM runs on from, and checkpoint-apply at every save point and check every run')
    .argument('<scenario>', 'scenario YAML file')
    .option('--seed <n>', 'schedule seed', '1')
    .option('--max-schedules <n>', 'stop after this many schedules')
    .option('--ops <list>', `comma-separated operations (${EXPLORE_OPS.join(', ')})`, EXPLORE_OPS.join(','))
    .option('--workers <n>', 'worker threads (1 runs in process)', String(availableParallelism()))
    .option('--plain', 'run every schedule from the start instead of walking the base run (slower; the same result)')
    .option('--fault <name>', FAULT_HELP, collectFaults)
    .option('--choice <key=value>', `${CHOICE_HELP}; overrides the scenario's choices`, collectChoice, [] as string[])
    .option('--devices <mode>', 'twin (the TypeScript twins), c (the C VSP compiled to WebAssembly, twin guest), c-linux (the C VSP and the C Linux guest driver), c-windows (the C VSP and the C Windows guest driver, one PnP device per channel); overrides the scenario\'s devices (the walk keys the C drivers\' state: the C VSP by its device, a C guest as its image)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (path: string, o: { seed: string; maxSchedules?: string; ops: string; workers: string; plain?: boolean; fault?: FaultMode[]; choice: string[]; devices?: string; json?: boolean }) => {
      const choices = parseChoices(o.choice);
      const devices = parseDevices(o.devices);
      const all = await loadScenarioPaths([path]);
      // A directory of several scenarios is refused rather than explored in part.
      if (all.length > 1) {
        throw new InputError(`explore takes one scenario file; ${path} holds ${all.length} (${all.map((x) => x.name).join(', ')}): explore each file on its own`, { file: path });
      }
      // The scenario carries the choice to every worker thread.
      const s = devices && all[0] ? { ...all[0], devices } : all[0];
      const ops = o.ops.split(',').map((x) => x.trim()) as InjectedOp[];
      for (const op of ops) {
        if (!EXPLORE_OPS.includes(op)) throw new InputError(`--ops: unknown operation "${op}"; use ${EXPLORE_OPS.join(', ')}`);
      }
      const workers = parsePositiveInt('--workers', o.workers);
      const progress = (done: number, total: number): void => {
        process.stderr.write(`explore: ${done}/${total} schedules${workers > 1 ? ` (${workers} workers)` : ''}\n`);
      };
      const r = await exploreParallel(s!, {
        seed: parseSeed(o.seed),
        ops,
        maxSchedules: o.maxSchedules ? parsePositiveInt('--max-schedules', o.maxSchedules) : undefined,
        workers,
        plain: o.plain,
        faults: o.fault,
        choices,
        onProgress: progress,
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
      } else {
        const out = process.stdout;
        out.write(`${r.scenario}: ${r.schedules} schedules over ${r.savePoints} save points (${ops.join(', ')}) in ${r.durationMs} ms` +
          `${r.skipped ? `, ${r.skipped} skipped (VM not running there)` : ''}${r.truncated ? ', stopped at --max-schedules' : ''}\n`);
        out.write(`  ${r.schedules - r.ranInFull} decided in the walk of the base run, ${r.ranInFull} run in full (${usesCDrivers(s!.devices) && !(s!.devices === 'c' && cDriversKeyed(s!)) ? `devices: ${s!.devices} runs every schedule from the start` : 'the operation changed what happens next'})\n`);
        for (const f of r.failures.slice(0, 20)) {
          out.write(`  FAIL at save point ${f.at} with ${f.op}:\n`);
          for (const v of f.violations) out.write(`      ${v.class}: ${v.message}\n`);
        }
        if (r.failures.length > 20) out.write(`  ... and ${r.failures.length - 20} more failing schedules\n`);
        out.write(`${r.schedules - r.failures.length} passed, ${r.failures.length} failed\n`);
      }
      process.exitCode = r.failures.length > 0 ? 1 : 0;
    });
}
