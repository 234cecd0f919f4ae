// One C driver instantiated on the emulator: its wasm module, linear memory, pool, IRQL
// and the bookkeeping every import shares (handles, hang detection, calls back into the
// driver through its function table).
//
// Imports come from the shims (wdf-shim.ts, kmcl-shim.ts, trace-shim.ts, ...). Each is
// wrapped once here: it counts towards hang detection, and a KmclUsageError the
// emulator throws for driver misuse becomes a named violation with the driver's frames.

import { KmclUsageError } from '../../vmbus/channel-types.ts';
import { Irql, PASSIVE_LEVEL } from './irql.ts';
import { Linear } from './linear.ts';
import { Pool } from './pool.ts';
import { DriverViolation, violation, type ViolationRule } from './violations.ts';

/** Calls from the driver into the kernel within one entry before it counts as a hang. */
export const HANG_CALLS = 200_000;

export type ImportFn = (...args: any[]) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
export type ImportTable = Record<string, Record<string, ImportFn>>;

export interface RuntimeOptions {
  /** the scheduler's clock in ms (KeQueryInterruptTime, timers, jiffies) */
  now: () => number;
  /** calls per entry before a hang is reported */
  hangCalls?: number;
  /**
   * Record every driver allocation's whole stack, the driver's own functions in it, for
   * a leak report (as Driver Verifier records stacks only with the stack trace database
   * on). Off: a leak names the kernel call and the driver entries it was made in (the
   * callbacks and exports on the way in), which costs nothing; a captured stack cost
   * more than half of `bench explore --devices c`.
   */
  allocationStacks?: boolean | undefined;
}



export class DriverRuntime {
  readonly name: string;
  readonly opts: RuntimeOptions;
  readonly irql = new Irql();
  mem!: Linear;
  pool!: Pool;
  table!: WebAssembly.Table;
  exports!: Record<string, unknown>;
  /** the linear memory's size as the module declares it (before anything grew it) */
  initialMemory = 0;
  private depth = 0;
  /** the entries into the driver now (callbacks, exports), outermost first: `depth` of them */
  private readonly entries: string[] = [];
  /** the table's functions by index, looked up once (Table.get is a call into the engine) */
  private readonly functions: Array<((...a: unknown[]) => number) | null> = [];
  /** Counts entries into the driver: whoever caches what the driver reports can tell it is stale. */
  generation = 0;
  private calls = 0;
  private lastCall = '';
  /** handles made so far by kind (the kinds are small numbers: an array, not a Map, on this per-packet path) */
  private nextHandle: number[] = [];
  /** Runs after the outermost entry into the driver returns (trace flush). */
  readonly afterEntry: Array<() => void> = [];

  constructor(name: string, opts: RuntimeOptions) {
    this.name = name;
    this.opts = opts;
  }

  instantiate(wasm: Uint8Array, imports: ImportTable): void {
    const wrapped: WebAssembly.Imports = {};
    for (const [mod, fns] of Object.entries(imports)) {
      const w: Record<string, ImportFn> = {};
      for (const [name, fn] of Object.entries(fns)) w[name] = this.wrap(name, fn);
      wrapped[mod] = w;
    }
    const inst = new WebAssembly.Instance(compiled(wasm), wrapped);
    this.exports = inst.exports as Record<string, unknown>;
    this.mem = new Linear(this.exports.memory as WebAssembly.Memory);
    this.initialMemory = this.mem.size;
    this.table = this.exports.__indirect_function_table as WebAssembly.Table;
    const heapBase = (this.exports.__heap_base as WebAssembly.Global).value as number;
    this.pool = new Pool(this.mem, heapBase, () => ({ call: this.lastCall, entries: this.entries.slice(0, this.depth) }), this.opts.allocationStacks ?? false);
  }

  private wrap(name: string, fn: ImportFn): ImportFn {
    const limit = this.opts.hangCalls ?? HANG_CALLS;
    // Fixed parameters, not a rest array: this runs on every kernel call the driver makes.
    // No import takes more than nine; the extra ones arrive undefined and are ignored.
    return (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown) => {
      this.lastCall = name;
      // The driver's code wrote its memory since it was entered or last called out.
      this.mem.version++;
      if (++this.calls > limit) {
        throw violation('hang', name, `${this.calls} kernel calls`, `the driver made ${this.calls} kernel calls without returning from one entry; the last was ${name} (a loop that makes no progress)`);
      }
      try {
        return fn(a, b, c, d, e, f, g, h, i);
      } catch (err) {
        if (err instanceof KmclUsageError) throw violation(shimRule(err), name, kmclObject(err), err.message);
        throw err;
      }
    };
  }

  /**
   * Readies a runtime nobody uses any more to be revived into (runtime-image.ts
   * restoreRuntime then puts back memory, pool and handles), in place of a new instance:
   * a new WebAssembly.Instance maps fresh memory, which cost most of a C guest's restore.
   * It forgets what only its last user knew (the last kernel call, the call count), and
   * reads the clock through `now` from here on.
   * Invariant: reuse, then restoreRuntime(image), gives what a new instance of the same
   * module revived from that image gives (test/devices/wasm/runtime-image.test.ts).
   */
  reuse(now: () => number): void {
    if (this.depth > 0) throw new Error(`${this.name}: a runtime is reused between entries into the driver, not inside one`);
    this.opts.now = now;
    this.calls = 0;
    this.lastCall = '';
    this.generation++;
    this.irql.level = PASSIVE_LEVEL;
  }

  /** A fresh handle value of a kind (distinct ranges make a mixed-up handle visible). */
  handle(kind: number): number {
    const n = (this.nextHandle[kind] ?? 0) + 1;
    this.nextHandle[kind] = n;
    return kind * 0x1000_0000 + n * 8;
  }

  /** The handle counters as [kind, count], kinds in order, for a snapshot (runtime-image.ts). */
  handleCounters(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    this.nextHandle.forEach((n, kind) => out.push([kind, n]));
    return out;
  }

  restoreHandleCounters(counters: ReadonlyArray<readonly [number, number]>): void {
    this.nextHandle = [];
    for (const [k, n] of counters) this.nextHandle[k] = n;
  }

  /**
   * Calls into the driver: an exported function or a callback by its table index, at
   * `level`. The outermost entry resets hang detection and runs `afterEntry` when done.
   */
  enter<T>(what: string, level: number, fn: () => T): T {
    const outer = this.depth === 0;
    if (outer) this.calls = 0;
    this.generation++;
    this.entries[this.depth++] = what;
    try {
      return this.irql.run(level, what, fn);
    } finally {
      // The driver's code may have written its memory since its last call out (linear.ts version).
      this.mem.version++;
      this.depth--;
      if (outer) for (const f of this.afterEntry) f();
    }
  }

  /**
   * Calls a driver callback by its table index. Fixed parameters and no closure (unlike
   * `enter`): this runs for every packet the driver is handed. No callback takes more
   * than six; the ones a caller leaves out arrive undefined and the driver ignores them.
   */
  callback(index: number, what: string, level: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, g?: unknown): number {
    // Cached: the driver's code never changes its table (clang emits no table.set).
    const i = index >>> 0;
    let f = this.functions[i];
    if (f === undefined) f = this.functions[i] = i < this.table.length ? (this.table.get(i) as ((...x: unknown[]) => number) | null) : null;
    if (!f) throw violation('wdf.misuse', what, `function index ${index}`, 'the driver gave a NULL or bad callback');
    return this.call(f, what, level, a, b, c, d, e, g);
  }

  callExport(name: string, level: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, g?: unknown): number {
    const f = this.exports[name] as ((...x: unknown[]) => number) | undefined;
    if (!f) throw new Error(`${this.name}: no export ${name}`);
    return this.call(f, name, level, a, b, c, d, e, g);
  }

  /** `enter` for a driver function and its arguments (Irql.run's check, inline). */
  private call(f: (...x: unknown[]) => number, what: string, level: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, g: unknown): number {
    const outer = this.depth === 0;
    if (outer) this.calls = 0;
    this.generation++;
    this.entries[this.depth++] = what;
    const irql = this.irql;
    const saved = irql.level;
    try {
      irql.level = level;
      const r = f(a, b, c, d, e, g);
      irql.returned(level, what);
      irql.level = saved;
      return r;
    } finally {
      // The driver's code may have written its memory since its last call out (linear.ts version).
      this.mem.version++;
      this.depth--;
      if (outer) for (const x of this.afterEntry) x();
    }
  }

  get inDriver(): boolean {
    return this.depth > 0;
  }

  get lastKernelCall(): string {
    return this.lastCall;
  }
}

export { DriverViolation };

/**
 * The shim's name for a rule the emulator's channel enforced (vmbus/kmcl-rules.ts): the
 * rules both check keep the shim's name, so a violation reads the same whichever side
 * saw it first; the others are `kmcl.misuse`.
 */
function shimRule(err: KmclUsageError): ViolationRule {
  switch (err.violation?.rule) {
    case 'packet-leak':
      return 'kmcl.packet-leak';
    case 'send-after-suspend':
      return 'kmcl.send-after-suspend';
    default:
      return 'kmcl.misuse';
  }
}

function kmclObject(err: KmclUsageError): string {
  const v = err.violation;
  if (!v) return '';
  return v.packet ? `channel ${v.ch}, packet ${v.packet}` : `channel ${v.ch}`;
}

/** Compiled modules by their bytes' object: a driver loaded again (explore: once per schedule) is not compiled again. */
const modules = new WeakMap<Uint8Array, WebAssembly.Module>();

function compiled(wasm: Uint8Array): WebAssembly.Module {
  let m = modules.get(wasm);
  if (!m) modules.set(wasm, (m = new WebAssembly.Module(wasm)));
  return m;
}
