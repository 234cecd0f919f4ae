// Hyper-V operations through the stand-in module on a real PowerShell engine: the state
// machine, Hyper-V's wrong-state errors, and what a failed step reports.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pipe, ps, script } from '../../../src/lab/host-shell/command.ts';
import { expectOk, HostCommandError, HostTimeoutError } from '../../../src/lab/host-shell/errors.ts';
import { LocalPwshShell } from '../../../src/lab/host-shell/local-pwsh.ts';
import { HyperV, runIdOf, type ProvisionSpec } from '../../../src/lab/hyperv.ts';
import { getVm, hostContext, vmEvents, VmOperationError } from '../../../src/lab/hyperv-vm.ts';
import { pwsh, pwshLabel, standinModule } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

const spec = (name: string, over: Partial<ProvisionSpec> = {}): ProvisionSpec => ({
  name, runId: 'run-1', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 2048,
  processors: 2, secureBoot: { enabled: false }, integrationServices: ['Guest Service Interface', 'Heartbeat'], waitForGuest: true, ...over,
});

describe.skipIf(!pwsh)(`Hyper-V operations on the stand-in ${pwshLabel}`, { timeout: 120_000 }, () => {
  let a: StandinHost;
  let hv: HyperV;
  beforeAll(() => {
    a = newStandinHost('hostA');
    hv = new HyperV(a.ctx, { startMs: 5000, saveMs: 5000, stopMs: 5000, pauseMs: 5000, checkpointMs: 5000, guestReadyMs: 5000 });
  });
  beforeEach(async () => {
    await initHost(a, { bootMilliseconds: 50 });
  });
  afterAll(async () => {
    await disposeHost(a);
  });

  it('provisions from a differencing disk, tags Notes with the run id and waits for heartbeat and IPv4', async () => {
    const vm = await hv.provision(spec('bench-prov'));
    expect(vm.ipv4).toMatch(/^192\.168\.77\.\d+$/);
    expect(vm.diskPath).toBe('D:\\bench\\vms\\bench-prov\\bench-prov.vhdx');
    const info = await hv.getVm(vm.id);
    expect(info?.state).toBe('Running');
    expect(runIdOf(info!.notes)).toBe('run-1');
    const st = await a.state();
    expect(st.Files).toContain(vm.diskPath);
    expect(await hv.diskPaths(vm.id)).toEqual([vm.diskPath]);
  });

  it('saves and starts again, logging both in the Hyper-V event log', async () => {
    const vm = await hv.provision(spec('bench-save'));
    const since = new Date(Date.now() - 1000);
    expect((await hv.save(vm.id)).state).toBe('Saved');
    expect((await hv.start(vm.id)).state).toBe('Running');
    const ids = (await vmEvents(a.ctx, vm.id, since)).map((e) => e.id);
    expect(ids).toEqual(expect.arrayContaining([18510, 18596]));
  });

  it('stops every step at once when the run is canceled', async () => {
    const vm = await hv.provision(spec('bench-cancel'));
    await a.setup('Set-StandinDelay', { Operation: 'Save-VM', Milliseconds: 3000 });
    const ac = new AbortController();
    const canceled = new HyperV(hostContext(a.shell, { modules: [standinModule], pollMs: 25, signal: ac.signal }));
    setTimeout(() => ac.abort(new Error('run stopped')), 300);
    const e = (await canceled.saveAndRestore(vm.id).catch((x: unknown) => x)) as VmOperationError;
    expect(e).toBeInstanceOf(VmOperationError);
    expect(e.message).toMatch(/Save-VM .*canceled \(run stopped\)/s);
  });

  it('suspends and resumes; asked for the state it is in, a cmdlet warns and succeeds; Start-VM resumes a paused VM', async () => {
    const vm = await hv.provision(spec('bench-pause'));
    expect((await hv.suspend(vm.id)).state).toBe('Paused');
    expect((await hv.suspend(vm.id)).state).toBe('Paused'); // Suspend-VM on Paused
    expect((await hv.resume(vm.id)).state).toBe('Running');
    expect((await hv.resume(vm.id)).state).toBe('Running'); // Resume-VM on Running
    expect((await hv.save(vm.id)).state).toBe('Saved');
    expect((await hv.save(vm.id)).state).toBe('Saved'); // Save-VM on Saved
    expect((await hv.start(vm.id)).state).toBe('Running');
    await hv.suspend(vm.id);
    expect((await hv.start(vm.id)).state).toBe('Running'); // Start-VM on Paused resumes
    const warned = await a.shell.run(script([pipe(ps('Get-VM', { Id: vm.id }), ps('Resume-VM'))], { imports: [standinModule] }), { timeoutMs: 15_000 });
    expect(warned.failure).toBeUndefined();
    expect(warned.stdout).toMatch(/already in the specified state/);
  });

  it('turns a saved VM off with Stop-VM -TurnOff', async () => {
    const vm = await hv.provision(spec('bench-saved-off'));
    await hv.save(vm.id);
    expect((await hv.turnOff(vm.id)).state).toBe('Off');
  });

  it('never starts an operation from a state it does not know to be stable', async () => {
    const vm = await hv.provision(spec('bench-unstable'));
    for (const state of ['RunningCritical', 'Hibernated', 'ComponentServicing', 'ForceShutdown', 'FastSaved', 'Other', 'Saving']) {
      await a.setup('Set-StandinVmState', { Id: vm.id, State: state });
      const e = (await hv.save(vm.id).catch((x: unknown) => x)) as VmOperationError;
      expect(e, state).toBeInstanceOf(VmOperationError);
      expect(e.lastState).toBe(state);
      expect(e.cause, 'refused before any cmdlet ran').toBeUndefined();
      expect(e.message).toMatch(new RegExp(`state ${state}; the bench only starts Save-VM from Running/Off/Saved/Paused`));
      expect((await hv.getVm(vm.id))?.state).toBe(state);
    }
    await a.setup('Set-StandinVmState', { Id: vm.id, State: 'Off' });
  });

  it('reports an unknown VM id and a missing checkpoint as ObjectNotFound, as the Hyper-V module does', async () => {
    const unknown = await a.shell.run(script([ps('Get-VM', { Id: '00000000-0000-0000-0000-000000000001' })], { imports: [standinModule] }), { timeoutMs: 15_000 });
    expect(unknown.errorRecords[0]).toMatchObject({ errorId: 'ObjectNotFound', category: 'ObjectNotFound', cmdlet: 'Get-VM' });
    const vm = await hv.provision(spec('bench-nockpt'));
    const none = await a.shell.run(script([pipe(ps('Get-VM', { Id: vm.id }), ps('Get-VMSnapshot', { Name: 'never-made' }))], { imports: [standinModule] }), { timeoutMs: 15_000 });
    expect(none.errorRecords[0]).toMatchObject({ errorId: 'ObjectNotFound', category: 'ObjectNotFound', cmdlet: 'Get-VMSnapshot' });
  });

  it('keeps -WhatIf from changing anything and takes the documented aliases -VMName and -CheckpointName', async () => {
    const vm = await hv.provision(spec('bench-whatif'));
    const name = 'bench-whatif';
    expectOk(await a.shell.run(script([ps('Save-VM', { VMName: name, WhatIf: true }), ps('Stop-VM', { VMName: name, TurnOff: true, WhatIf: true })], { imports: [standinModule] }), { timeoutMs: 15_000 }));
    expect((await hv.getVm(vm.id))?.state).toBe('Running');
    expectOk(await a.shell.run(script([ps('Checkpoint-VM', { VMName: name, CheckpointName: 'by-alias' })], { imports: [standinModule] }), { timeoutMs: 15_000 }));
    expect(await hv.checkpoints(vm.id)).toEqual([expect.objectContaining({ name: 'by-alias' })]);
  });

  it('refuses Save-VM on a VM that is off, with the state in the error', async () => {
    const vm = await hv.provision(spec('bench-off'));
    await hv.turnOff(vm.id);
    const e = (await hv.save(vm.id).catch((x: unknown) => x)) as VmOperationError;
    expect(e).toBeInstanceOf(VmOperationError);
    expect(e.lastState).toBe('Off');
    expect((e.cause as HostCommandError).records[0]).toMatchObject({ errorId: 'InvalidState', category: 'InvalidOperation', cmdlet: 'Save-VM' });
  });

  it('takes a base checkpoint of a running VM and restores it to Running; a missing checkpoint fails restore and remove', async () => {
    const vm = await hv.provision(spec('bench-ckpt'));
    await hv.checkpoint(vm.id, 'base');
    expect(await hv.checkpoints(vm.id)).toEqual([expect.objectContaining({ name: 'base' })]);
    await hv.save(vm.id);
    expect((await hv.restoreCheckpoint(vm.id, 'base')).state).toBe('Running');
    for (const op of [() => hv.restoreCheckpoint(vm.id, 'no-such'), () => hv.removeCheckpoint(vm.id, 'no-such')]) {
      const e = (await op().catch((x: unknown) => x)) as VmOperationError;
      expect(e).toBeInstanceOf(VmOperationError);
      expect(e.message).toMatch(/no-such/);
    }
    await hv.removeCheckpoint(vm.id, 'base');
    expect(await hv.checkpoints(vm.id)).toEqual([]);
  });

  it('removes a running VM and its disk', async () => {
    const vm = await hv.provision(spec('bench-rm'));
    await hv.remove(vm.id);
    expect(await hv.getVm(vm.id)).toBeUndefined();
    expect((await a.state()).Files).not.toContain(vm.diskPath);
    await hv.remove(vm.id); // already gone: fine
  });

  it('lets a second session see the transient Saving state while a delayed save runs', async () => {
    const vm = await hv.provision(spec('bench-shared'));
    await a.setup('Set-StandinDelay', { Operation: 'Save-VM', Milliseconds: 2500 });
    const other = new LocalPwshShell({ host: 'hostA-2', executable: pwsh!.path, env: { BENCH_HYPERV_STATE: a.dir } });
    try {
      const ctx2 = hostContext(other, { modules: [standinModule], pollMs: 25 });
      await getVm(ctx2, vm.id); // warm the second session before racing
      const saving = hv.save(vm.id);
      let seen = '';
      for (let i = 0; i < 100 && seen !== 'Saving'; i++) seen = (await getVm(ctx2, vm.id))?.state ?? '';
      expect(seen).toBe('Saving');
      // The bench does not even try from Saving; the stand-in would refuse too.
      const e = (await new HyperV(ctx2).suspend(vm.id).catch((x: unknown) => x)) as VmOperationError;
      expect(e.message).toMatch(/transient state Saving/);
      const direct = await other.run(script([pipe(ps('Get-VM', { Id: vm.id }), ps('Suspend-VM'))], { imports: [standinModule] }), { timeoutMs: 15_000 });
      expect(direct.errorRecords[0]?.errorId).toBe('InvalidState');
      expect((await saving).state).toBe('Saved');
    } finally {
      await other.close();
    }
  });

  it('reports a VM stuck in Saving as a timeout with its state, and cleanup still removes it', async () => {
    const vm = await hv.provision(spec('bench-stuck'));
    await a.setup('Set-StandinFault', { Operation: 'Save-VM', Mode: 'hang' });
    const quick = new HyperV(a.ctx, { saveMs: 3000, stopMs: 5000 });
    const started = (a.shell as LocalPwshShell).sessionsStarted;
    const e = (await quick.save(vm.id).catch((x: unknown) => x)) as VmOperationError;
    expect(e).toBeInstanceOf(VmOperationError);
    expect(e.lastState).toBe('Saving');
    expect(e.timedOut).toBe(true);
    expect(e.message).toMatch(/timed out after 3000 ms.*VM state: Saving/s);
    // The hung session was discarded; the next command got a new one.
    expect((a.shell as LocalPwshShell).sessionsStarted).toBeGreaterThan(started);
    // Stop-VM -TurnOff is refused mid-transition; remove() kills the worker process.
    const off = await a.shell.run({ kind: 'script', imports: [standinModule], depth: 2, statements: [{ kind: 'pipeline', stages: [{ kind: 'invoke', name: 'Get-VM', params: { Id: vm.id } }, { kind: 'invoke', name: 'Stop-VM', params: { TurnOff: true } }] }] }, { timeoutMs: 10_000 });
    expect(off.errorRecords[0]?.errorId).toBe('InvalidState');
    await quick.remove(vm.id);
    expect((await a.state()).Vms).toEqual([]);
    expect((await vmEvents(a.ctx, vm.id, new Date(Date.now() - 60_000))).map((ev) => ev.id)).toContain(14070);
  });

  it('gives up on a guest that never reports an address, and leaves no VM behind', async () => {
    await initHost(a, { bootMilliseconds: -1 });
    const quick = new HyperV(a.ctx, { guestReadyMs: 600 });
    const e = (await quick.provision(spec('bench-noip')).catch((x: unknown) => x)) as VmOperationError;
    expect(e).toBeInstanceOf(VmOperationError);
    expect(e.message).toMatch(/heartbeat OK and an IPv4 address/);
    expect((await a.state()).Vms).toEqual([]);
    expect((await a.state()).Files).toEqual([PARENT]);
  });

  it('removes a VM that New-VM made before hanging, found by its name', async () => {
    await a.setup('Set-StandinFault', { Operation: 'New-VM', Mode: 'hang' });
    const quick = new HyperV(a.ctx, { provisionMs: 2000 });
    const e = await quick.provision(spec('bench-newvm-hang')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HostTimeoutError);
    expect((await a.state()).Vms).toEqual([]);
    expect((await a.state()).Files).toEqual([PARENT]);
  });

  it('refuses a VM name that could leave vmRoot or match other VMs', async () => {
    await expect(hv.provision(spec('..\\evil'))).rejects.toThrow(/VM name/);
    await expect(hv.provision(spec('bench-*'))).rejects.toThrow(/VM name/);
  });

  it('fails provisioning on a missing switch without leaving the disk', async () => {
    const e = await hv.provision(spec('bench-nosw', { switchName: 'no-such-switch' })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HostCommandError);
    expect((e as HostCommandError).message).toMatch(/virtual switch with name "no-such-switch"/);
    expect((await a.state()).Files).toEqual([PARENT]);
  });
});

describe.skipIf(!pwsh)(`reading VMs when Hyper-V is not there ${pwshLabel}`, { timeout: 120_000 }, () => {
  it('never takes a missing Hyper-V module for a missing VM', async () => {
    const shell = new LocalPwshShell({ host: 'no-hyperv', executable: pwsh!.path });
    try {
      const ctx = hostContext(shell, { modules: [] });
      const e = await getVm(ctx, '00000000-0000-0000-0000-000000000001').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(HostCommandError);
      expect((e as HostCommandError).is('CommandNotFoundException')).toBe(true);
    } finally {
      await shell.close();
    }
  });
});
