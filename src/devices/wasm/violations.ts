// A broken rule found while a C driver runs on the emulator, reported the way Driver
// Verifier reports one: the rule, the call that broke it, where in the driver, and the
// object involved. Like a Driver Verifier bug check, the first violation stops the
// driver: the shim throws it out of the import, through the driver's frames, to
// whoever called into the driver.

/** The rules the shim checks (lab/drivers/README.md, "Reading a violation"). */
export type ViolationRule =
  | 'irql.passive-only' // a PASSIVE_LEVEL-only call made above PASSIVE_LEVEL
  | 'irql.not-restored' // a callback returned at another IRQL than it was called at
  | 'spinlock.misuse' // acquired twice, or released while not held
  | 'pool.double-free'
  | 'pool.bad-free' // a pointer the pool never handed out
  | 'pool.wrong-tag'
  | 'pool.overrun' // a guard byte after (or before) the block was overwritten
  | 'pool.write-after-free' // the poison of a freed block was overwritten
  | 'pool.leak' // allocations left when the driver unloads
  | 'kmcl.misuse' // a KMCL call the emulator refuses as a driver bug (KmclUsageError)
  | 'kmcl.send-after-suspend' // a packet sent on a channel paused by its own driver
  | 'kmcl.server-only' // a server-only call on a client endpoint
  | 'kmcl.packet-leak' // packets allocated and never freed
  | 'kmcl.channel-leak' // channels allocated and never cleaned up
  | 'kmcl.bad-handle' // a handle that is not (or no longer) a live KMCL object
  | 'wdf.misuse'
  | 'trace.misuse' // a TraceLoggingWrite whose field descriptors are not the stand-in header's
  | 'hang'; // a driver loop that makes no progress

export interface ViolationReport {
  rule: ViolationRule;
  /** the kernel function the driver called (or the callback that returned) */
  call: string;
  /** the driver's own frames, innermost first, e.g. ["VspChannelSave", "VspRunCommand"] */
  site: string[];
  /** the object: a handle, an address, an allocation's tag and size */
  object: string;
  detail: string;
}

export class DriverViolation extends Error {
  readonly report: ViolationReport;
  /** the trace's channel number, set by the first caller that knows it (the driver does not say) */
  ch: number | undefined;
  constructor(report: ViolationReport) {
    super(`driver violation ${report.rule} in ${report.call} at ${report.site.join(' <- ') || '(driver entry)'}: ${report.detail} [${report.object}]`);
    this.name = 'DriverViolation';
    this.report = report;
  }
}

/** Names of the wasm functions on the stack, innermost first (the driver's own frames). */
export function driverFrames(limit = 12): string[] {
  return framesOf(captureStack().stack ?? '', limit);
}

/**
 * The stack here, captured but not yet written out as text: V8 formats it only when
 * `stack` is read, which is most of the cost. The pool keeps one per allocation and
 * reads it only for a leak report (framesOf).
 */
export function captureStack(): { stack?: string } {
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, captureStack);
  Error.stackTraceLimit = saved;
  return holder;
}

/** The driver's own frames in a captured stack, innermost first. */
export function framesOf(stack: string, limit = 12): string[] {
  const out: string[] = [];
  for (const line of stack.split('\n')) {
    // V8 prints a wasm frame as "at Name (wasm://wasm/<hash>:wasm-function[12]:0x3b4)".
    const m = /at (?:.*\.)?([A-Za-z_$][\w$]*) \(wasm:\/\//.exec(line);
    if (m && !m[1]!.startsWith('shim_')) out.push(m[1]!);
    if (out.length >= limit) break;
  }
  return out;
}

export function violation(rule: ViolationRule, call: string, object: string, detail: string): DriverViolation {
  return new DriverViolation({ rule, call, site: driverFrames(), object, detail });
}

/** Runs f; a driver violation out of it names channel `ch` unless a deeper caller did. */
export function namingChannel<T>(ch: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DriverViolation) e.ch ??= ch;
    throw e;
  }
}

/**
 * What a C driver's host or guest face answers when asked to replay: never asked, since
 * `bench check`'s model is the device's TypeScript twins (its payload rule).
 */
export function replayRunsTwins(): never {
  throw new Error('replay (bench check) runs the TypeScript twins, not the C drivers');
}
