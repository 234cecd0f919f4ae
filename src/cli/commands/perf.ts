import type { Command } from 'commander';
import { measureAll } from '../../run/perf.ts';

export function registerPerf(program: Command): void {
  program
    .command('perf')
    .description('measure the performance figures (ring, round trips, save/restore, explore, trace read, report render)')
    .option('--json', 'print one JSON object with one named number per figure')
    .action(async (o: { json?: boolean }) => {
      const figures = await measureAll((what) => process.stderr.write(`perf: ${what}\n`));
      if (o.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
      else for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
    });
}
