// Artefacts from a host: VM snapshot, checkpoints, event log slice, serial log (bytes exact).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectArtefacts } from '../../../src/lab/artefacts.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

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
});
