// Cleanup by run id and the sweep of leaked VMs: only VMs carrying the bench's run tag
// are touched, whatever their names.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { benchVms, cleanupRun, sweep } from '../../../src/lab/cleanup.ts';
import { pipe, ps, script } from '../../../src/lab/host-shell/command.ts';
import { expectOk } from '../../../src/lab/host-shell/errors.ts';
import { HyperV, RUN_TAG_PREFIX, runIdOf, runTag, type ProvisionSpec } from '../../../src/lab/hyperv.ts';
import { pwsh, pwshLabel, standinModule } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

const spec = (name: string, runId: string): ProvisionSpec => ({
  name, runId, parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 1024,
  processors: 1, secureBoot: { enabled: false }, integrationServices: [], waitForGuest: false,
});

describe('run tags', () => {
  it('reads back exactly the run id it wrote and nothing else', () => {
    expect(runIdOf(runTag('2026-11-24T03-50_a.1'))).toBe('2026-11-24T03-50_a.1');
    expect(runIdOf('vmbus-bench run=')).toBeUndefined();
    expect(runIdOf('my notes mention vmbus-bench run=x')).toBeUndefined();
    expect(runIdOf(`${RUN_TAG_PREFIX}has space`)).toBeUndefined();
    expect(() => runTag("x'; Remove-VM *")).toThrow(/run id/);
  });
});

describe.skipIf(!pwsh)(`cleanup and sweep on the stand-in ${pwshLabel}`, { timeout: 120_000 }, () => {
  let a: StandinHost;
  let hv: HyperV;
  /** A VM somebody else made, maybe with a bench-like name; Notes not ours. */
  async function foreignVm(name: string, notes: string): Promise<void> {
    expectOk(await a.shell.run(script([
      ps('New-VM', { Name: name, Generation: 2, MemoryStartupBytes: 1024 * 1024 * 1024, NoVHD: true }),
    ], { imports: [standinModule] }), { timeoutMs: 15_000 }));
    expectOk(await a.shell.run(script([pipe(ps('Get-VM', { Name: name }), ps('Set-VM', { Notes: notes })), pipe(ps('Get-VM', { Name: name }), ps('Start-VM'))], { imports: [standinModule] }), { timeoutMs: 15_000 }));
  }
  beforeAll(() => {
    a = newStandinHost('hostA');
    hv = new HyperV(a.ctx, { startMs: 5000, stopMs: 5000 });
  });
  beforeEach(async () => {
    await initHost(a);
  });
  afterAll(async () => {
    await disposeHost(a);
  });

  it('removes one run\'s VMs and disks and leaves other runs and foreign VMs alone', async () => {
    const mine = await hv.provision(spec('bench-r1-a', 'r1'));
    await hv.provision(spec('bench-r1-b', 'r1'));
    const other = await hv.provision(spec('bench-r2-a', 'r2'));
    await foreignVm('bench-lookalike', 'production database, do not touch');
    const out = await cleanupRun(hv, 'r1');
    expect(out.removed.map((r) => r.name).sort()).toEqual(['bench-r1-a', 'bench-r1-b']);
    expect(out.failed).toEqual([]);
    expect(out.untouched).toBe(1);
    const left = (await a.state()).Vms.map((v) => v.Name).sort();
    expect(left).toEqual(['bench-lookalike', 'bench-r2-a']);
    expect((await a.state()).Files).not.toContain(mine.diskPath);
    expect((await a.state()).Files).toContain(other.diskPath);
  });

  it('sweeps every leaked bench VM but the current run\'s, in any state', async () => {
    const leaked = await hv.provision(spec('bench-old-1', 'old'));
    await hv.save(leaked.id);
    const paused = await hv.provision(spec('bench-old-2', 'older'));
    await hv.suspend(paused.id);
    await hv.provision(spec('bench-now', 'current'));
    await foreignVm('someone-elses-vm', '');
    expect((await benchVms(hv, { exceptRunId: 'current' })).ours.map((v) => v.name).sort()).toEqual(['bench-old-1', 'bench-old-2']);
    const out = await sweep(hv, { exceptRunId: 'current' });
    expect(out.removed.map((r) => `${r.name}:${r.state}`).sort()).toEqual(['bench-old-1:Saved', 'bench-old-2:Paused']);
    expect((await a.state()).Vms.map((v) => v.Name).sort()).toEqual(['bench-now', 'someone-elses-vm']);
  });
});
