import type { Command } from 'commander';
import { measureAll } from '../../run/commands/perf.ts';
import { formatPerfTable, perfJson, perfRows } from '../../report/perf-table.ts';

export function registerPerf(program: Command): void {
  program
    .command('perf')
    .description('measure the performance figures (ring, round trips, save/restore, explore, trace read, report render) and print each beside its target')
    .option('--json', 'print one JSON document: per figure its value, unit, target and status (met, missed, no target)')
    .option('--quick', 'smaller inputs where a figure allows (a 1-million-event trace for bench check)')
    .action(async (o: { json?: boolean; quick?: boolean }) => {
      const figures = await measureAll((what) => process.stderr.write(`perf: ${what}\n`), { quick: o.quick });
      const rows = perfRows(figures);
      if (o.json) process.stdout.write(`${JSON.stringify(perfJson(rows))}\n`);
      else process.stdout.write(formatPerfTable(rows));
    });
}
