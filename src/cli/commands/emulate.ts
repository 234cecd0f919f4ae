import type { Command } from 'commander';
import { loadScenarioPaths } from '../../scenario/loader.ts';
import { emulateScenarios } from '../../run/commands/emulate.ts';
import { CHOICE_HELP, checkOutDir, collectChoice, collectFaults, FAULT_HELP, parseChoices, parseDevices, parseSeed } from '../options.ts';
import type { FaultMode } from '../../vmbus/faults.ts';
import { InputError } from '../../errors.ts';

export function registerEmulate(program: Command): void {
  program
    .command('emulate')
    .description('run scenarios on the emulator; one trace per scenario, properties checked')
    .argument('<scenarios...>', 'scenario YAML files or directories of them')
    .option('--seed <n>', 'schedule seed (a scenario\'s own seed wins)', '1')
    .option('--out <dir>', 'output directory', 'results/emulated')
    .option('--dump-rings <dir>', 'write each ring\'s raw bytes at every save and at the end')
    .option('--migrate-threads', 'run each migration\'s destination host on another worker thread')
    .option('--fault <name>', FAULT_HELP, collectFaults)
    .option('--choice <key=value>', `${CHOICE_HELP}; overrides each scenario's choices`, collectChoice, [] as string[])
    .option('--devices <mode>', 'twin (the TypeScript twins), c (the C VSP compiled to WebAssembly, twin guest), c-linux (the C VSP and the C Linux guest driver), c-windows (the C VSP and the C Windows guest driver, one PnP device per channel); overrides each scenario\'s devices')
    .option('--json', 'print one JSON document on stdout')
    .action(async (paths: string[], o: { seed: string; out: string; dumpRings?: string; migrateThreads?: boolean; fault?: FaultMode[]; choice: string[]; devices?: string; json?: boolean }) => {
      const devices = parseDevices(o.devices);
      const choices = parseChoices(o.choice);
      checkOutDir('--out', o.out);
      if (o.dumpRings !== undefined) checkOutDir('--dump-rings', o.dumpRings);
      const scenarios = await loadScenarioPaths(paths);
      const progress = (line: string): void => {
        (o.json ? process.stderr : process.stdout).write(`${line}\n`);
      };
      if (o.migrateThreads && o.dumpRings) throw new InputError('--dump-rings and --migrate-threads cannot be combined yet');
      const summary = await emulateScenarios(scenarios, {
        migrateThreads: o.migrateThreads,
        faults: o.fault,
        choices,
        devices,
        seed: parseSeed(o.seed),
        outDir: o.out,
        dumpRingsDir: o.dumpRings,
        onProgress: progress,
      });
      if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else progress(`${summary.passed} passed, ${summary.failed} failed; traces and summary.json in ${o.out}`);
      process.exitCode = summary.failed > 0 ? 1 : 0;
    });
}
