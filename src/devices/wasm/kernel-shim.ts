// The NT kernel routines a Windows driver calls directly (ntddk.h): pool, time, IRQL,
// debug output. Pool goes through pool.ts with its checks; time is the scheduler's clock.

import { DISPATCH_LEVEL, PASSIVE_LEVEL, levelName } from './irql.ts';
import type { DriverRuntime, ImportTable } from './runtime.ts';
import { violation } from './violations.ts';

const POOL_FLAG_PAGED = 0x100n;

export function kernelImports(rt: DriverRuntime): ImportTable {
  return {
    env: {
      ExAllocatePool2: (flags: bigint, size: bigint, tag: number) => {
        if (rt.irql.level > DISPATCH_LEVEL) throw violation('irql.passive-only', 'ExAllocatePool2', `tag ${tag}`, `called at ${levelName(rt.irql.level)}`);
        if ((flags & POOL_FLAG_PAGED) !== 0n && rt.irql.level > PASSIVE_LEVEL + 1) {
          throw violation('irql.passive-only', 'ExAllocatePool2', 'POOL_FLAG_PAGED', `paged pool at ${levelName(rt.irql.level)}: only up to APC_LEVEL`);
        }
        return rt.pool.alloc(Number(size), tag >>> 0, 'driver');
      },
      ExFreePoolWithTag: (p: number, tag: number) => {
        if (rt.irql.level > DISPATCH_LEVEL) throw violation('irql.passive-only', 'ExFreePoolWithTag', `0x${(p >>> 0).toString(16)}`, `called at ${levelName(rt.irql.level)}`);
        rt.pool.free(p >>> 0, tag >>> 0, 'ExFreePoolWithTag');
      },
      // 100 ns units since boot: the scheduler's clock (ms) times 10,000.
      KeQueryInterruptTime: () => BigInt(Math.round(rt.opts.now() * 10_000)),
      KeGetCurrentIrql: () => rt.irql.level,
      DbgPrintEx: () => 0,
      shim_pool_alloc: (n: number, tag: number) => rt.pool.alloc(n >>> 0, tag >>> 0, 'shim'),
    },
  };
}

/** Merges import tables module by module (later entries win only where a name is new). */
export function mergeImports(...tables: ImportTable[]): ImportTable {
  const out: ImportTable = {};
  for (const t of tables) {
    for (const [mod, fns] of Object.entries(t)) out[mod] = { ...fns, ...(out[mod] ?? {}) };
  }
  return out;
}
