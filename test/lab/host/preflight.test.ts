// Preflight checks against the stand-in: each problem shows up as its own failed line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperV } from '../../../src/lab/hyperv.ts';
import { formatCheck, preflightHost, type PreflightTarget } from '../../../src/lab/preflight.ts';
import { pwsh, pwshLabel } from './find-pwsh.ts';
import { disposeHost, initHost, newStandinHost, PARENT, SWITCH, VM_ROOT, type StandinHost } from './standin.ts';

describe.skipIf(!pwsh)(`preflight on the stand-in ${pwshLabel}`, { timeout: 120_000 }, () => {
  let a: StandinHost;
  let target: PreflightTarget;
  beforeAll(() => {
    a = newStandinHost('hostA');
    target = { name: 'hostA', hv: new HyperV(a.ctx), switchName: SWITCH, vmRoot: VM_ROOT, memoryMB: 8192, migrationPartner: undefined, parentDisks: [PARENT], minFreeDiskGB: 50 };
  });
  afterAll(async () => {
    await disposeHost(a);
  });

  it('passes a prepared host, one result per check, without a migration check when there is no partner', async () => {
    await initHost(a);
    const r = await preflightHost(target);
    expect(r.map((c) => c.check)).toEqual(['reachable', 'Hyper-V module', `switch "${SWITCH}"`, 'free memory', 'free disk D:', `parent disk ${PARENT}`, 'test signing']);
    expect(r.every((c) => c.status === 'pass')).toBe(true);
    expect(formatCheck(r[0]!, { host: 6, check: 10 })).toMatch(/^ok {3}hostA {3}reachable {3}local PowerShell answers$/);
  });

  it('fails low memory, missing and differencing parent disks, each on its own line', async () => {
    await initHost(a, { freeMemoryBytes: 4 * 1024 ** 3 });
    // A differencing disk is no parent for more differencing disks.
    const hv = target.hv;
    await hv.ctx.shell.run({ kind: 'script', imports: [...hv.ctx.modules], depth: 2, statements: [{ kind: 'pipeline', stages: [{ kind: 'invoke', name: 'New-VHD', params: { Path: 'D:\\diff.vhdx', ParentPath: PARENT, Differencing: true } }] }] }, { timeoutMs: 10_000 });
    const r = await preflightHost({ ...target, parentDisks: [PARENT, 'D:\\missing.vhdx', 'D:\\diff.vhdx'] });
    const failed = Object.fromEntries(r.filter((c) => c.status === 'fail').map((c) => [c.check, c.detail]));
    expect(Object.keys(failed).sort()).toEqual(['free memory', 'parent disk D:\\diff.vhdx', 'parent disk D:\\missing.vhdx']);
    expect(failed['free memory']).toBe('4096 MB free, inventory capacity 8192 MB');
    expect(failed['parent disk D:\\missing.vhdx']).toMatch(/cannot find the file/);
    expect(failed['parent disk D:\\diff.vhdx']).toMatch(/differencing disk/);
  });

  it('reports a host without the Hyper-V module', async () => {
    const bare = newStandinHost('bare');
    try {
      const hv = new HyperV({ ...bare.ctx, modules: [] });
      const r = await preflightHost({ ...target, name: 'bare', hv });
      expect(r.find((c) => c.check === 'Hyper-V module')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/missing cmdlets: Get-VM, New-VM/) });
      expect(r.find((c) => c.check === 'reachable')?.status).toBe('pass');
    } finally {
      await disposeHost(bare);
    }
  });
});
