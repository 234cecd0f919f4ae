// `bench lab probe` (src/run/real/probe.ts) against the Hyper-V stand-in and its model of
// the sample drivers (test/lab/standin/HyperVStandin/ControlTools.ps1, its rescind teardown
// order one of the settings a test gives, as the others): every question gets
// an answer with what it means, each answer follows what the host does, the documented-gap
// choices are read from loopback jobs' traces through the checker's search, and the
// command writes probe.json and probe.md.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPackages } from '../../../src/lab/deploy-drivers.ts';
import { loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import type { LabHost } from '../../../src/lab/inventory.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';
import { probeHost, probeMarkdown, type ProbeReport } from '../../../src/run/real/probe.ts';
import { sampleControl } from '../../../devices/sample/control.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { DEFAULT_CHOICES, GAP_CHOICES } from '../../../src/vmbus/choices.ts';
import { pwsh, pwshLabel, standinModule } from '../../lab/host/find-pwsh.ts';
import { disposeHost, hostFile, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from '../../lab/host/standin.ts';
import { emulatorLoopbackDrivers } from './support/emulator-lab.ts';
import { cLoopbackDrivers } from './support/c-loopback.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

const pkgs = hostPackages(loadHostDrivers(), ['loopback']);
// The probe makes each loopback job's work folder under vmRoot (New-Item), and the tools
// write their traces there. Here a local folder (a path on no drive); the command-line
// test below uses the inventory's D:\bench\vms, the stand-in's D: drive.
const PROBE_ROOT = mkdtempSync(join(tmpdir(), 'probe-root-'));
const labHost: LabHost = { name: 'hv-a', transport: { kind: 'local' }, shell: 'pwsh', vmRoot: PROBE_ROOT, switchName: SWITCH, migrationPartner: undefined, capacity: { vmSlots: 2, memoryMB: 8192 }, build: '26100', attach: ['loopback'], source: { file: 'lab.yaml', line: 1 } };
const status = (r: ProbeReport) => Object.fromEntries(r.findings.map((f) => [f.id, f.status]));

describe.skipIf(!pwsh)(`bench lab probe on the stand-in ${pwshLabel}`, { timeout: 180_000 }, () => {
  let a: StandinHost;
  let hv: HyperV;
  beforeAll(() => {
    a = newStandinHost('hv-a');
    hv = new HyperV(a.ctx);
  });
  afterAll(async () => disposeHost(a));

  async function init(testSigning = true, drivers: Record<string, string | boolean> = {}) {
    await a.setup('Initialize-StandinHost', { Name: 'hv-a', Switches: [SWITCH], TestSigning: testSigning, Files: [PARENT, ...pkgs.map((p) => p.sys.replace(/\.sys$/, '.inf'))] });
    for (const [i, p] of pkgs.entries()) await a.setup('Add-StandinFile', { Path: p.sys, Version: '1.0.0.1', Build: String(i + 1) });
    await a.setup('Set-StandinSampleDrivers', drivers);
  }
  const probe = (scenarios: Parameters<typeof probeHost>[0]['scenarios'] = []) => probeHost({ hv, host: labHost, control: sampleControl, program: 'sample-ctl', clock: realClock, scenarios, waitMs: 2000, drivers: undefined });

  it('answers every question on a host where loopback works, and reads the gap choices from loopback jobs\' traces', async () => {
    await init();
    const scenarios = await Promise.all(['02-inflight-host-transactions', '03-ring-full-library-queue', '10-quota-and-deferral'].map((f) => loadScenarioFile(`bench/scenarios/${f}.yaml`)));
    // The gap-choice jobs' drivers answer with an emulator trace of the same scenario (default choices).
    const report = await probeHost({
      hv, host: labHost, control: sampleControl, program: 'sample-ctl', clock: realClock, scenarios, waitMs: 2000,
      // The probe hands each scenario over in the loopback topology; the emulator runs it so.
      drivers: (_o, s) => { expect(s.topology).toBe('loopback'); const sink = new MemorySink(); executeScenario(s, { seed: s.seed ?? 1, sink }); return emulatorLoopbackDrivers(sink.events, []); },
    });
    expect(status(report)).toMatchObject({
      shell: 'pass', 'test-signing': 'pass', 'vsp-loads': 'pass', 'loopback-offer': 'pass', 'client-binds': 'pass',
      traffic: 'pass', 'save-continue': 'pass', 'restore-open': 'pass', 'force-new-channel': 'pass', 'rescind-order': 'pass',
    });
    expect(report.findings.find((f) => f.id === 'force-new-channel')!.detail).toMatch(/the client kept its channel across the restore/);
    // The model's default teardown is the bench's own order: the race is not seen.
    expect(report.findings.find((f) => f.id === 'rescind-order')!.meaning).toMatch(/^the removal race modelled by cGuestRemovalRace was not seen here/);
    expect(report.facts).toEqual({ osBuild: '26100.2314', hypervVersion: '10.0.26100.2314', kmclVersion: '10.0.26100.2314' });
    const choices = report.findings.filter((f) => f.id.startsWith('choice:'));
    expect(choices.map((f) => f.id)).toEqual(GAP_CHOICES.map((c) => `choice:${c.key}`));
    // A trace made with the default choices never fits only another option, and never none.
    expect(choices.filter((f) => f.status === 'fail')).toEqual([]);
    for (const f of choices.filter((x) => x.status === 'pass')) {
      const key = f.id.slice('choice:'.length) as keyof typeof DEFAULT_CHOICES;
      expect(f.detail).toContain(`the host shows ${String(DEFAULT_CHOICES[key])}`);
    }
    for (const f of report.findings) expect(f.meaning.length).toBeGreaterThan(10);
    expect(probeMarkdown(report)).toMatch(/^# bench lab probe: hv-a\n[\s\S]*\| the client binds in the host \| pass \|/);
  });

  it.skipIf(!toolchain)('reads the gap choices from loopback jobs run on the C VSP and client on the emulator', async () => {
    await init();
    const scenarios = await Promise.all(['02-inflight-host-transactions', '10-quota-and-deferral'].map((f) => loadScenarioFile(`bench/scenarios/${f}.yaml`)));
    const report = await probeHost({
      hv, host: labHost, control: sampleControl, program: 'sample-ctl', clock: realClock, scenarios, waitMs: 2000,
      drivers: (_o, s) => { const c = cLoopbackDrivers(s); return { ...c.drivers, clock: c.clock }; },
    });
    const choices = report.findings.filter((f) => f.id.startsWith('choice:'));
    // The jobs ran to the end and were searched: no choice is left "no scenario ran".
    expect(choices.filter((f) => /no scenario ran/.test(f.detail))).toEqual([]);
    // The emulator's KMCL (the C drivers' kernel shim) runs the default choices: the traces never contradict them.
    expect(choices.filter((f) => f.status === 'fail')).toEqual([]);
    for (const f of choices.filter((x) => x.status === 'pass')) {
      const key = f.id.slice('choice:'.length) as keyof typeof DEFAULT_CHOICES;
      expect(f.detail).toContain(`the host shows ${String(DEFAULT_CHOICES[key])}`);
    }
  });

  it('says so when the client does not bind, and does not try what depends on it', async () => {
    await init(true, { ClientBinds: false });
    const r = await probe();
    expect(status(r)).toMatchObject({ 'loopback-offer': 'pass', 'client-binds': 'fail', traffic: 'unsupported', 'restore-open': 'unsupported', 'rescind-order': 'unsupported' });
    expect(r.findings.find((f) => f.id === 'client-binds')!.meaning).toMatch(/loopback jobs cannot run here/);
  });

  it('tells a refused restore with the client open, a refused loopback offer, and test signing off apart', async () => {
    await init(true, { RestoreWithClientOpen: 'fail' });
    let r = await probe();
    expect(status(r)).toMatchObject({ traffic: 'pass', 'save-continue': 'pass', 'restore-open': 'fail' });
    expect(r.findings.find((f) => f.id === 'restore-open')!.detail).toMatch(/STATUS_INVALID_DEVICE_STATE/);
    await init(true, { LoopbackOffer: 'refused' });
    r = await probe();
    expect(status(r)).toMatchObject({ 'vsp-loads': 'pass', 'loopback-offer': 'unsupported', 'client-binds': 'unsupported' });
    expect(r.findings.find((f) => f.id === 'loopback-offer')!.meaning).toMatch(/only attach vm-handle/);
    await init(false);
    r = await probe();
    expect(status(r)).toMatchObject({ shell: 'pass', 'test-signing': 'fail', 'vsp-loads': 'unsupported' });
  });

  it('runs the FORCE_NEW_CHANNEL experiment: a client that gets a new channel, and a host that refuses the flag', async () => {
    await init(true, { ForceNewChannel: 'new-channel' });
    let r = await probe();
    expect(status(r)).toMatchObject({ 'restore-open': 'pass', 'force-new-channel': 'pass' });
    expect(r.findings.find((f) => f.id === 'force-new-channel')!.detail).toMatch(/the client got a new channel at the restore \(its counters started again\), and traffic flows after/);
    await init(true, { ForceNewChannel: 'refused' });
    r = await probe();
    expect(status(r)).toMatchObject({ 'restore-open': 'pass', 'force-new-channel': 'fail' });
    expect(r.findings.find((f) => f.id === 'force-new-channel')!.detail).toMatch(/the offer with the flag was refused/);
    // Without traffic, the experiment is not tried.
    await init(true, { ClientBinds: false });
    expect(status(await probe())).toMatchObject({ 'force-new-channel': 'unsupported' });
  });

  it('reads the rescind teardown order from the model\'s drivers: KMCL closing the client first makes the race possible, PnP removing it first does not show it', async () => {
    const rescind = async (order: 'kmcl-first' | 'removal-first') => {
      await init(true, { RescindTeardown: order });
      return (await probe()).findings.find((f) => f.id === 'rescind-order')!;
    };
    let f = await rescind('kmcl-first');
    expect(f.status, f.detail).toBe('pass');
    // The four host transactions the client held when the offer went are cancelled by the VSP's disable.
    expect(f.detail).toMatch(/the VSP traced its end Closed, seq \d+, and 4 host transactions cancelled\), the client traced Paused \(seq \d+\), Closed \(seq \d+\)/);
    expect(f.detail).toMatch(/KMCL closed the client before PnP removed its device \(closed_outside_removal 0 -> 1\)/);
    expect(f.detail).toMatch(/its device was last listed at trace seq \d+, after its Closed/);
    expect(f.detail).toMatch(/"send 1 64 0 0 ch=32259" sent right after the rescind was refused with STATUS_INVALID_DEVICE_STATE/);
    expect(f.meaning).toMatch(/^the removal race modelled by cGuestRemovalRace is possible here/);
    f = await rescind('removal-first');
    expect(f.status, f.detail).toBe('pass');
    expect(f.detail).toMatch(/the client was closed inside its device's removal \(closed_outside_removal stayed 0\); no counters read after the rescind listed its device/);
    expect(f.detail).toMatch(/was refused with STATUS_NOT_FOUND: the device was gone already/);
    expect(f.meaning).toMatch(/^the removal race modelled by cGuestRemovalRace was not seen here/);
    // The channels the experiment opened are given back: the client's control device went with its last device.
    const log = ((await a.state()) as unknown as { SampleDriversLog: string[] }).SampleDriversLog;
    expect(log.slice(-2)).toEqual(['vsp command close ch=32259', 'vsp command close ch=32258']);
  });

  it('`bench lab probe` writes probe.json and probe.md', async () => {
    await init();
    const work = mkdtempSync(join(tmpdir(), 'probe-cli-'));
    const lab = join(work, 'lab.yaml');
    // An inventory's vmRoot must be a Windows path (the loader refuses others): D:\bench\vms,
    // on the stand-in's D: drive (a PSDrive over a folder of its state). The probe makes its
    // work folders there with New-Item, the tool writes its traces there, and the bench
    // reads them back through .NET with the path resolved by the session (readHostFile).
    writeFileSync(lab, ['version: 1', 'name: standin-lab', 'hosts:', `  - { name: hv-a, transport: local, vmRoot: '${VM_ROOT}', switch: ${SWITCH}, capacity: { vmSlots: 2, memoryMB: 8192 } }`, ''].join('\n'));
    const out = join(work, 'probe');
    const env = { ...process.env, BENCH_PWSH: pwsh!.path, BENCH_HYPERV_MODULE: standinModule, BENCH_HYPERV_STATE: a.dir, BENCH_CONTROL_TOOL: 'sample-ctl', TERM: 'dumb' };
    const r = await promisify(execFile)(process.execPath, [resolve('bin/bench.js'), 'lab', 'probe', '--lab', lab, '--out', out, '--scenario', 'bench/scenarios/01-idle-save-restore.yaml', '--json'], { env, timeout: 120_000 }).catch((e: Error & { stderr?: string; stdout?: string }) => { throw new Error(`${e.message}\n${e.stderr ?? ''}\n${(e.stdout ?? '').slice(0, 2000)}`); });
    const doc = JSON.parse(r.stdout) as ProbeReport & { files: { json: string; markdown: string } };
    expect(status(doc)).toMatchObject({ shell: 'pass', 'client-binds': 'pass', 'restore-open': 'pass', 'rescind-order': 'pass' });
    // The experiment's verdict, from the traces read back from D: (not "Cannot find drive D").
    const rescind = doc.findings.find((f) => f.id === 'rescind-order')!;
    expect(rescind.meaning).toMatch(/^the removal race modelled by cGuestRemovalRace was not seen here/);
    expect(rescind.detail).toMatch(/the client was closed inside its device's removal/);
    // The traces are where the inventory put them: under vmRoot on the host's D:.
    expect(existsSync(hostFile(a, `${VM_ROOT}\\probe-rescind-order\\client.jsonl`))).toBe(true);
    expect(JSON.parse(readFileSync(doc.files.json, 'utf8'))).toEqual({ version: 1, host: doc.host, at: doc.at, facts: doc.facts, findings: doc.findings });
    expect(existsSync(join(out, 'probe.md'))).toBe(true);
  });
});
