// Runs `bench report` as its own process with only the report command registered, mapping
// errors to exit codes exactly as src/cli/main.ts does. The CLI tests use the real
// bin/bench.js when the whole CLI loads, and this when another command's module is missing
// (the commands are written by different people at different times).
import { Command, CommanderError } from 'commander';
import { registerReport } from '../../../src/cli/commands/report.ts';
import { isBenchError } from '../../../src/errors.ts';

const program = new Command('bench').exitOverride();
registerReport(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2;
  else if (isBenchError(e)) {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else {
    process.stderr.write(`bench: internal error:\n${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 3;
  }
}
