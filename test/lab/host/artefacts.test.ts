// Artefacts from a host: VM snapshot, checkpoints, event log slice, serial log (bytes exact).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectArtefacts, readHostFile } from '../../../src/lab/artefacts.ts';
import { ps } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { cmd } from '../../../src/lab/hyperv-vm.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { disposeHost, hostFile, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

describe.skipIf(!pwsh)(`artefact collection ${pwshLabel}`, { timeout: 120_000 }, () => {
  let a: StandinHost;
  let out: string;
  beforeAll(() => {
    a = newStandinHost('hostA');
    out = mkdtempSync(join(tmpdir(), 'bench-artefacts-'));
  });
  afterAll(async () => {
    await disposeHost(a);
    rmSync(out, { recursive: true, force: true });
  });

  it('writes the VM snapshot, checkpoints, its events and the serial log, and lists what is missing', async () => {
    await initHost(a);
    const hv = new HyperV(a.ctx);
    const since = new Date(Date.now() - 1000);
    const vm = await hv.provision({ name: 'bench-art', runId: 'r', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 1024, processors: 1, secureBoot: { enabled: false }, integrationServices: [], waitForGuest: false });
    await hv.checkpoint(vm.id, 'base');
    await hv.save(vm.id);
    // The host-side COM1 reader's file (here a real file the engine reads through .NET).
    const serial = join(out, 'com1-source.log');
    const bytes = Buffer.from('boot\r\n\u0000\u00ff tail é\n', 'latin1');
    writeFileSync(serial, bytes);
    const r = await collectArtefacts(hv, vm.id, join(out, 'job1'), { since, serialLogPath: serial });
    expect(r.files.sort()).toEqual(['checkpoints.json', 'hyperv-events.jsonl', 'serial-com1.log', 'vm.json']);
    expect(r.missing).toEqual([]);
    expect(JSON.parse(readFileSync(join(out, 'job1', 'vm.json'), 'utf8'))).toMatchObject({ Id: vm.id, State: 'Saved', Name: 'bench-art' });
    expect(JSON.parse(readFileSync(join(out, 'job1', 'checkpoints.json'), 'utf8'))).toEqual([expect.objectContaining({ Name: 'base' })]);
    const events = readFileSync(join(out, 'job1', 'hyperv-events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: number });
    expect(events.map((e) => e.id)).toEqual([13002, 18500, 18012, 18510]);
    expect(readFileSync(join(out, 'job1', 'serial-com1.log'))).toEqual(bytes);

    const r2 = await collectArtefacts(hv, vm.id, join(out, 'job2'), { since, serialLogPath: join(out, 'nope.log') });
    expect(r2.missing).toEqual([{ what: 'serial log', why: 'not present on the host' }]);
  });
  // Issue 14: .NET sees no PowerShell drive and resolves a relative path against the
  // process's directory, not the session's location. readHostFile reads the file the
  // host's cmdlets (and the tools started from the session) name.
  it('reads a host file the way the session names it: on a PowerShell drive, relative to $PWD', async () => {
    await initHost(a);
    const hv = new HyperV(a.ctx);
    // D: is the stand-in's PSDrive over a folder of its state (DriverFiles.ps1).
    const onD = `${VM_ROOT}\\job-x\\client.jsonl`;
    const bytes = Buffer.from('{"v":1}\n\u0000\u00ff', 'latin1');
    mkdirSync(join(hostFile(a, onD), '..'), { recursive: true });
    writeFileSync(hostFile(a, onD), bytes);
    expect(await readHostFile(hv, onD)).toEqual(bytes);
    expect(await readHostFile(hv, `${VM_ROOT}\\job-x\\other.jsonl`)).toBeUndefined();
    // A relative path is the session's: Set-Location moves $PWD, not the process's
    // current directory, so .NET alone would look in the test runner's folder.
    const here = mkdtempSync(join(out, 'pwd-'));
    writeFileSync(join(here, 'rel-only-here.log'), 'from $PWD');
    expectOk(await a.ctx.shell.run(cmd(a.ctx, [ps('Set-Location', { LiteralPath: here })]), { timeoutMs: 30_000 }));
    expect((await readHostFile(hv, 'rel-only-here.log'))?.toString()).toBe('from $PWD');
  });

  it('fails naming the path when its drive does not exist or it is not a file, instead of calling the file absent', async () => {
    const hv = new HyperV(a.ctx);
    await expect(readHostFile(hv, 'Q:\\bench\\vms\\t.jsonl')).rejects.toThrow(/cannot resolve the host path Q:\\bench\\vms\\t\.jsonl: .*drive.*'Q'/);
    await expect(readHostFile(hv, 'Env:\\PATH')).rejects.toThrow(/the host path Env:\\PATH is not a file system path \(provider Environment\)/);
    // A collection records it as missing, with that reason, and carries on.
    const vm = await hv.provision({ name: 'bench-art2', runId: 'r', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 1024, processors: 1, secureBoot: { enabled: false }, integrationServices: [], waitForGuest: false });
    const r = await collectArtefacts(hv, vm.id, join(out, 'job3'), { since: new Date(Date.now() - 1000), serialLogPath: 'Q:\\vm\\com1.log' });
    expect(r.files).toContain('vm.json');
    expect(r.missing).toEqual([{ what: 'serial log', why: expect.stringMatching(/cannot resolve the host path Q:\\vm\\com1\.log/) }]);
  });
});

