// `bench nightly --lab LAB.yaml [--resume RUN_ID] [--out DIR] [--workers N] [--json]`
//
// Runs the lab's whole plan and writes results/<run-id>/ (plan.json, journal.jsonl,
// traces, summary.json, junit.xml, report.html) and the history index. An emulated lab
// (`kind: emulated`) runs on the emulator's worker threads; a Hyper-V lab inventory runs
// on the lab run engine, as `bench run --nightly` does (src/run/real/lab-run.ts). Exit code as the report
// layer decides it: 0 all passed, 1 a divergence or hang, 3 infrastructure errors only
// (or a reporter that failed). Progress goes to stderr; with --json, stdout holds one
// JSON document.
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { InfraError } from '../../errors.ts';
import { runDirLayout } from '../../report/run-dir.ts';
import { loadLabFile } from '../../run/emulated/emulated-lab.ts';
import { runEmulatedNightly } from '../../run/emulated/nightly-emulated.ts';
import { checkOutDir, collectFaults, FAULT_HELP, parsePositiveInt } from '../options.ts';
import { runLab } from '../../run/real/lab-run.ts';
import type { FaultMode } from '../../vmbus/faults.ts';
import { InputError } from '../../errors.ts';
import { labEnvironment } from './run.ts';

interface NightlyOptions {
  lab: string;
  resume?: string;
  runId?: string;
  out: string;
  workers: string;
  fault?: FaultMode[];
  json?: boolean;
}

/** A Hyper-V lab: the whole matrix on the lab run engine, with the nightly's extras (chat summary, publishing). */
async function runHyperVNightly(o: NightlyOptions, log: (line: string) => void): Promise<void> {
  const env = labEnvironment(process.env);
  const stop = new AbortController();
  const onSigint = (): void => {
    log('bench nightly: stopping after the running steps; finish later with --resume');
    stop.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const r = await runLab({
      lab: o.lab, templates: [], scenarios: [], out: o.out, runId: o.resume ?? o.runId, resume: o.resume !== undefined,
      dryRun: false, keepFailed: false, nightly: true, publish: env.publish, connect: env.connect,
      controlTool: env.controlTool, driversDir: env.driversDir, jobTimeoutMs: 3_600_000, log, stopSignal: stop.signal,
    });
    if (!r.complete) throw new InfraError(`run ${r.runId ?? ''} stopped before its end; finish it with --resume ${r.runId ?? 'RUN_ID'}`);
    if (o.json) process.stdout.write(`${JSON.stringify({ runId: r.runId, runDir: r.runDir, counts: r.outcome?.counts, exitCode: r.outcome?.exitCode })}\n`);
    else if (r.chat) process.stdout.write(`${r.chat}\n`);
    process.exitCode = r.outcome?.exitCode ?? 3;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function registerNightly(program: Command): void {
  program
    .command('nightly')
    .description('run every job of a lab (hosts x guests x scenarios x seeds) and write results/<run-id>/ with its reports')
    .requiredOption('--lab <file>', 'lab file: an emulated lab (kind: emulated) or a Hyper-V lab inventory')
    .option('--resume <run-id>', 'finish this run: jobs already in its journal are not run again')
    .option('--run-id <id>', 'name of a new run (default: its start time, to the second)')
    .option('--out <dir>', 'results root; the run goes to <dir>/<run-id>/', 'results')
    .option('--workers <n>', 'emulator worker threads', String(availableParallelism()))
    .option('--fault <name>', `emulated labs only: ${FAULT_HELP}`, collectFaults)
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: NightlyOptions) => {
      const workers = parsePositiveInt('--workers', o.workers);
      if (o.runId !== undefined && o.resume !== undefined) throw new InputError('give --run-id or --resume, not both', { field: '--resume' });
      checkOutDir('--out', o.out);
      const lab = await loadLabFile(o.lab);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      if (lab.kind !== 'emulated') {
        if (o.fault) throw new InputError('--fault imitates platform bugs on the emulator; it applies to emulated labs (kind: emulated) only', { file: o.lab });
        await runHyperVNightly(o, log);
        return;
      }
      const stop = new AbortController();
      const onSigint = () => {
        log('bench nightly: stopping after the running jobs (Ctrl-C again to kill)');
        stop.abort();
        process.off('SIGINT', onSigint);
      };
      process.on('SIGINT', onSigint);
      const tty = process.stderr.isTTY === true;
      let result;
      try {
        result = await runEmulatedNightly({
          lab,
          outRoot: o.out,
          resume: o.resume,
          runId: o.runId,
          workers,
          faults: o.fault,
          signal: stop.signal,
          onWarning: (m) => log(`bench nightly: ${m}`),
          terminal: {
            stream: process.stderr,
            tty,
            color: tty && !('NO_COLOR' in process.env),
            width: process.stderr.columns ?? 120,
          },
        });
      } finally {
        process.off('SIGINT', onSigint);
      }
      const layout = runDirLayout(result.runDir);
      const exitCode = result.reporterFailures.length > 0 ? 3 : result.outcome.exitCode;
      if (o.json) {
        process.stdout.write(`${JSON.stringify({
          runId: result.runId,
          runDir: result.runDir,
          lab: result.summary.lab,
          counts: result.outcome.counts,
          exitCode,
          ran: result.ran,
          recorded: result.recorded,
          files: { plan: layout.plan, journal: layout.journal, summary: layout.summary, junit: layout.junit, report: layout.report },
          reporterFailures: result.reporterFailures.map((f) => `${f.reporter} reporter failed in ${f.hook}`),
        }, null, 2)}\n`);
      } else {
        if (result.recorded > 0) log(`resumed run ${result.runId}: ${result.recorded} job(s) from the journal, ${result.ran} run now`);
        log(`results in ${result.runDir}`);
      }
      if (result.reporterFailures.length > 0) {
        throw new InfraError(`${result.reporterFailures.length} reporter(s) failed (${result.reporterFailures.map((f) => f.reporter).join(', ')}); the other outputs were written`);
      }
      process.exitCode = exitCode;
    });
}
