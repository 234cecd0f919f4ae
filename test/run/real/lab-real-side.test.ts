// The lab's real side with the real src/lab classes on the Hyper-V stand-in (a real
// PowerShell engine running the stand-in cmdlets): a guest that cannot be reached makes
// provisioning fail; the VM and its differencing disk are removed each time, the attempt
// is retried, and the job ends as an error that says why, with nothing left on the host.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../../src/errors.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import type { LabHost } from '../../../src/lab/inventory.ts';
import type { VmTemplate } from '../../../src/lab/template.ts';
import { runEngine } from '../../../src/run/engine/engine.ts';
import { JobPipeline, realClock } from '../../../src/run/engine/job-pipeline.ts';
import { readJournal } from '../../../src/run/engine/journal.ts';
import { LabRealSide, type LabRealSideOptions } from '../../../src/run/real/lab-real-side.ts';
import { consoleFingerprints, preferredPin } from '../../../src/run/real/console-host-key.ts';
import { makePlan } from '../../../src/run/engine/plan.ts';
import { DEFAULT_REAL_JOB } from '../../../src/run/real/real-job.ts';
import type { Scenario } from '../../../src/scenario/model.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from '../../lab/host/standin.ts';
import { loadTemplate } from '../../../src/lab/template.ts';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { hostContext } from '../../../src/lab/hyperv-vm.ts';
import type { PlannedJob } from '../../../src/run/engine/plan.ts';
import type { WindowsGuest } from '../../../src/lab/deploy-guest-windows.ts';

/** The sample guest driver, as its VM template describes it. */
const SAMPLE_GUEST_PACKAGE = (await loadTemplate('vm-templates/ubuntu-2404.yaml')).guest.driver;

const reason = pwsh ? undefined : 'no PowerShell';
const ED = 'SHA256:Xh1vNqP9u3mS5dZ0Lk2Jr8Wq4Ty7Ub6Ic1Od0Pe9Fab';
const RSA = 'SHA256:k9QwErTyUiOpAsDfGhJkLzXcVbNm1234567890abcde';
const CONSOLE = [
  '[    3.101] systemd[1]: Started cloud-init.service.',
  '<14>Nov 24 03:00:01 cloud-init: #############################################################',
  '<14>Nov 24 03:00:01 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
  `<14>Nov 24 03:00:01 cloud-init: 3072 ${RSA} root@ubuntu (RSA)`,
  `<14>Nov 24 03:00:01 cloud-init: 256 ${ED} root@ubuntu (ED25519)`,
  '<14>Nov 24 03:00:01 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----',
  '',
].join('\r\n');

describe('host key from the serial console', () => {
  it('takes the last complete fingerprint block and pins the ED25519 key', () => {
    expect(consoleFingerprints(CONSOLE)).toEqual([{ sha256: RSA, type: 'RSA' }, { sha256: ED, type: 'ED25519' }]);
    expect(preferredPin(consoleFingerprints(CONSOLE))).toEqual({ kind: 'fingerprint', sha256: ED });
    const rebooted = CONSOLE + CONSOLE.replace(ED, 'SHA256:' + 'N'.repeat(43));
    expect(preferredPin(consoleFingerprints(rebooted))).toEqual({ kind: 'fingerprint', sha256: 'SHA256:' + 'N'.repeat(43) });
  });

  it('ignores a block still being written, and lines outside a block', () => {
    const cut = CONSOLE.split('-----END')[0]!;
    expect(consoleFingerprints(cut)).toEqual([]);
    expect(consoleFingerprints(`256 ${ED} root@x (ED25519)`)).toEqual([]);
    expect(preferredPin([{ type: 'DSA', sha256: ED }])).toBeUndefined();
  });
});
const scenario: Scenario = { name: 'idle', channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'host-a', choices: {}, steps: [{ op: 'save' }, { op: 'restore' }] };
const pinnedTemplate: VmTemplate = {
  file: 'ubuntu.yaml', name: 'ubuntu', parentDisk: PARENT, generation: 2, memoryMB: 2048, processors: 2, secureBoot: false,
  guest: { os: 'linux', osName: 'Ubuntu 24.04', driver: SAMPLE_GUEST_PACKAGE, user: 'bench', credential: { kind: 'key', key: { kind: 'env', name: 'UNUSED' } }, hostKey: { kind: 'fingerprint', sha256: 'SHA256:3bHq0j0nT5n0c1Zf2G6eXb1mJ4qk2vT9w8yR7uL5sPo' }, sshPort: 22 },
  provisioning: { kind: 'cloud-init', file: 'user-data.yaml' },
};
const template = pinnedTemplate;
const labHost: LabHost = { name: 'hv-a', transport: { kind: 'local' }, shell: 'pwsh', vmRoot: VM_ROOT, switchName: SWITCH, migrationPartner: undefined, capacity: { vmSlots: 2, memoryMB: 8192 }, build: '26100', source: { file: 'lab.yaml', line: 1 } };

describe.skipIf(reason)(`the lab's real side on the Hyper-V stand-in ${reason ? `(skipped: ${reason})` : pwshLabel}`, { timeout: 120_000 }, () => {
  let host: StandinHost;
  beforeAll(async () => {
    host = newStandinHost('hv-a');
    await initHost(host, {});
  });
  afterAll(async () => disposeHost(host));

  it('removes every VM it provisioned when the guest cannot be reached, retries, and ends the job as an error', async () => {
    const hv = new HyperV(host.ctx, { provisionMs: 30_000, startMs: 30_000, guestReadyMs: 30_000, stopMs: 30_000 });
    const connects: string[] = [];
    const vmsAtConnect: number[] = [];
    const real = new LabRealSide({
      runId: 'r1', hosts: new Map([['hv-a', labHost]]), hv: () => hv, templates: new Map([['ubuntu', template]]),
      controlTool: 'sample-ctl', clock: realClock, realJob: DEFAULT_REAL_JOB,
      connectGuest: async (e) => { connects.push(e.host); vmsAtConnect.push((await host.state()).Vms.length); throw new InfraError(`ssh ${e.host}:22: connect ECONNREFUSED`); },
    });
    const plan = makePlan({ lab: 'standin', hosts: [{ name: 'hv-a', build: '26100', migrationPartner: undefined, capacity: labHost.capacity }], templates: [template], scenarios: [scenario] });
    const runDir = join(mkdtempSync(join(tmpdir(), 'lab-real-side-')), 'r1');
    const r = await runEngine({
      runId: 'r1', runDir, plan, resume: false, hosts: [{ name: 'hv-a', build: '26100', capacity: labHost.capacity, partner: undefined }],
      scheduler: { maxAttempts: 2 },
      hooks: { sweepHost: (h, keep) => real.sweepHost(h, keep) },
      executor: (journal) => new JobPipeline({
        runId: 'r1', runDir, journal, clock: realClock, real, jobTimeoutMs: 60_000, keepFailed: false, scenarios: new Map([['idle', scenario]]),
        emulator: { run: async () => ({ trace: 'emulator.jsonl', verdict: 'pass', ms: 1 }) },
        checker: { check: async () => ({ verdict: 'pass' }) },
      }),
    });
    expect(r.summary!.jobs).toEqual([expect.objectContaining({ verdict: 'error', attempts: 2, message: expect.stringMatching(/ECONNREFUSED/) })]);
    expect(connects).toHaveLength(2);
    // The first attempt's VM was gone before the second was made: one VM on the host each time.
    expect(vmsAtConnect).toEqual([1, 1]);
    for (const ip of connects) expect(ip).toMatch(/^192\.168\.77\.\d+$/);
    const state = await host.state();
    expect(state.Vms).toEqual([]);
    expect(state.Files.filter((f) => f !== PARENT)).toEqual([]);
    const recs = readJournal(join(runDir, 'journal.jsonl')).records;
    expect(recs.filter((x) => x.t === 'vm')).toHaveLength(2);
    expect(recs.filter((x) => x.t === 'vm-gone')).toHaveLength(2);
  });

  it('installs a Windows template\'s driver package in its guest (PowerShell, files as base64) before the base checkpoint, records its build, and closes the guest at removal', async () => {
    const hv = new HyperV(host.ctx, { provisionMs: 30_000, startMs: 30_000, guestReadyMs: 30_000, stopMs: 30_000 });
    const work = mkdtempSync(join(tmpdir(), 'win-template-'));
    mkdirSync(join(work, 'package'));
    const sys = Buffer.from('MZ the sample guest driver, build 7');
    writeFileSync(join(work, 'package', 'vmbus_sample_guest.sys'), sys);
    writeFileSync(join(work, 'package', 'vmbus_sample_guest.inf'), '[Version]\r\n');
    // The guest is a real PowerShell (here, not in a VM): the package's own commands run in it.
    const remoteDir = join(work, 'guest driver');
    const windows: VmTemplate = {
      ...pinnedTemplate, name: 'windows', guest: {
        ...pinnedTemplate.guest, os: 'windows', osName: 'Windows Server 2025', user: 'Administrator',
        driver: {
          files: join(work, 'package'), include: undefined, remoteDir, sudo: false, binary: 'vmbus_sample_guest.sys', installTimeoutMs: 60_000,
          install: "Set-Content -LiteralPath (Join-Path $PackageDir 'installed.txt') -Value \"pnputil /add-driver $PackageDir\\vmbus_sample_guest.inf /install\"",
          uninstall: 'Remove-Item -LiteralPath (Join-Path $PackageDir installed.txt)',
          trace: { format: 'jsonl', path: join(work, 'guest-trace.jsonl') },
        },
      },
    };
    const guests: WindowsGuest[] = [];
    const closed: string[] = [];
    const real = new LabRealSide({
      runId: 'r3', hosts: new Map([['hv-a', labHost]]), hv: () => hv, templates: new Map([['windows', windows]]),
      controlTool: 'sample-ctl', clock: realClock, realJob: DEFAULT_REAL_JOB,
      connectGuest: async () => { throw new Error('a Windows guest is not reached through the POSIX shell'); },
      connectWindowsGuest: async (e) => {
        const shell = new LocalPwshShell({ host: e.name, executable: pwsh!.path });
        const closing = { host: shell.host, transport: shell.transport, run: shell.run.bind(shell), close: () => { closed.push(e.name); return shell.close(); } };
        const g = { name: e.name, ctx: hostContext(closing, { queryTimeoutMs: 60_000 }) };
        guests.push(g);
        return g;
      },
    });
    const job = { jobId: 'idle+windows@hv-a=1', attach: 'vm-handle', template: 'windows' } as PlannedJob;
    const vm = await real.provision(job, 'hv-a', 'bench-win-1');
    expect(guests.map((g) => g.name)).toEqual(['bench-win-1']);
    expect(readFileSync(join(remoteDir, 'vmbus_sample_guest.sys'))).toEqual(sys);
    expect(readFileSync(join(remoteDir, 'installed.txt'), 'utf8')).toBe(`pnputil /add-driver ${remoteDir}\\vmbus_sample_guest.inf /install\n`);
    const ref = vm.ref as { id: string; drivers: unknown };
    expect(ref.drivers).toEqual([{ name: 'guest', where: 'guest', sha256: createHash('sha256').update(sys).digest('hex').toUpperCase(), sourceCommit: undefined }]);
    expect((await hv.checkpoints(ref.id)).map((c) => c.name)).toEqual(['bench-base']);
    await real.remove(vm);
    expect((await host.state()).Vms).toEqual([]);
    expect(closed).toEqual(['bench-win-1']);
  });

  it.skipIf(process.platform !== 'linux')('pins the host key the guest printed on COM1 when the template pins none', async () => {
    const hv = new HyperV(host.ctx, { provisionMs: 30_000, startMs: 30_000, guestReadyMs: 20_000, stopMs: 30_000 });
    const logs = mkdtempSync(join(tmpdir(), 'serial-'));
    const unpinned: VmTemplate = { ...pinnedTemplate, name: 'unpinned', guest: { ...pinnedTemplate.guest, hostKey: undefined } };
    // Play Hyper-V's side of COM1 (.NET on Linux maps pipe X to /tmp/CoreFxPipe_X): once
    // the VM exists, serve its pipe and print cloud-init's fingerprint block.
    const servers: Server[] = [];
    let served = false;
    const watcher = (async () => {
      for (let i = 0; i < 300 && !served; i++) {
        const vm = (await host.state()).Vms[0];
        if (vm) {
          const server = createServer((sock) => { sock.end(CONSOLE); });
          server.listen(join('/tmp', `CoreFxPipe_${vm.Id.toLowerCase()}-com1`));
          servers.push(server);
          served = true;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const pins: unknown[] = [];
    const options: LabRealSideOptions = {
      runId: 'r2', hosts: new Map([['hv-a', labHost]]), hv: () => hv, templates: new Map([['unpinned', unpinned]]),
      controlTool: 'sample-ctl', clock: realClock, realJob: DEFAULT_REAL_JOB,
      serialLogPath: (v) => join(logs, `${v.name}.log`),
      connectGuest: async (e) => { pins.push(e.hostKey); throw new InfraError('stop here: the pin is what this test checks'); },
    };
    const real = new LabRealSide(options);
    const plan = makePlan({ lab: 'standin', hosts: [{ name: 'hv-a', build: '26100', migrationPartner: undefined, capacity: labHost.capacity }], templates: [unpinned], scenarios: [scenario] });
    const runDir = join(mkdtempSync(join(tmpdir(), 'lab-real-side-')), 'r2');
    try {
      const r = await runEngine({
        runId: 'r2', runDir, plan, resume: false, hosts: [{ name: 'hv-a', build: '26100', capacity: labHost.capacity, partner: undefined }],
        scheduler: { maxAttempts: 1 }, hooks: { sweepHost: (h, keep) => real.sweepHost(h, keep) },
        executor: (journal) => new JobPipeline({
          runId: 'r2', runDir, journal, clock: realClock, real, jobTimeoutMs: 60_000, keepFailed: false, scenarios: new Map([['idle', scenario]]),
          emulator: { run: async () => ({ trace: 'emulator.jsonl', verdict: 'pass', ms: 1 }) },
          checker: { check: async () => ({ verdict: 'pass' }) },
        }),
      });
      await watcher;
      expect(pins).toEqual([{ kind: 'fingerprint', sha256: ED }]);
      expect(r.summary!.jobs[0]).toMatchObject({ verdict: 'error', message: expect.stringMatching(/stop here/) });
      expect((await host.state()).Vms).toEqual([]);
    } finally {
      for (const sv of servers) sv.close();
      rmSync(logs, { recursive: true, force: true });
    }
  });
});
