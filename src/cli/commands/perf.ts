import type { Command } from 'commander';
import { measureAll } from '../../run/commands/perf.ts';

export function registerPerf(program: Command): void {
  program
    .command('perf')
    .description('measure the performance figures (ring, round trips, save/restore, explore, trace read, report render)')
    .option('--json', 'print one JSON object with one named number per figure')
    .option('--quick', 'smaller inputs where a figure allows (a 1-million-event trace for bench check)')
    .action(async (o: { json?: boolean; quick?: boolean }) => {
      const figures = await measureAll((what) => process.stderr.write(`perf: ${what}\n`), { quick: o.quick });
      if (o.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
      else for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
    });
}
