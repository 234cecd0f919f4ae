// The IRQL a C driver runs at on the emulator, and the rules that depend on it.
//
// The shim runs each callback at the highest IRQL its documentation allows (Driver
// Verifier's stance: code that is only right at a lower IRQL is wrong):
// - EvtVmbChannelProcessPacket, EvtVmbChannelProcessingComplete and packet completion
//   routines: DISPATCH_LEVEL (≤ DISPATCH documented), PASSIVE for a packet redelivered
//   after VmbChannelPacketDeferToPassive;
// - the state-change, SavePacket and RestorePacket callbacks: PASSIVE_LEVEL;
// - a WDF I/O queue's callbacks and a WDF timer: DISPATCH_LEVEL unless the object (or its
//   parent) asked for WdfExecutionLevelPassive; work items: PASSIVE_LEVEL;
// - a held spin lock raises to DISPATCH_LEVEL until released.
//
// Which calls are PASSIVE-only is the data the stand-in headers carry as annotations
// (`_IRQL_requires_max_(PASSIVE_LEVEL)`); test/devices/wasm/irql.test.ts holds this
// table to them.

import { violation } from './violations.ts';

export const PASSIVE_LEVEL = 0;
export const DISPATCH_LEVEL = 2;

/** KMCL table entries annotated PASSIVE-only in the stand-in header. */
export const KMCL_PASSIVE_ONLY: ReadonlySet<string> = new Set([
  'VmbChannelAllocate',
  'VmbChannelCleanup',
  'VmbChannelCreateGpadlFromBuffer',
  'VmbChannelCreateGpadlFromMdl',
  'VmbChannelDeleteGpadl',
  'VmbChannelDisable',
  'VmbChannelEnable',
  'VmbChannelPause',
  'VmbChannelSendSynchronousRequest',
  'VmbChannelMapGpadl',
  'VmbChannelUnmapGpadl',
  'VmbChannelRestoreFromBuffer',
  'VmbChannelSaveBegin',
  'VmbChannelSaveContinue',
  'VmbChannelSaveEnd',
]);

/** Kernel and WDF routines PASSIVE-only by their documentation (ntddk.h / wdf.h). */
export const KERNEL_PASSIVE_ONLY: ReadonlySet<string> = new Set([
  'ZwClose',
  'WdfTimerStop(Wait=TRUE)',
  'WdfWorkItemFlush',
  'WdfFdoQueryForInterface',
  'WdfDeviceOpenRegistryKey',
  'WdfRegistryQueryULong',
]);

export class Irql {
  level = PASSIVE_LEVEL;

  /** Flags a PASSIVE-only call made above PASSIVE_LEVEL. */
  requirePassive(call: string, object: string): void {
    if (this.level > PASSIVE_LEVEL) {
      throw violation('irql.passive-only', call, object, `called at ${levelName(this.level)}; it may only be called at PASSIVE_LEVEL`);
    }
  }

  /** Runs a driver callback at `level` and checks it comes back at the same IRQL. */
  run<T>(level: number, callback: string, fn: () => T): T {
    const saved = this.level;
    this.level = level;
    const r = fn();
    this.returned(level, callback);
    this.level = saved;
    return r;
  }

  /** A driver callback called at `level` has returned: at the same IRQL, or a violation. */
  returned(level: number, callback: string): void {
    if (this.level !== level) {
      throw violation('irql.not-restored', callback, levelName(this.level), `returned at ${levelName(this.level)}, called at ${levelName(level)} (a spin lock still held?)`);
    }
  }
}

export function levelName(l: number): string {
  return l === 0 ? 'PASSIVE_LEVEL' : l === 1 ? 'APC_LEVEL' : l === 2 ? 'DISPATCH_LEVEL' : `IRQL ${l}`;
}
