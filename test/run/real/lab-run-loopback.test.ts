// `bench run` on a lab whose one host offers only loopback, end to end on the Hyper-V
// stand-in: preflight reads the host facts and deploys the staged VSP and client (pnputil,
// real files hashed by the real Get-FileHash), the loopback job runs on the real C VSP and
// Windows client on the emulator (support/c-loopback.ts) and is checked against the
// emulator's loopback topology on a worker thread, and what loopback cannot run (a host
// send into paused channels, every VM template on a host without a handle broker) is
// skipped with its reason. summary.json carries the host facts and the driver builds.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPackages } from '../../../src/lab/deploy-drivers.ts';
import { loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { loadTemplates } from '../../../src/lab/template.ts';
import type { RunSummary } from '../../../src/report/summary.ts';
import { runLab } from '../../../src/run/real/lab-run.ts';
import { loopbackJobLab } from '../../../src/run/real/loopback-lab.ts';
import { pwsh, pwshLabel, standinModule } from '../../lab/host/find-pwsh.ts';
import { disposeHost, hostFileSha256, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from '../../lab/host/standin.ts';
import { cLoopbackDrivers } from './support/c-loopback.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe.skipIf(!pwsh || !toolchain)(`a loopback lab run on the stand-in ${pwshLabel}`, { timeout: 600_000 }, () => {
  let a: StandinHost;
  const saved = process.env.BENCH_HYPERV_STATE;
  beforeAll(() => {
    a = newStandinHost('hv-a');
    // The run's own sessions to the host find its state here (a local transport inherits it).
    process.env.BENCH_HYPERV_STATE = a.dir;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.BENCH_HYPERV_STATE;
    else process.env.BENCH_HYPERV_STATE = saved;
    await disposeHost(a);
  });

  it('deploys the drivers, runs and checks the loopback job, skips what loopback cannot run, and records the host facts', async () => {
    const pkgs = hostPackages(loadHostDrivers(), ['loopback']);
    const parents = (await loadTemplates('vm-templates')).map((t) => t.parentDisk);
    await a.setup('Initialize-StandinHost', { Name: 'hv-a', Switches: [SWITCH], TestSigning: true, Files: [PARENT, ...parents, ...pkgs.map((p) => p.sys.replace(/\.sys$/, '.inf'))], OsBuild: '26100', Ubr: 4061 });
    for (const p of pkgs) await a.setup('Add-StandinFile', { Path: p.sys, Version: '1.0.0.7', Build: p.name });
    const work = mkdtempSync(join(tmpdir(), 'lab-run-loopback-'));
    const lab = join(work, 'lab.yaml');
    writeFileSync(lab, [
      'version: 1', 'name: loopback-lab', 'hosts:',
      `  - { name: hv-a, transport: local, build: '26100.2314', vmRoot: '${VM_ROOT}', switch: ${SWITCH}, capacity: { vmSlots: 2, memoryMB: 8192 } }`, '',
    ].join('\n'));
    const log: string[] = [];
    const r = await runLab({
      lab, templates: [], scenarios: ['bench/scenarios/02-inflight-host-transactions.yaml', 'bench/scenarios/07-pause-resume.yaml'],
      out: join(work, 'results'), resume: false, dryRun: false, keepFailed: false, nightly: false,
      connect: { localPwsh: pwsh!.path, modules: [standinModule], queryTimeoutMs: 60_000 }, jobTimeoutMs: 300_000,
      log: (l) => log.push(l), driversDir: 'lab/drivers', controlTool: 'sample-ctl',
      // The host's control tool stands for drivers the stand-in does not run: the C drivers do.
      loopbackLab: (o, s) => {
        const c = cLoopbackDrivers(s);
        return loopbackJobLab({ host: o.host, clock: c.clock, control: o.control }, c.drivers);
      },
    });
    expect(r.complete, log.join('\n')).toBe(true);
    const summary = JSON.parse(readFileSync(join(r.runDir!, 'summary.json'), 'utf8')) as RunSummary;
    const byId = new Map(summary.jobs.map((j) => [j.jobId, j]));
    const ran = byId.get('inflight-host-transactions+loopback@hv-a=1')!;
    expect(ran, JSON.stringify(ran)).toMatchObject({ verdict: 'pass' });
    // The skipped: 07 sends from the host while paused; no VM job has a handle broker here.
    expect(byId.get('pause-resume+loopback@hv-a=1')).toMatchObject({ verdict: 'skipped' });
    expect(JSON.stringify(byId.get('pause-resume+loopback@hv-a=1'))).toMatch(/sends from the host while the channels are paused/);
    // A job skipped before it starts records the build read from the host too, as the console line shows it.
    expect(byId.get('pause-resume+loopback@hv-a=1')).toMatchObject({ hostBuild: '26100.4061', hostFacts: { osBuild: '26100.4061', label: '26100.2314' } });
    const vmJobs = summary.jobs.filter((j) => !j.jobId.includes('+loopback@'));
    expect(vmJobs.length).toBeGreaterThan(0);
    expect(vmJobs.every((j) => j.verdict === 'skipped')).toBe(true);
    // Host facts read from the host, the label's mismatch said; the drivers the run installed.
    expect(ran.hostFacts).toMatchObject({ osBuild: '26100.4061', hypervVersion: '10.0.26100.4061', kmclVersion: '10.0.26100.4061', label: '26100.2314' });
    expect(ran.hostFacts?.warning).toMatch(/inventory says build 26100\.2314, the host runs 26100\.4061/);
    expect(ran.drivers).toEqual([
      { name: 'vsp', where: 'host', sha256: hostFileSha256(a, pkgs[0]!.sys), fileVersion: '1.0.0.7', sourceCommit: undefined },
      { name: 'client', where: 'host', sha256: hostFileSha256(a, pkgs[1]!.sys), fileVersion: '1.0.0.7', sourceCommit: undefined },
    ]);
    expect((await a.state()).Drivers).toHaveLength(2);
    // The report shows the build it read beside the label.
    const html = readFileSync(join(r.runDir!, 'report.html'), 'utf8');
    expect(html).toContain('26100.4061');
    expect(ran.hostBuild).toBe('26100.4061');
  });
});
