// real-job's Hyper-V side against the stand-in's VM state machine: every VM operation a
// scenario needs runs through the real HyperV class and Move-VM between two stand-in
// hosts, in an order the state machine accepts (a checkpoint applied to a running VM comes
// back Saved and must be started), and the drivers' traces (from the emulator) merge into
// a trace the checker passes. The VM ends Running on the host it started on.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HyperV } from '../../../src/lab/hyperv.ts';
import { migrate } from '../../../src/lab/migration.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';
import { runRealJob } from '../../../src/run/real/real-job.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { PARENT, SWITCH, usePeeredStandinHosts, VM_ROOT, type StandinHost } from '../../lab/host/standin.ts';
import { emulate, emulatorBackedLab } from './support/emulator-lab.ts';

const T = { startMs: 10_000, saveMs: 10_000, stopMs: 10_000, guestReadyMs: 10_000, migrateMs: 10_000, checkpointMs: 10_000, pauseMs: 10_000 };

describe.skipIf(!pwsh)(`real-job on two stand-in hosts ${pwshLabel}`, { timeout: 120_000 }, () => {
  const hosts = usePeeredStandinHosts(['hv-a', 'hv-b'], T);
  let a: StandinHost;
  let b: StandinHost;
  let hvA: HyperV;
  let hvB: HyperV;
  beforeAll(() => ({ a, b, hvA, hvB } = hosts));

  for (const file of ['04-repeated-save-restore', '05-migrate-and-back', '06-checkpoint-apply', '07-pause-resume']) {
    it(`runs ${file} through Hyper-V operations the state machine accepts`, async () => {
      const { scenario, events } = await emulate(`bench/scenarios/${file}.yaml`);
      const vm = await hvA.provision({
        name: `bench-${file}`, runId: 'rj', parentVhd: PARENT, vmRoot: VM_ROOT, switchName: SWITCH, generation: 2, memoryMB: 2048,
        processors: 2, secureBoot: { enabled: false }, integrationServices: ['Heartbeat'], waitForGuest: false,
      });
      const log: string[] = [];
      const lab = emulatorBackedLab(events, {
        vmId: vm.id, hosts: { 'hv-a': hvA, 'hv-b': hvB }, clock: realClock, log,
        migrate: async (from, to, id) => {
          await migrate(from.host === 'hv-a' ? hvA : hvB, to.host === 'hv-a' ? hvA : hvB, id, { destinationStoragePath: `${VM_ROOT}\\${vm.name}` });
        },
      });
      const dir = mkdtempSync(join(tmpdir(), 'real-job-standin-'));
      const out = await runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, lab, dir, new AbortController().signal, { opTimeoutMs: 30_000, settleQuietMs: 10, settleTimeoutMs: 1000 });
      expect(out, JSON.stringify(out)).toMatchObject({ kind: 'ran' });
      if (out.kind !== 'ran') return;
      expect((await checkTraces(scenario, out.traces, { minimise: false })).result).toMatchObject({ verdict: 'pass' });
      expect((await hvA.getVm(vm.id))?.state).toBe('Running');
      expect(await hvB.getVm(vm.id)).toBeUndefined();
      await hvA.remove(vm.id);
    });
  }
});
