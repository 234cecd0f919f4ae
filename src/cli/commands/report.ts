// `bench report RUN_DIR [--publish DEST [--evidence-cap MIB]] [--history FILE] [--json]`
//
// Rebuilds junit.xml and report.html of a run directory from its summary.json and the
// history index (rebuilt when missing or damaged), optionally publishes the static site,
// and exits like the run did: 0 all passed, 1 divergences, 3 infrastructure errors only.
// A reporter that fails (the others still write their files) is an infrastructure
// failure: exit 3. Bad summary.json: exit 2, and nothing is written.
import type { Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { InfraError } from '../../errors.ts';
import { buildReports } from '../../report/build.ts';
import { checkReplaceable, EVIDENCE_CAP_BYTES, formatBytes, publishSite } from '../../report/publish.ts';
import { parsePositiveInt } from '../options.ts';
import { describeFailure } from '../../report/reporter.ts';
import { defaultHistoryPath } from '../../report/run-dir.ts';

interface ReportOptions {
  publish?: string;
  evidenceCap?: string;
  history?: string;
  json?: boolean;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('rebuild junit.xml and report.html of a run directory from its summary.json and the run history')
    .argument('<run-dir>', 'a run directory, results/<run-id>/, holding summary.json')
    .option('--publish <dest>', 'also publish a self-contained static site of all indexed runs to DEST (replaced atomically)')
    .option('--evidence-cap <MiB>', `with --publish: evidence (minimised scenarios, traces, host logs) copied per run, at most (default ${EVIDENCE_CAP_BYTES / (1024 * 1024)})`)
    .option('--history <file>', 'history index to use (default: history.sqlite beside the run directory)')
    .option('--json', 'print one JSON document on stdout and nothing else')
    .action(async (runDir: string, opts: ReportOptions) => {
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const historyPath = resolve(opts.history ?? defaultHistoryPath(runDir));
      const evidenceCapBytes = opts.evidenceCap === undefined ? EVIDENCE_CAP_BYTES : parsePositiveInt('--evidence-cap', opts.evidenceCap) * 1024 * 1024;
      // A destination we may not replace is bad input: say so before writing anything.
      if (opts.publish !== undefined) await checkReplaceable(opts.publish);
      const result = await buildReports(runDir, { historyPath, onWarning: (m) => log(`bench report: ${m}`) });
      for (const f of result.failures) log(`bench report: ${describeFailure(f)}`);

      let published: Awaited<ReturnType<typeof publishSite>> | undefined;
      if (opts.publish !== undefined && result.failures.length === 0) {
        published = await publishSite(opts.publish, {
          historyPath,
          resultsRoot: dirname(resolve(runDir)),
          evidenceCapBytes,
          onWarning: (m) => log(`bench report: ${m}`),
        });
      }

      const { counts, exitCode } = result.outcome;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({
          runId: result.summary.runId,
          lab: result.summary.lab,
          counts,
          exitCode: result.failures.length > 0 ? 3 : exitCode,
          written: result.written,
          failures: result.failures.map(describeFailure),
          history: { path: result.historyPath, rebuiltBecause: result.historyRebuiltBecause ?? null },
          published: published ? { dest: published.dest, runs: published.runs, evidence: { ...published.evidence, capBytesPerRun: evidenceCapBytes } } : null,
          warnings: result.warnings,
        }, null, 2)}\n`);
      } else {
        const verdict = exitCode === 0 ? 'passed' : exitCode === 1 ? 'divergences found' : 'infrastructure errors';
        process.stdout.write(
          `run ${result.summary.runId} (${result.summary.lab}): ${verdict}; ${counts.pass} passed, ${counts.diverge} diverged, ` +
            `${counts.hang} hung, ${counts.error} errors, ${counts.skipped} skipped${counts.quarantined ? `, ${counts.quarantined} quarantined` : ''}\n`,
        );
        if (result.historyRebuiltBecause) process.stdout.write(`history index rebuilt (${result.historyRebuiltBecause}): ${result.historyPath}\n`);
        for (const f of result.written) process.stdout.write(`wrote ${f}\n`);
        if (published) {
          const e = published.evidence;
          const left = [e.overCap ? `${e.overCap} over the cap of ${formatBytes(evidenceCapBytes)} per run` : '', e.missing ? `${e.missing} missing from their run directories` : ''].filter(Boolean);
          process.stdout.write(`published ${published.runs.length} run(s) to ${published.dest}; evidence: ${e.copied} file(s), ${formatBytes(e.bytes)}${left.length ? `; left out: ${left.join(', ')}` : ''}\n`);
        }
      }

      if (result.failures.length > 0) {
        throw new InfraError(
          `${result.failures.length} reporter(s) failed (${result.failures.map((f) => f.reporter).join(', ')}); the other outputs were written` +
            (opts.publish !== undefined ? '; nothing was published' : ''),
        );
      }
      process.exitCode = exitCode;
    });
}
