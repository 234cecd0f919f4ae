// Live migration between two stand-in hosts (two state directories, two sessions).
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanupRun } from '../../../src/lab/cleanup.ts';
import type { HyperV, ProvisionSpec } from '../../../src/lab/hyperv.ts';
import { VmOperationError } from '../../../src/lab/hyperv-vm.ts';
import { compareMigration, migrate, migrateRoundTrip, MigrationBlockedError } from '../../../src/lab/migration.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { initHost, PARENT, SWITCH, usePeeredStandinHosts, VM_ROOT, type StandinHost } from './standin.ts';

const spec = (name: string): ProvisionSpec => ({
  name, runId: 'run-mig', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 2048,
  processors: 2, secureBoot: { enabled: false }, integrationServices: ['Heartbeat'], waitForGuest: true,
});
const T = { startMs: 5000, saveMs: 5000, stopMs: 5000, guestReadyMs: 5000, migrateMs: 5000 };

describe.skipIf(!pwsh)(`live migration between two stand-in hosts ${pwshLabel}`, { timeout: 120_000 }, () => {
  const hosts = usePeeredStandinHosts(['hostA', 'hostB'], T);
  let a: StandinHost;
  let b: StandinHost;
  let hvA: HyperV;
  let hvB: HyperV;
  beforeAll(() => ({ a, b, hvA, hvB } = hosts));

  it('moves a running VM to the partner and back, storage included', async () => {
    const vm = await hvA.provision(spec('bench-lm'));
    const onB = await migrate(hvA, hvB, vm.id, { destinationStoragePath: 'E:\\bench\\moved\\bench-lm' });
    expect(onB.state).toBe('Running');
    expect(await hvA.getVm(vm.id)).toBeUndefined();
    expect(await hvB.diskPaths(vm.id)).toEqual(['E:\\bench\\moved\\bench-lm\\bench-lm.vhdx']);
    const back = await migrate(hvB, hvA, vm.id, { destinationStoragePath: 'D:\\bench\\vms\\bench-lm' });
    expect(back.state).toBe('Running');
    expect(await hvB.getVm(vm.id)).toBeUndefined();
    expect((await a.state()).Files).toContain('D:\\bench\\vms\\bench-lm\\bench-lm.vhdx');
  });

  it('keeps a saved VM saved across the move (round trip helper)', async () => {
    const vm = await hvA.provision(spec('bench-lm-saved'));
    await hvA.save(vm.id);
    expect((await migrateRoundTrip(hvA, hvB, vm.id, 'E:\\m', 'D:\\m')).state).toBe('Saved');
  });

  it('reports Compare-VM incompatibilities before moving anything', async () => {
    await initHost(b, { peers: [a], switches: ['other-switch'], migrationEnabled: false });
    const vm = await hvA.provision(spec('bench-lm-blocked'));
    const list = await compareMigration(hvA, vm.id, 'hostB', 'E:\\x');
    expect(list.map((i) => i.messageId).sort()).toEqual([21026, 33012]);
    const e = await migrate(hvA, hvB, vm.id, { destinationStoragePath: 'E:\\x' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MigrationBlockedError);
    expect((e as MigrationBlockedError).message).toMatch(/33012: Could not find Ethernet switch 'bench-switch'/);
    expect((await hvA.getVm(vm.id))?.state).toBe('Running');
  });

  it('says where the VM is when the destination disappears during Move-VM, and cleanup leaves no VM', async () => {
    const vm = await hvA.provision(spec('bench-lm-gone'));
    await a.setup('Set-StandinDelay', { Operation: 'Move-VM', Milliseconds: 400 });
    await a.setup('Set-StandinFault', { Operation: 'Move-VM', Mode: 'host-gone' });
    const e = (await migrate(hvA, hvB, vm.id, { destinationStoragePath: 'E:\\x' }).catch((x: unknown) => x)) as VmOperationError;
    expect(e).toBeInstanceOf(VmOperationError);
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/lost the connection to host 'hostB'.*on hostA: Running, on hostB: absent/s);
    expect(e.lastState).toBe('Running');
    expect(e.events.some((ev) => ev.id === 21502)).toBe(true);
    // The partner is now unreachable from A: a second attempt is blocked up front.
    await expect(migrate(hvA, hvB, vm.id, { destinationStoragePath: 'E:\\x' })).rejects.toThrow(/actively refused/);
    const out = await cleanupRun(hvA, 'run-mig');
    expect(out.removed.map((r) => r.id)).toEqual([vm.id]);
    expect((await a.state()).Vms).toEqual([]);
    expect((await b.state()).Vms).toEqual([]);
  });
});
