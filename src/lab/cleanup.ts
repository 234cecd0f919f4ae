// Removing the bench's VMs: all of one run (at the end of a run, or after a crash), or a
// sweep of every run but the current one. A VM is the bench's only if its Notes carry the
// run tag the bench wrote at provisioning (hyperv.ts, runTag); the match is exact and done
// here in TypeScript, not by a wildcard on the host, so a VM the bench did not create is
// never touched, whatever its name.

import { runIdOf, type HyperV } from './hyperv.ts';
import { listVms, type VmInfo } from './hyperv-vm.ts';

export interface CleanupOutcome {
  host: string;
  removed: Array<Pick<VmInfo, 'id' | 'name' | 'state'> & { runId: string }>;
  failed: Array<Pick<VmInfo, 'id' | 'name' | 'state'> & { runId: string; error: string }>;
  /** VMs on the host that are not the bench's and were left alone (count only). */
  untouched: number;
}

export interface SweepOptions {
  /** Only this run's VMs (end of a run). */
  runId?: string;
  /** Every bench VM except this run's (a sweep while a run is going on). */
  exceptRunId?: string;
}

/** What `sweep` would remove, without removing anything. */
export async function benchVms(hv: HyperV, options: SweepOptions = {}): Promise<{ ours: Array<VmInfo & { runId: string }>; others: number }> {
  const all = await listVms(hv.ctx);
  const ours: Array<VmInfo & { runId: string }> = [];
  let others = 0;
  for (const vm of all) {
    const runId = runIdOf(vm.notes);
    if (runId === undefined) { others++; continue; }
    if (options.runId !== undefined && runId !== options.runId) continue;
    if (options.exceptRunId !== undefined && runId === options.exceptRunId) continue;
    ours.push({ ...vm, runId });
  }
  return { ours, others };
}

/** Turns off, removes and deletes the disks of each matching bench VM; one failure does not stop the rest. */
export async function sweep(hv: HyperV, options: SweepOptions = {}): Promise<CleanupOutcome> {
  const { ours, others } = await benchVms(hv, options);
  const out: CleanupOutcome = { host: hv.host, removed: [], failed: [], untouched: others };
  for (const vm of ours) {
    const row = { id: vm.id, name: vm.name, state: vm.state, runId: vm.runId };
    try {
      await hv.remove(vm.id);
      out.removed.push(row);
    } catch (e) {
      out.failed.push({ ...row, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}

export function cleanupRun(hv: HyperV, runId: string): Promise<CleanupOutcome> {
  return sweep(hv, { runId });
}
