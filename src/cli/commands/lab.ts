// `bench lab check|probe|cleanup --lab LAB.yaml`: preflight of every host, first contact with
// one (src/run/real/probe.ts), and the sweep of the
// VMs the bench left behind (only VMs whose Notes carry the bench's run tag).
//
// Environment, read here once:
//   BENCH_PWSH             program for `transport: local` hosts (default: the host's shell)
//   BENCH_REMOTE_PWSH      program SSH hosts start (default: the host's shell, pwsh or powershell)
//   BENCH_CONTROL_TOOL     the sample's control tool on the host, for `lab probe` (default: its module's control.tool.program)
//   BENCH_HYPERV_MODULE    a module to import before Hyper-V cmdlets; for the stand-in
//                          Hyper-V module in tests, never set against real hosts
// Exit: 0 all checks passed / nothing failed; 1 a check failed; 3 a host could not be
// reached or a VM could not be removed.

import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import { sweep, benchVms, type CleanupOutcome } from '../../lab/cleanup.ts';
import { openHyperV, type ConnectConfig } from '../../lab/host-connect.ts';
import type { HyperV } from '../../lab/hyperv.ts';
import { loadInventory, type LabHost } from '../../lab/inventory.ts';
import { formatCheck, preflightHost, type CheckResult } from '../../lab/preflight.ts';
import { redact } from '../../lab/secrets.ts';
import { loadTemplate } from '../../lab/template.ts';
import { realClock } from '../../run/engine/job-pipeline.ts';
import { runProbe } from '../../run/real/probe.ts';
import { loadHostDevices } from '../../run/real/lab-run.ts';

function connectConfig(env: NodeJS.ProcessEnv): ConnectConfig {
  return {
    localPwsh: env.BENCH_PWSH || undefined,
    remoteCommand: env.BENCH_REMOTE_PWSH || undefined,
    modules: env.BENCH_HYPERV_MODULE ? [env.BENCH_HYPERV_MODULE] : [],
    queryTimeoutMs: 60_000,
  };
}

async function withHosts<T>(hosts: LabHost[], cfg: ConnectConfig, body: (host: LabHost, hv: HyperV) => Promise<T>): Promise<T[]> {
  // Hosts are checked in parallel: they are independent machines.
  return Promise.all(hosts.map(async (h) => {
    const hv = await openHyperV(h, cfg);
    try {
      return await body(h, hv);
    } finally {
      await hv.ctx.shell.close();
    }
  }));
}

export function registerLab(program: Command): void {
  const lab = program.command('lab').description('check the lab hosts, or sweep VMs the bench left on them');

  lab.command('check')
    .description('preflight every host: reachable, Hyper-V module, switch, migration, free memory and disk, parent disks, test signing')
    .requiredOption('--lab <file>', 'lab inventory (lab/*.yaml)')
    .option('--template <file...>', 'VM templates whose parent disks must be on the hosts')
    .option('--min-free-disk-gb <n>', 'free disk the VM root drive needs', '50')
    .option('--json', 'print one JSON document')
    .action(async (o: { lab: string; template?: string[]; minFreeDiskGb: string; json?: boolean }) => {
      const minFree = Number(o.minFreeDiskGb);
      if (!Number.isFinite(minFree) || minFree < 0) throw new InputError(`--min-free-disk-gb must be a number of GB, got ${JSON.stringify(o.minFreeDiskGb)}`, { field: '--min-free-disk-gb' });
      const inventory = await loadInventory(o.lab);
      const templates = await Promise.all((o.template ?? []).map((t) => loadTemplate(t)));
      // Each host's device module too: one a real lab cannot drive is an exit 2 here, before any host is reached.
      await loadHostDevices(inventory, templates);
      const parents = [...new Set(templates.map((t) => t.parentDisk))];
      const perHost = await withHosts(inventory.hosts, connectConfig(process.env), (h, hv) => preflightHost({
        name: h.name, hv, switchName: h.switchName, vmRoot: h.vmRoot, memoryMB: h.capacity.memoryMB,
        migrationPartner: h.migrationPartner, parentDisks: parents, minFreeDiskGB: minFree,
      }));
      const checks: CheckResult[] = perHost.flat().map((c) => ({ ...c, detail: redact(c.detail) }));
      const unreachable = checks.some((c) => c.check === 'reachable' && c.status === 'fail');
      const failed = checks.filter((c) => c.status === 'fail').length;
      const passed = checks.filter((c) => c.status === 'pass').length;
      // Checks that never ran (their host was unreachable) are neither passed nor failed.
      const notRun = checks.length - passed - failed;
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ lab: inventory.name, ok: failed === 0 && notRun === 0, counts: { passed, failed, notRun }, checks })}\n`);
      } else {
        const widths = { host: Math.max(...checks.map((c) => c.host.length)), check: Math.max(...checks.map((c) => c.check.length)) };
        for (const c of checks) process.stdout.write(`${formatCheck(c, widths)}\n`);
        const down = [...new Set(checks.filter((c) => c.status !== 'pass' && c.status !== 'fail').map((c) => c.host))];
        process.stdout.write(`${passed} passed, ${failed} failed, ${notRun} not run${notRun > 0 ? ` (${down.join(', ')} not reachable)` : ''}, of ${checks.length} checks\n`);
      }
      process.exitCode = unreachable ? 3 : failed > 0 ? 1 : 0;
    });

  lab.command('probe')
    .description('first contact with a host: experiments that answer the open questions (loopback binding, restore with the client open, documented-gap choices); writes probe.json and probe.md')
    .requiredOption('--lab <file>', 'lab inventory (lab/*.yaml)')
    .option('--host <name>', 'the host to probe (default: the first)')
    .option('--out <dir>', 'where probe.json and probe.md go', 'results/probe')
    .option('--scenario <file...>', 'scenarios run as loopback jobs for the documented-gap choices (default bench/scenarios)')
    .option('--json', 'print one JSON document')
    .action(async (o: { lab: string; host?: string; out: string; scenario?: string[]; json?: boolean }) => {
      const { report, files } = await runProbe({
        lab: o.lab, host: o.host, out: o.out, scenarios: o.scenario ?? [], connect: connectConfig(process.env),
        controlTool: process.env.BENCH_CONTROL_TOOL || undefined, clock: realClock,
      });
      if (o.json) process.stdout.write(`${JSON.stringify({ ...report, files })}\n`);
      else {
        for (const f of report.findings) process.stdout.write(`${f.status.padEnd(11)} ${f.title}: ${redact(f.detail)}\n`);
        process.stdout.write(`findings: ${files.json}, ${files.markdown}\n`);
      }
      // Findings are answers, not failures; only a host that cannot be reached is one.
      process.exitCode = report.findings[0]?.status === 'pass' ? 0 : 3;
    });

  lab.command('cleanup')
    .description('remove the VMs (and disks) that bench runs left on the hosts; VMs without the bench\'s run tag are never touched')
    .requiredOption('--lab <file>', 'lab inventory (lab/*.yaml)')
    .option('--run <id>', 'only this run\'s VMs')
    .option('--except-run <id>', 'every bench VM but this run\'s (a run in progress)')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--json', 'print one JSON document')
    .action(async (o: { lab: string; run?: string; exceptRun?: string; dryRun?: boolean; json?: boolean }) => {
      if (o.run !== undefined && o.exceptRun !== undefined) throw new InputError('give --run or --except-run, not both', { field: '--run' });
      const inventory = await loadInventory(o.lab);
      const filter = { runId: o.run, exceptRunId: o.exceptRun };
      const outcomes: Array<CleanupOutcome & { error?: string }> = await withHosts(inventory.hosts, connectConfig(process.env), async (h, hv) => {
        try {
          if (o.dryRun) {
            const { ours, others } = await benchVms(hv, filter);
            return { host: h.name, removed: ours.map((v) => ({ id: v.id, name: v.name, state: v.state, runId: v.runId })), failed: [], untouched: others };
          }
          return await sweep(hv, filter);
        } catch (e) {
          return { host: h.name, removed: [], failed: [], untouched: 0, error: redact(e instanceof Error ? e.message : String(e)) };
        }
      });
      const bad = outcomes.some((x) => x.error !== undefined || x.failed.length > 0);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ lab: inventory.name, dryRun: Boolean(o.dryRun), hosts: outcomes })}\n`);
      } else {
        const verb = o.dryRun ? 'would remove' : 'removed';
        for (const x of outcomes) {
          if (x.error) {
            // A host that could not be cleaned is a failure, and its line says so (its counts are unknown).
            process.stdout.write(`FAIL ${x.host}: ${x.error.split('\n')[0]}\n`);
            process.stdout.write(`${x.host}: not cleaned up (the error above); its VMs are unknown\n`);
            continue;
          }
          for (const v of x.removed) process.stdout.write(`${verb} ${x.host} ${v.name} ${v.id} (run ${v.runId}, was ${v.state})\n`);
          for (const v of x.failed) process.stdout.write(`FAIL ${x.host} ${v.name} ${v.id}: ${redact(v.error).split('\n')[0]}\n`);
          process.stdout.write(`${x.host}: ${x.removed.length} ${verb}, ${x.failed.length} failed, ${x.untouched} other VMs left alone\n`);
        }
        const hostsFailed = outcomes.filter((x) => x.error !== undefined).length;
        const vmsFailed = outcomes.reduce((n, x) => n + x.failed.length, 0);
        const removed = outcomes.reduce((n, x) => n + x.removed.length, 0);
        process.stdout.write(`${removed} ${verb}, ${vmsFailed} VM(s) failed, ${hostsFailed} host(s) failed, of ${outcomes.length} host(s)\n`);
      }
      process.exitCode = bad ? 3 : 0;
    });
}
