// A device's Windows driver (KMDF + KMCL) running on the emulator: built to wasm32 from
// the device's recipe, loaded as PnP loads it (DriverEntry, EvtDriverDeviceAdd,
// EvtDevicePrepareHardware), driven through its own control interface (any IOCTL, by
// `ioctl`; or, for a driver whose control interface is a text command IOCTL and a text
// counters IOCTL as the sample's and blockq's are, `command` and `counters` with the
// codes the device gives), and unloaded with Driver Verifier's unload checks (pool
// leaks, channels and packets never freed). devices/sample/c/vsp.ts and
// devices/blockq/c/vsp.ts are two.

import type { GapChoices } from '../../vmbus/choices.ts';
import type { TraceSink } from '../../trace/sink.ts';
import { buildDriver, type DriverRecipe } from './build.ts';
import { KmclShim, type KmclHooks, type KmclShimOptions } from './kmcl-shim.ts';
import { kernelImports, mergeImports } from './kernel-shim.ts';
import { PASSIVE_LEVEL } from './irql.ts';
import { DriverRuntime } from './runtime.ts';
import { TraceShim } from './trace-shim.ts';
import { tagText } from './pool.ts';
import { violation } from './violations.ts';
import { WdfShim, type IoctlResult } from './wdf-shim.ts';
import { ntStatusHex } from '../../vmbus/status.ts';

export interface WindowsDriverOptions {
  choices: GapChoices;
  sink: TraceSink;
  now: () => number;
  /** -D switches for the build */
  defines?: readonly string[];
  /** driver sources replaced by other files (buildDriver's `replace`): a test's unfixed file */
  replace?: Readonly<Record<string, string>>;
  faults?: KmclShimOptions['faults'];
  /** the run's platform bugs (`--fault`), on every channel object the driver allocates */
  platformFaults?: KmclShimOptions['platformFaults'];
  hangCalls?: number;
  /** a leak names the allocation's whole driver stack (RuntimeOptions.allocationStacks) */
  allocationStacks?: boolean;
}

/**
 * A text control interface's two IOCTL codes: one command line in, a status out; and the
 * counters out, one "key=value ..." line per channel. The device's own numbers.
 */
export interface TextControlCodes {
  command: number;
  counters: number;
}

export class DriverCommandError extends Error {
  constructor(driver: string, command: string, status: number) {
    super(`${driver} refused '${command}': status ${ntStatusHex(status)}`);
    this.name = 'DriverCommandError';
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class WindowsDriver {
  readonly rt: DriverRuntime;
  readonly wdf: WdfShim;
  readonly kmcl: KmclShim;
  readonly trace: TraceShim;
  private readonly control: TextControlCodes | null;

  /** Its instance went to a driver built into it (`reuse`): this one must not be used again. */
  private spent = false;

  /**
   * `reuse`: a driver of the same build and options that nobody uses any more (a guest
   * state a restore replaced), whose instance and shims this one takes, emptied as new
   * ones are, for a revive to fill (runtime-image.ts restoreRuntime, not fresh): mapping a
   * new instance's memory is most of a restore's cost. Nothing is loaded then.
   */
  constructor(recipe: DriverRecipe, side: 'host' | 'guest', opts: WindowsDriverOptions, hooks: KmclHooks, control: TextControlCodes | null = null, reuse?: WindowsDriver) {
    this.control = control;
    if (reuse) {
      if (reuse.spent) throw new Error(`${reuse.rt.name}: a driver's instance is reused once`);
      reuse.spent = true;
      this.rt = reuse.rt;
      this.wdf = reuse.wdf;
      this.kmcl = reuse.kmcl;
      this.trace = reuse.trace;
      this.rt.reuse(opts.now);
      this.wdf.reset();
      this.kmcl.reset({ ...this.kmcl.opts, hooks });
      this.trace.reset(opts.sink);
      return;
    }
    const built = buildDriver(recipe, { defines: opts.defines ?? [], ...(opts.replace ? { replace: opts.replace } : {}) });
    this.rt = new DriverRuntime(recipe.name, { now: opts.now, hangCalls: opts.hangCalls, allocationStacks: opts.allocationStacks });
    this.wdf = new WdfShim(this.rt);
    this.kmcl = new KmclShim(this.rt, { choices: opts.choices, faults: opts.faults, platformFaults: opts.platformFaults, hooks });
    this.trace = new TraceShim(this.rt, opts.sink, side);
    this.rt.instantiate(built.wasm, mergeImports(this.kmcl.imports(), this.wdf.imports(), this.trace.imports(), kernelImports(this.rt)));
  }

  /** DriverEntry alone: PnP adds no device yet (a guest driver's devices come with the channels' offers). */
  protected driverEntry(): void {
    const st = this.rt.callExport('DriverEntry', PASSIVE_LEVEL, this.rt.handle(0xd), 0) >>> 0;
    if (st !== 0) throw new Error(`${this.rt.name}: DriverEntry failed with 0x${st.toString(16)}`);
  }

  /** DriverEntry, then the device is added and its hardware prepared. */
  protected load(): void {
    this.driverEntry();
    const add = this.wdf.addDevice();
    if (add !== 0) throw new Error(`${this.rt.name}: device start failed with 0x${add.toString(16)}`);
  }

  /** One DeviceIoControl: the driver's completion status, information and output bytes. */
  ioctl(code: number, input: Uint8Array, outputSize: number): IoctlResult {
    return this.wdf.ioctl(code, input, outputSize);
  }

  private codes(): TextControlCodes {
    if (!this.control) throw new Error(`${this.rt.name}: the device gave no text control IOCTLs; use ioctl()`);
    return this.control;
  }

  /** The command IOCTL: the NTSTATUS the driver completed the request with. */
  command(text: string): number {
    return this.wdf.ioctl(this.codes().command, enc.encode(text), 0).status;
  }

  /** Like `command`, but a refusal is an error. */
  run(text: string): void {
    const st = this.command(text);
    if (st !== 0) throw new DriverCommandError(this.rt.name, text, st);
  }

  /** The counters IOCTL: one "key=value ..." line per channel, parsed (parseCounters). */
  counters(): Array<Record<string, number>> {
    const r = this.wdf.ioctl(this.codes().counters, new Uint8Array(0), 16384);
    return parseCounters(dec.decode(r.output));
  }

  nextTimerDue(): number | null {
    return this.wdf.nextTimerDue();
  }

  runTimers(now: number): number {
    return this.wdf.runTimers(now);
  }

  runWorkItems(): number {
    return this.wdf.runWorkItems();
  }

  /** Driver Verifier at unload: the driver's pool, channels and packets must all be gone. */
  unload(): void {
    this.wdf.unload();
    this.kmcl.checkUnload();
    this.rt.pool.verifyAll('EvtDriverUnload');
    const leaks = this.rt.pool.driverLeaks();
    if (leaks.length > 0) {
      const first = leaks[0]!;
      throw violation('pool.leak', 'EvtDriverUnload', leaks.map((a) => `'${tagText(a.tag)}' ${a.size} bytes at 0x${a.at.toString(16)}`).join(', '),
        `${leaks.length} allocation(s) never freed; the first was allocated at ${first.site.join(' <- ') || '(unknown)'}`);
    }
  }
}

/**
 * The counters IOCTL's text: one row per line that is not blank, each white-space
 * separated `key=value` of it one entry, the value the number of the text between the
 * first `=` and the next (NaN with no `=`), a later key's value replacing an earlier one.
 * Scanned in one pass rather than split by a regular expression into an array per pair:
 * the bench reads the counters at every save point of an explore, and at every tick a
 * timer may be due (a fiftieth of explore --devices c).
 * Invariant: the rows are those of the split-based reading, for any text
 * (test/devices/wasm/windows-driver.test.ts).
 */
export function parseCounters(text: string): Array<Record<string, number>> {
  const rows: Array<Record<string, number>> = [];
  const n = text.length;
  let row: Record<string, number> | null = null;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      row = null;
      i++;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }
    // A token: [i, end), up to white space or the line's end.
    let end = i;
    let eq = -1;
    let eq2 = -1;
    for (; end < n; end++) {
      const d = text.charCodeAt(end);
      if (d === 10 || isSpace(d)) break;
      if (d === 61) {
        if (eq < 0) eq = end;
        else if (eq2 < 0) eq2 = end;
      }
    }
    if (row === null) rows.push((row = {}));
    const key = eq < 0 ? text.slice(i, end) : text.slice(i, eq);
    const value = eq < 0 ? Number.NaN : numberAt(text, eq + 1, eq2 < 0 ? end : eq2);
    // Defined, not assigned, as Object.fromEntries does: '__proto__' is then a key like any other.
    if (key === '__proto__') Object.defineProperty(row, key, { value, writable: true, enumerable: true, configurable: true });
    else row[key] = value;
    i = end;
  }
  return rows;
}

/**
 * Number(text.slice(from, to)): a counter is a run of at most 15 decimal digits (exact as
 * it is summed), read without making its text; anything else goes through Number.
 */
function numberAt(text: string, from: number, to: number): number {
  if (to > from && to - from <= 15) {
    let v = 0;
    let i = from;
    for (; i < to; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (i === to) return v;
  }
  return Number(text.slice(from, to));
}

/** What \s matches in a regular expression (line terminators and Unicode spaces included). */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}
