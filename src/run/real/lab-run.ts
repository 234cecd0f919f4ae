// `bench run` on a real lab, and its nightly form: load and validate every input (exit 2
// before anything connects), plan, then the engine with the lab's real side, the emulator
// side on worker threads and the checker; at the end the reporters (summary.json,
// junit.xml, report.html), and for a nightly the chat paragraph (`summary.txt`) and
// publishing.
//
// Configuration arrives resolved (the CLI reads the environment once, STYLE.md 12).

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { execa } from 'execa';
import { readdir } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { InputError } from '../../errors.ts';
import { hasTool, noLabControl } from '../../device-api/device-module.ts';
import { openHyperV, type ConnectConfig } from '../../lab/host-connect.ts';
import { runTag, type HyperV } from '../../lab/hyperv.ts';
import { loadInventory, type Inventory, type LabHost } from '../../lab/inventory.ts';
import { ensureHostDrivers, hostPackages } from '../../lab/deploy-drivers.ts';
import { loadHostDrivers } from '../../lab/driver-package.ts';
import { buildMismatch, readHostFacts } from '../../lab/host-facts.ts';
import { preflightHost } from '../../lab/preflight.ts';
import { vmStepNotApplicable } from '../../lab/vm-steps.ts';
import { loadTemplate, type VmTemplate } from '../../lab/template.ts';
import { writeFileAtomic } from '../../report/atomic-file.ts';
import { openHistory } from '../../report/history.ts';
import { publishSite } from '../../report/publish.ts';
import { createReporters, RUN_REPORTERS } from '../../report/registry.ts';
import { ReporterMultiplexer, describeFailure } from '../../report/reporter.ts';
import { defaultHistoryPath, runDirLayout } from '../../report/run-dir.ts';
import type { HostFactsRecord, JobResult, RunSummary, SummaryOutcome } from '../../report/summary.ts';
import type { Trends } from '../../report/trends.ts';
import { loadScenarioPaths } from '../../scenario/loader.ts';
import { devicePath, type Scenario } from '../../scenario/model.ts';
import { chatSummary } from '../engine/chat-summary.ts';
import { checkTraces } from '../commands/check-trace.ts';
import { runEngine } from '../engine/engine.ts';
import { JobPipeline, realClock, type CheckOutcome, type EmulatorSide, type TraceChecker } from '../engine/job-pipeline.ts';
import { LabRealSide, type LabRealSideOptions } from './lab-real-side.ts';
import { makePlan, type Plan, type PlannedJob } from '../engine/plan.ts';
import { loadQuarantine, NO_QUARANTINE, quarantineWarnings, type QuarantineList } from '../engine/quarantine.ts';
import { DEFAULT_REAL_JOB } from './real-job.ts';
import { deviceOf, loadDevice, SAMPLE_DEVICE } from '../../device-api/load.ts';
import { acquireRunLock } from '../engine/run-lock.ts';
import type { SchedHost } from '../engine/scheduler.ts';
import { WorkerPool } from '../workers/worker-pool.ts';

export interface LabRunOptions {
  lab: string;
  /** Template files, or names of files in vm-templates/. Default: every vm-templates/*.yaml. */
  templates: readonly string[];
  /** Scenario files or directories. Default: bench/scenarios. */
  scenarios: readonly string[];
  hosts?: readonly string[] | undefined;
  seeds?: readonly number[] | undefined;
  /** Results root; the run directory is <out>/<run id>. */
  out: string;
  runId?: string | undefined;
  resume: boolean;
  dryRun: boolean;
  keepFailed: boolean;
  quarantine?: string | undefined;
  publish?: string | undefined;
  /** Nightly: chat summary and publishing at the end. */
  nightly: boolean;
  connect: ConnectConfig;
  jobTimeoutMs: number;
  log: (line: string) => void;
  stopSignal?: AbortSignal | undefined;
  /** Where the guest driver's sources are (lab/drivers). */
  driversDir: string;
  /** The device's control tool on the hosts, instead of its module's `control.tool.program`. */
  controlTool?: string | undefined;
  /** A loopback job's lab, instead of the control tool on the host (tests: the C drivers on the emulator). */
  loopbackLab?: LabRealSideOptions['loopbackLab'];
}

export interface LoadedLab {
  inventory: Inventory;
  templates: VmTemplate[];
  scenarios: Scenario[];
  quarantine: QuarantineList;
  plan: Plan;
}

export interface LabRunResult {
  plan: Plan;
  runId: string | undefined;
  runDir: string | undefined;
  summary: RunSummary | undefined;
  outcome: SummaryOutcome | undefined;
  complete: boolean;
  chat: string | undefined;
  published: string | undefined;
  warnings: string[];
}

export async function loadLab(o: Pick<LabRunOptions, 'lab' | 'templates' | 'scenarios' | 'hosts' | 'seeds' | 'quarantine'>): Promise<LoadedLab> {
  const inventory = await loadInventory(o.lab);
  const templates = await Promise.all((o.templates.length ? o.templates : await defaultTemplates()).map((t) => loadTemplate(templateFile(t))));
  // The inventory's device is the device of scenarios that name none (as an emulated lab file's).
  const scenarios = await loadScenarioPaths(o.scenarios.length ? o.scenarios : ['bench/scenarios'], inventory.device ? { defaultDevice: inventory.device.path, from: { file: inventory.file, field: 'device' } } : {});
  // A real lab drives the device through its control interface: a host whose device has
  // none, or a scenario's device without one, is refused before anything is provisioned.
  await loadHostDevices(inventory, templates);
  for (const s of scenarios) {
    const d = deviceOf(devicePath(s));
    if (!hasTool(d.control)) throw new InputError(`device ${d.name} has no control interface for a real lab${noLabControl(d)}; run it with bench emulate`, { file: s.source?.file, field: 'device' });
  }
  for (const h of o.hosts ?? []) {
    if (!inventory.hosts.some((x) => x.name === h)) throw new InputError(`no host named ${h} in ${inventory.file}`, { field: '--host' }, { hint: `hosts: ${inventory.hosts.map((x) => x.name).join(', ')}` });
  }
  const qFile = o.quarantine ?? (existsSync('lab/quarantine.yaml') ? 'lab/quarantine.yaml' : undefined);
  const quarantine = qFile ? await loadQuarantine(qFile) : NO_QUARANTINE;
  const plan = makePlan({
    lab: inventory.name,
    hosts: inventory.hosts.map((h) => ({ name: h.name, build: h.build, migrationPartner: h.migrationPartner, capacity: h.capacity, attach: h.attach ?? ['loopback'], device: hostDevice(h) })),
    templates, scenarios, matrix: { hosts: o.hosts, seeds: o.seeds },
    // Steps this device and guest OS cannot drive on a real lab: planned, skipped with the reason.
    vmJobNotApplicable: (s, t) => {
      const os = templates.find((x) => x.name === t.name)?.guest.os;
      const why = os ? vmStepNotApplicable(s, os) : undefined;
      return why ? `vm-handle: ${why}` : undefined;
    },
  });
  return { inventory, templates, scenarios, quarantine, plan };
}

export async function runLab(o: LabRunOptions): Promise<LabRunResult> {
  const loaded = await loadLab(o);
  const { inventory, plan } = loaded;
  const warnings = quarantineWarnings(loaded.quarantine, new Date().toISOString(), {
    scenarios: loaded.scenarios.map((s) => s.name), hosts: inventory.hosts.map((h) => h.name), templates: loaded.templates.map((t) => t.name),
  });
  warnings.forEach(o.log);
  if (o.dryRun) return { plan, runId: undefined, runDir: undefined, summary: undefined, outcome: undefined, complete: false, chat: undefined, published: undefined, warnings };
  if (plan.jobs.length === 0) throw new InputError('the plan has no jobs', { file: inventory.file }, { hint: plan.unplaced[0] ? `e.g. ${plan.unplaced[0].scenario} on ${plan.unplaced[0].host}: ${plan.unplaced[0].reason}` : 'check --host, --template and --scenario' });

  const runId = o.runId ?? defaultRunId(inventory.name);
  runTag(runId); // the VMs' Notes carry it: a bad id is refused now (exit 2), not at the first VM
  const root = resolve(o.out);
  const runDir = join(root, runId);
  if (o.resume && !existsSync(runDirLayout(runDir).journal)) throw new InputError(`no run ${runId} to resume in ${root}`, { field: '--resume' });
  const lock = acquireRunLock(root, inventory.name, runId, { onNote: o.log });
  const shells = new Map<string, HyperV>();
  const facts = new Map<string, HostFactsRecord>();
  const drivers = new Map<string, NonNullable<JobResult['drivers']>>();
  const pool = new WorkerPool();
  try {
    const byName = new Map(inventory.hosts.map((h) => [h.name, h]));
    const hv = (name: string) => {
      const h = shells.get(name);
      if (!h) throw new Error(`host ${name} was not opened`);
      return h;
    };
    const hosts: SchedHost[] = inventory.hosts.map((h) => ({ name: h.name, build: h.build ?? 'unknown', capacity: h.capacity, partner: h.migrationPartner }));
    const real = new LabRealSide({
      runId, hosts: byName, hv, templates: new Map(loaded.templates.map((t) => [t.name, t])),
      controlTool: o.controlTool, clock: realClock, realJob: DEFAULT_REAL_JOB, sourceCommit: await gitCommit(o.driversDir), loopbackLab: o.loopbackLab,
    });
    const mux = new ReporterMultiplexer(createReporters(RUN_REPORTERS, { runDir, onWarning: o.log }), (f) => o.log(describeFailure(f)));
    const parents = [...new Set(loaded.templates.map((t) => t.parentDisk))];
    const result = await runEngine({
      runId, runDir, plan, hosts, resume: o.resume, quarantine: loaded.quarantine, reporter: mux, log: o.log, stopSignal: o.stopSignal,
      scheduler: { placement: 'same-build', hedge: { clock: realClock } },
      hooks: {
        sweepHost: async (host, keep) => {
          // A host this process never reached (out since preflight, or in an earlier run) cannot be swept from here.
          if (!shells.has(host)) { o.log(`not sweeping ${host}: it was not reached in this run; bench lab cleanup --lab ${o.lab} --run ${runId} removes what is left there`); return 0; }
          return real.sweepHost(host, keep);
        },
        hostFacts: (host) => facts.get(host),
        preflight: async (list) => {
          const out = new Map<string, string>();
          await Promise.all(list.map(async (h) => {
            const ih = byName.get(h.name)!;
            try {
              const handle = await openHyperV(ih, o.connect);
              shells.set(h.name, handle);
              const checks = await preflightHost({ name: h.name, hv: handle, switchName: ih.switchName, vmRoot: ih.vmRoot, memoryMB: ih.capacity.memoryMB, migrationPartner: ih.migrationPartner, parentDisks: parents, minFreeDiskGB: 20 });
              // Host facts from the host itself; a label that no longer matches is said out loud.
              const f = await readHostFacts(handle);
              const warning = buildMismatch(h.name, ih.build, f);
              if (warning) { o.log(`warning: ${warning}`); warnings.push(warning); }
              facts.set(h.name, { ...f, label: ih.build, ...(warning ? { warning } : {}) });
              const failed = checks.filter((c) => c.status === 'fail');
              if (failed.length) { out.set(h.name, `preflight: ${failed.map((c) => `${c.check}: ${c.detail}`).join('; ')}`); return; }
              // The run deploys what it uses: the staged VSP (and client) build, installed and recorded.
              const deployed = await ensureHostDrivers(handle, hostPackages(ih.drivers ?? loadHostDrivers(), ih.attach ?? ['loopback']));
              if (!deployed.ok) { out.set(h.name, `preflight: drivers: ${deployed.reason}`); return; }
              if (deployed.updated.length) o.log(`${h.name}: installed the staged ${deployed.updated.join(' and ')} build`);
              drivers.set(h.name, deployed.drivers);
            } catch (e) {
              out.set(h.name, `preflight: cannot reach the host: ${(e as Error).message.split('\n')[0]}`);
            }
          }));
          return out;
        },
      },
      executor: (journal) => new JobPipeline({
        runId, runDir, journal, clock: realClock, real, emulator: emulatorSide(pool), checker: traceChecker(runDir, { guestOs: new Map(loaded.templates.map((t) => [t.name, t.guest.os])) }),
        scenarios: new Map(loaded.scenarios.map((s) => [s.name, s])), jobTimeoutMs: o.jobTimeoutMs, keepFailed: o.keepFailed,
        hostFacts: (host) => facts.get(host), hostDrivers: (host) => drivers.get(host),
      }),
    });
    let chat: string | undefined;
    let published: string | undefined;
    // Index the run in the history (summary.json exists now), for trends and the paragraph.
    const trends = result.summary ? await historyTrends(result.summary, runDir, o.log) : undefined;
    if (result.summary && o.nightly) {
      chat = chatSummary(result.summary, trends, o.publish ? `${o.publish}/${result.summary.runId}/report.html` : join(runDir, 'report.html'));
      await writeFileAtomic(join(runDir, 'summary.txt'), `${chat}\n`);
      if (o.publish) {
        const p = await publishSite(o.publish, { historyPath: defaultHistoryPath(runDir), resultsRoot: root, onWarning: o.log });
        published = p.dest;
      }
    }
    return { plan, runId, runDir, summary: result.summary, outcome: result.outcome, complete: result.complete, chat, published, warnings };
  } finally {
    await pool.close().catch(() => undefined);
    for (const h of shells.values()) await h.ctx.shell.close().catch(() => undefined);
    lock.release();
  }
}

/** The device module (absolute path) whose drivers a host runs: its own, the lab's, or the sample. */
export function hostDevice(h: Pick<LabHost, 'device'>): string {
  return h.device?.path ?? SAMPLE_DEVICE;
}

/**
 * Loads every host's device module and refuses one without a control interface, or
 * without a Linux guest's control file while a Linux template is loaded: exit 2 naming
 * the device, the file and the line.
 */
export async function loadHostDevices(inventory: Inventory, templates: readonly VmTemplate[] = []): Promise<void> {
  for (const h of inventory.hosts) {
    const where = h.device ? { file: inventory.file, line: h.device.line, field: h.device.field } : { file: inventory.file, line: h.source.line };
    const d = await loadDevice(hostDevice(h), where);
    if (!hasTool(d.control)) {
      throw new InputError(`device ${d.name} (${hostDevice(h)}) has no control interface for a real lab${noLabControl(d)}, so host ${h.name} cannot run it`, where, {
        hint: 'give the module a control (src/device-api/device-module.ts DeviceControl), or run the device with bench emulate',
      });
    }
    // The default packages (lab/drivers/packages.yaml) are the sample's drivers.
    if (!h.drivers && hostDevice(h) !== SAMPLE_DEVICE) {
      throw new InputError(`host ${h.name} runs device ${d.name} but names no driver packages, and the default ones are the sample's`, where, {
        hint: 'describe its VSP (and loopback client) in drivers: on the host or in defaults (lab/SETUP.md "Driver packages")',
      });
    }
    const linux = templates.find((t) => t.guest.os === 'linux');
    if (linux && !d.control?.linuxGuest) {
      throw new InputError(`device ${d.name} (${hostDevice(h)}) names no control file for a Linux guest driver (control.linuxGuest), so host ${h.name} cannot run template ${linux.name}`, { file: linux.file, field: 'guest.os' }, {
        hint: 'give the module control.linuxGuest, or leave Linux templates out (--template)',
      });
    }
  }
}

/**
 * The scenario as the job's topology runs it: a loopback job is emulated and checked in
 * the emulator's loopback topology (VSP and client in one partition), a VM job as a VM.
 */
export function inTopology(job: Pick<PlannedJob, 'attach'>, scenario: Scenario): Scenario {
  return job.attach === 'loopback' ? { ...scenario, topology: 'loopback' } : scenario;
}

function emulatorSide(pool: WorkerPool): EmulatorSide {
  return {
    async run(job, scenario, dir) {
      const traceFile = join(dir, 'emulator.jsonl');
      mkdirSync(dir, { recursive: true });
      const r = await pool.run({ kind: 'emulated-job', jobId: job.jobId, scenario: inTopology(job, scenario), seed: job.seed, choices: {}, traceFile });
      return { trace: traceFile, verdict: r.verdict, message: r.message, ms: r.emulatorMs };
    },
  };
}

/**
 * checkTraces on the merged real trace, mapped onto the report's JobResult fields.
 * `propertiesOnly`: the device-independent properties alone (a device the model does not
 * know); every job's result then says what was not checked (`notChecked`).
 */
export function traceChecker(runDir: string, opts: { propertiesOnly?: boolean; guestOs?: ReadonlyMap<string, 'linux' | 'windows'> } = {}): TraceChecker {
  return {
    async check(job, scenario, traces, dir): Promise<CheckOutcome> {
      // A VM's Linux guest driver waits for room where a full ring would have KMCL queue
      // (replay.ts GuestSends); a loopback job's client, and a Windows guest's, are KMCL's.
      const guestSends = job.attach !== 'loopback' && opts.guestOs?.get(job.template) === 'linux' ? 'wait' : 'queue';
      const report = await checkTraces(inTopology(job, scenario), traces, { minimise: true, outDir: dir, propertiesOnly: opts.propertiesOnly, guestSends });
      const r = report.result;
      const notChecked = report.notChecked;
      if (r.verdict === 'pass') return { verdict: 'pass', failedProperties: r.failedProperties.length ? r.failedProperties : undefined, notChecked };
      const fits = report.fitsChoices.map((f) => `${f.key}: ${String(f.value)}`);
      return {
        verdict: r.class === 'hang' ? 'hang' : 'diverge',
        divergenceClass: r.class,
        message: `${r.message}${fits.length ? ` (the trace fits the emulator with ${fits.join(', ')})` : ''}`,
        failedProperties: r.failedProperties,
        firstUnexplained: r.firstUnexplained ? { file: relative(runDir, resolve(r.firstUnexplained.file)), line: r.firstUnexplained.line, event: r.firstUnexplained.event } : undefined,
        expected: r.expected,
        minimizedScenario: report.minimal?.file,
        notChecked,
      };
    },
  };
}

async function historyTrends(summary: RunSummary, runDir: string, log: (l: string) => void): Promise<Trends | undefined> {
  try {
    const opened = await openHistory(defaultHistoryPath(runDir), dirname(runDir));
    try {
      return opened.history.trends(summary);
    } finally {
      opened.history.close();
    }
  } catch (e) {
    log(`the history index could not be updated: ${(e as Error).message}`);
    return undefined;
  }
}

function templateFile(t: string): string {
  if (existsSync(t) && statSync(t).isFile()) return t;
  const named = join('vm-templates', `${t}.yaml`);
  if (existsSync(named)) return named;
  throw new InputError(`no template ${t}`, { field: '--template' }, { hint: 'give a template file, or the name of one in vm-templates/' });
}

async function defaultTemplates(): Promise<string[]> {
  const files = existsSync('vm-templates') ? await readdir('vm-templates') : [];
  return files.filter((f) => f.endsWith('.yaml')).sort().map((f) => join('vm-templates', f));
}

export function defaultRunId(lab: string, now = new Date()): string {
  // To the second: two runs started in the same minute must not share a directory.
  const stamp = now.toISOString().slice(0, 19).replace(/:/g, '');
  return `${stamp}-${lab.replace(/[^A-Za-z0-9._-]/g, '_')}`.slice(0, 64);
}

/** The commit the driver sources are at, when they are in a git checkout (for the results). */
async function gitCommit(dir: string): Promise<string | undefined> {
  try {
    const r = await execa('git', ['-C', dir, 'rev-parse', 'HEAD'], { reject: false, timeout: 10_000 });
    return r.exitCode === 0 && /^[0-9a-f]{40}$/.test(r.stdout.trim()) ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}
