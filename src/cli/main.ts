// The `bench` command: parse arguments, call one layer, map errors to exit codes.
//
// Exit codes (DESIGN.md): 0 all passed; 1 a divergence or failed property; 2 bad input
// or usage; 3 infrastructure failure. Anything that is not a BenchError is a bug: its
// stack goes to stderr and the exit code is 3.
import { Command, CommanderError } from 'commander';
import { isBenchError, type ExitCode } from '../errors.ts';
import { registerCommands } from './commands/index.ts';

const program = new Command('bench')
  .description('VMBus save/restore bench: emulator, trace checker and Hyper-V lab driver')
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

async function main(argv: string[]): Promise<ExitCode> {
  try {
    await program.parseAsync(argv);
    return (process.exitCode as ExitCode | undefined) ?? 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end up here with exit code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isBenchError(e)) {
      process.stderr.write(`bench: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`bench: internal error (a bug in the bench, please report it):\n`);
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 3;
  }
}

const code = await main(process.argv);
process.exitCode = code;
// The command's work is done here, every file written and every connection the bench
// still holds closed. A handle a library keeps open past that (an SSH client whose
// PowerShell session was lost, issue 16) must not keep the command alive for minutes:
// exit once what was written to stdout and stderr has drained.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
process.exit(code);
