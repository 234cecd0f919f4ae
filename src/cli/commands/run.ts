// `bench run --lab LAB.yaml [--template T]... [--scenario S]... [--host H]... [--seeds 1,2]
//            [--out DIR] [--run-id ID | --resume ID] [--dry-run] [--keep-failed]
//            [--quarantine FILE] [--nightly] [--publish DEST] [--json]`
//
// Runs scenarios on real Hyper-V hosts beside the emulator and checks each job's traces
// (src/run/real/lab-run.ts). `--dry-run` prints the plan and connects to nothing. `--nightly`
// adds the one-paragraph summary (summary.txt) and publishing; lab/nightly/ schedules it.
//
// Environment, read here once:
//   BENCH_PWSH, BENCH_REMOTE_PWSH, BENCH_HYPERV_MODULE   as for `bench lab` (host shells)
//   BENCH_CONTROL_TOOL   the device's control tool on the hosts (default: its module's control.tool.program)
//   BENCH_PUBLISH        publishing destination when --publish is not given (nightly)
// Exit: 0 every job passed (or is quarantined); 1 a divergence or hang; 2 bad input;
// 3 infrastructure errors only, or a run stopped before every job had a result.

import type { Command } from 'commander';
import { readYamlFile } from '../../lab/yaml-input.ts';
import { InfraError, InputError } from '../../errors.ts';
import { defaultRunId, runLab, type LabRunOptions } from '../../run/real/lab-run.ts';
import { formatPlan } from '../../run/engine/plan.ts';
import { parsePositiveInt } from '../options.ts';

interface RunOptions {
  lab: string;
  template: string[];
  scenario: string[];
  host?: string[];
  seeds?: string;
  out: string;
  runId?: string;
  resume?: string;
  dryRun?: boolean;
  keepFailed?: boolean;
  quarantine?: string;
  nightly?: boolean;
  publish?: string;
  jobTimeout: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** What a lab run takes from the environment (read once, here); `bench nightly` can share it. */
export function labEnvironment(env: NodeJS.ProcessEnv): Pick<LabRunOptions, 'connect' | 'controlTool' | 'driversDir'> & { publish: string | undefined } {
  return {
    connect: { localPwsh: env.BENCH_PWSH || undefined, remoteCommand: env.BENCH_REMOTE_PWSH || undefined, modules: env.BENCH_HYPERV_MODULE ? [env.BENCH_HYPERV_MODULE] : [], queryTimeoutMs: 60_000 },
    controlTool: env.BENCH_CONTROL_TOOL || undefined,
    driversDir: 'lab/drivers',
    publish: env.BENCH_PUBLISH || undefined,
  };
}

function parseSeeds(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const seeds = v.split(',').map((x) => x.trim());
  if (seeds.some((x) => !/^\d+$/.test(x) || Number(x) > 0xffffffff)) throw new InputError(`--seeds must be integers from 0 to 4294967295 separated by commas, got "${v}"`, { field: '--seeds' });
  return seeds.map(Number);
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run scenarios on the lab\'s Hyper-V hosts beside the emulator, and check every job\'s traces')
    .requiredOption('--lab <file>', 'lab inventory (lab/*.yaml)')
    .option('--template <file|name>', 'VM template (repeatable; default: every vm-templates/*.yaml)', collect, [])
    .option('--scenario <file|dir>', 'scenario file or directory (repeatable; default: bench/scenarios)', collect, [])
    .option('--host <name>', 'only this host (repeatable)', collect, [])
    .option('--seeds <list>', 'seeds each scenario runs with, e.g. 1,2,3 (default: the scenario\'s own, else 1)')
    .option('--out <dir>', 'results root; the run goes to <out>/<run-id>', 'results')
    .option('--run-id <id>', 'name of the run (default: start time and lab name)')
    .option('--resume <id>', 'finish run <id> after a crash or a stop: jobs with a result are not run again')
    .option('--dry-run', 'print the plan (plan.json) and connect to nothing')
    .option('--keep-failed', 'keep the VM of a failed job (with a checkpoint named after it) for debugging')
    .option('--quarantine <file>', 'known problems (default: lab/quarantine.yaml)')
    .option('--nightly', 'write the chat/e-mail paragraph (summary.txt) and publish')
    .option('--publish <dest>', 'publish the static report here at the end (with --nightly)')
    .option('--job-timeout <s>', 'deadline of the real side of one job, seconds', '3600')
    .option('--json', 'print one JSON document on stdout and nothing else')
    .action(async (o: RunOptions) => {
      const log = (line: string) => process.stderr.write(`${line}\n`);
      if (o.runId !== undefined && o.resume !== undefined) throw new InputError('give --run-id or --resume, not both', { field: '--resume' });
      await refuseEmulatedLab(o.lab);
      const stop = new AbortController();
      const onSignal = (sig: string) => () => {
        log(`bench run: ${sig}: stopping after the running jobs' VM steps; resume with --resume`);
        stop.abort();
      };
      const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
      process.once('SIGINT', handlers.SIGINT);
      process.once('SIGTERM', handlers.SIGTERM);
      const env = labEnvironment(process.env);
      try {
        const r = await runLab({
          lab: o.lab, templates: o.template, scenarios: o.scenario, hosts: o.host?.length ? o.host : undefined, seeds: parseSeeds(o.seeds), out: o.out,
          runId: o.resume ?? o.runId, resume: o.resume !== undefined, dryRun: Boolean(o.dryRun), keepFailed: Boolean(o.keepFailed),
          quarantine: o.quarantine, nightly: Boolean(o.nightly), publish: o.publish ?? (o.nightly ? env.publish : undefined),
          connect: env.connect, controlTool: env.controlTool, driversDir: env.driversDir,
          jobTimeoutMs: parsePositiveInt('--job-timeout', o.jobTimeout) * 1000, log, stopSignal: stop.signal,
        });
        if (o.dryRun) {
          if (o.json) process.stdout.write(`${JSON.stringify({ plan: r.plan, warnings: r.warnings, runId: o.resume ?? o.runId ?? defaultRunId(r.plan.lab) })}\n`);
          else process.stdout.write(`${formatPlan(r.plan)}\n`);
          process.exitCode = 0;
          return;
        }
        if (!r.complete || !r.outcome || !r.summary) {
          throw new InfraError(`run ${r.runId} stopped before every job had a result; its evidence is in ${r.runDir}; finish it with --resume ${r.runId}`);
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ runId: r.runId, runDir: r.runDir, counts: r.outcome.counts, exitCode: r.outcome.exitCode, chat: r.chat, published: r.published })}\n`);
        } else {
          for (const j of r.summary.jobs) process.stdout.write(`${j.verdict.padEnd(7)} ${j.jobId}${j.message ? `  ${j.message.split('\n')[0]}` : ''}\n`);
          process.stdout.write(`evidence: ${r.runDir} (summary.json, junit.xml, report.html, jobs/<job-id>/)\n`);
          if (r.chat) process.stdout.write(`${r.chat}\n`);
        }
        process.exitCode = r.outcome.exitCode;
      } finally {
        process.off('SIGINT', handlers.SIGINT);
        process.off('SIGTERM', handlers.SIGTERM);
      }
    });
}

/** An emulated lab has no Hyper-V hosts to run on: say which command runs it. */
async function refuseEmulatedLab(file: string): Promise<void> {
  const src = await readYamlFile(file);
  const kind = typeof src.data === 'object' && src.data !== null ? (src.data as { kind?: unknown }).kind : undefined;
  if (kind === 'emulated') {
    throw new InputError('this is an emulated lab (kind: emulated), which has no Hyper-V hosts for `bench run`', { file, field: 'kind' }, {
      hint: `run it with: bench nightly --lab ${file}`,
    });
  }
}
