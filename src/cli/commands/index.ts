// Every subcommand, one line each. Each module adds its command to the program and sets
// process.exitCode (0 or 1) for results; errors are thrown and mapped in main.ts.
import type { Command } from 'commander';
import { registerCheck } from './check.ts';
import { registerEmulate } from './emulate.ts';
import { registerExplore } from './explore.ts';
import { registerLab } from './lab.ts';
import { registerNightly } from './nightly.ts';
import { registerPerf } from './perf.ts';
import { registerReport } from './report.ts';
import { registerRun } from './run.ts';

export function registerCommands(program: Command): void {
  registerEmulate(program);
  registerCheck(program);
  registerExplore(program);
  registerLab(program);
  registerNightly(program);
  registerPerf(program);
  registerReport(program);
  registerRun(program);
}
