// A device's Linux guest driver (a VMBus kernel module: the sample's lab/drivers/guest-linux,
// blockq's devices/blockq/c/guest-linux) running on the emulator: built from the device's
// recipe (world `linux`) to wasm32 against the stand-in kernel API, loaded as insmod
// loads it (module parameters, then init), probed by the VMBus core for each offer,
// driven through its debugfs control file and read through its debugfs trace and
// counters files, exactly as the lab does over SSH. Its channels talk to the rings in guest memory directly.
//
// Its whole state is guest memory: `image()` is the module's linear memory and the
// shim's tables (runtime-image.ts, LinuxShim.image), and `CGuestLinux.revive` builds the
// driver again from one, as a restored VM's kernel finds its module where it was.

import type { IncomingRing, OutgoingRing } from '../../vmbus/ring.ts';
import { buildDriver, type DriverRecipe } from './build.ts';
import { kernelImports, mergeImports } from './kernel-shim.ts';
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from './irql.ts';
import { LinuxShim } from './linux-shim.ts';
import { tagText } from './pool.ts';
import { DriverRuntime } from './runtime.ts';
import { checkRuntimeImage, fitsRuntime, restoreRuntime, runtimeImage, type RuntimeImage } from './runtime-image.ts';
import { checkLinuxShimImage } from './linux-shim-image.ts';
import type { LinuxShimImage } from './linux-shim.ts';
import { violation } from './violations.ts';
import { RestoreError } from '../../vmbus/saved-state.ts';

const SHIM_TAG = 0x6d696853; // 'Shim'

export interface CGuestLinuxOptions {
  /** how the device's module builds (world `linux`); its debugfs folder holds `control`, `trace` and `counters` */
  recipe: DriverRecipe;
  now: () => number;
  ringPages?: number;
  /** the trace buffer's size (module parameter trace_kib; the module's default is 4096) */
  traceKib?: number;
  replace?: Readonly<Record<string, string>>;
  hangCalls?: number;
}

/** The driver as a saved VM holds it (plain data). */
export interface CGuestLinuxImage {
  runtime: RuntimeImage;
  linux: LinuxShimImage;
  /** channel id -> its struct hv_device (the VMBus core's record of the probed device) */
  devices: Array<[id: number, hdev: number]>;
  /** channels whose interrupt is raised and has not run yet */
  pending: number[];
  /** the bench's open trace file: its read buffer and file position, in the driver's memory; null before the first read */
  reader: [buf: number, pos: number] | null;
}

/** A revived channel's rings until `bind`: using them is a bench bug. */
const UNBOUND = {
  out: undefined as unknown as OutgoingRing,
  in: undefined as unknown as IncomingRing,
  signalHost: (): void => {
    throw new Error('guest-linux: a revived channel was used before its rings were bound');
  },
};

/** Bytes per read of the trace file (`readNew`). */
const READ_CHUNK = 16384;

export class CGuestLinux {
  readonly rt: DriverRuntime;
  readonly linux: LinuxShim;
  private readonly devices = new Map<number, number>();
  private readonly pending = new Set<number>();
  private reader: [buf: number, pos: number] | null = null;
  /** where the module's `jiffies` is: written before every call, and left out of the state key */
  readonly jiffiesAt: number;

  /** Its instance went to a driver revived into it (`spare`): this one must not be used again. */
  private spent = false;

  /**
   * Loads the module (`insmod` with its parameters, then init); with `from`, revives it
   * from an image instead (checked first: a malformed one is a RestoreError, and nothing
   * is changed). `spare`: a driver of the same build that nobody uses any more (the
   * state a restore replaced): the image goes into its instance, reset in place, when
   * its memory fits, rather than into a new instance (mapping a new instance's memory
   * was most of a restore's cost). Either way the driver is the one the image holds.
   */
  constructor(opts: CGuestLinuxOptions, from?: unknown, spare?: CGuestLinux) {
    if (from !== undefined && spare !== undefined && !spare.spent) {
      const img = checkImage(from, spare.rt);
      if (fitsRuntime(spare.rt, img.runtime)) {
        spare.spent = true;
        this.rt = spare.rt;
        this.linux = spare.linux;
        this.jiffiesAt = spare.jiffiesAt;
        this.rt.reuse(opts.now);
        this.revive(img, false);
        return;
      }
    }
    const built = buildDriver(opts.recipe, opts.replace ? { replace: opts.replace } : {});
    this.rt = new DriverRuntime(opts.recipe.name, { now: opts.now, hangCalls: opts.hangCalls });
    this.linux = new LinuxShim(this.rt);
    this.rt.instantiate(built.wasm, mergeImports(this.linux.imports(), kernelImports(this.rt)));
    this.jiffiesAt = this.rt.callExport('shim_jiffies', PASSIVE_LEVEL) >>> 0;
    if (from !== undefined) {
      this.revive(checkImage(from, this.rt), true);
      return;
    }
    if (opts.ringPages !== undefined) this.rt.mem.setU32(this.call('shim_param_ring_pages', PASSIVE_LEVEL), opts.ringPages);
    if (opts.traceKib !== undefined) this.rt.mem.setU32(this.call('shim_param_trace_kib', PASSIVE_LEVEL), opts.traceKib);
    const st = this.call('shim_linux_init', PASSIVE_LEVEL) | 0;
    if (st !== 0) throw new Error(`guest-linux: module init failed with ${st}`);
  }

  /** Puts a checked image into this driver's runtime (`fresh`: a new instance nothing ran in). */
  private revive(img: CGuestLinuxImage, fresh: boolean): void {
    restoreRuntime(this.rt, img.runtime, { fresh });
    // No rings yet: `bind` gives each channel the restored VM's before anything runs.
    this.linux.restore(img.linux, () => UNBOUND);
    for (const [id, hdev] of img.devices) this.devices.set(id, hdev);
    for (const id of img.pending) this.pending.add(id);
    this.reader = img.reader;
  }

  /**
   * The driver's state now, as a saved VM holds it (a copy; `live`: its memory a view of
   * the driver's, valid until the driver next runs). Between entries only.
   */
  image(live = false): CGuestLinuxImage {
    return { runtime: runtimeImage(this.rt, live), linux: this.linux.image(), devices: [...this.devices], pending: [...this.pending], reader: this.reader };
  }

  /** The VMBus core's and the bench's tables beside the shim's (as `image` holds them), for the state key. */
  tables(): Pick<CGuestLinuxImage, 'devices' | 'pending' | 'reader'> {
    return { devices: [...this.devices], pending: [...this.pending], reader: this.reader };
  }

  /** Channel `id` reads and writes these rings (the restored VM's) and signals the host through `signalHost`. */
  bind(id: number, rings: { out: OutgoingRing; in: IncomingRing }, signalHost: (w: 'interrupt' | 'writable') => void): void {
    const c = this.linux.channels.get(id);
    if (!c) throw new Error(`guest-linux: no channel ${id} to bind`);
    c.out = rings.out;
    c.in = rings.in;
    c.signalHost = signalHost;
  }

  /**
   * Brings the module's jiffies up to the scheduler's clock: before every entry into the
   * driver (a call, the channel callback, delayed work), as a kernel's jiffies is always
   * current; a driver that compares due times with jiffies in its callbacks relies on it.
   */
  private tick(): void {
    this.rt.mem.setU32(this.jiffiesAt, Math.floor(this.rt.opts.now()));
  }

  /** Calls into the module with jiffies brought up to the scheduler's clock. */
  private call(name: string, level: number, ...args: unknown[]): number {
    if (this.spent) throw new Error(`${this.rt.name}: this driver's instance was handed to a revived one (a bench bug)`);
    this.tick();
    return this.rt.callExport(name, level, ...args);
  }

  /** The VMBus core offers channel `id` (instance GUID) on these rings: probe. */
  offer(id: number, instance: string, rings: { out: OutgoingRing; in: IncomingRing }, signalHost: (w: 'interrupt' | 'writable') => void): number {
    this.dropScratch(id);
    this.linux.channels.set(id, { id, out: rings.out, in: rings.in, signalHost, open: false, callback: 0, context: 0, current: null, scratch: 0 });
    const pool = this.rt.pool;
    const inst = pool.alloc(16, SHIM_TAG, 'shim');
    const result = pool.alloc(4, SHIM_TAG, 'shim');
    this.rt.mem.setGuid(inst, instance);
    const hdev = this.call('shim_linux_probe', PASSIVE_LEVEL, this.linux.driver, inst, id, result) >>> 0;
    const st = this.rt.mem.u32(result) | 0;
    pool.free(inst, SHIM_TAG, 'probe');
    pool.free(result, SHIM_TAG, 'probe');
    if (hdev) this.devices.set(id, hdev);
    return st;
  }

  /**
   * The host rescinded channel `id`'s offer (or the guest let it go): the VMBus core
   * removes the device, which closes the channel (the driver's remove), then frees its
   * objects. Its raised interrupt goes with it. False when the channel had no device.
   */
  remove(id: number): boolean {
    const hdev = this.devices.get(id);
    if (hdev === undefined) return false;
    this.devices.delete(id);
    this.pending.delete(id);
    this.call('shim_linux_remove', PASSIVE_LEVEL, this.linux.driver, hdev);
    this.dropScratch(id);
    return true;
  }

  /** Whether channel `id` has a probed device (offered and not removed since). */
  hasDevice(id: number): boolean {
    return this.devices.has(id);
  }

  /** The packet copy the shim keeps for channel `id`'s iterator, freed with the channel. */
  private dropScratch(id: number): void {
    const c = this.linux.channels.get(id);
    if (c?.scratch) this.rt.pool.free(c.scratch, 0x6c616d6b, 'vmbus channel free');
    if (c) c.scratch = 0;
  }

  /** The host signalled channel `id`: the interrupt runs the channel callback (softirq). */
  signal(id: number): void {
    this.pending.add(id);
  }

  /** Runs one pending channel callback; false when none is pending. */
  runInterrupt(): boolean {
    for (const id of this.pending) {
      this.pending.delete(id);
      const c = this.linux.channels.get(id);
      if (c?.open) {
        this.tick();
        this.rt.callback(c.callback, 'onchannel_callback', DISPATCH_LEVEL, c.context);
      }
      return true;
    }
    return false;
  }

  /** Whether channel `id` has an interrupt raised that has not run. */
  interrupted(id: number): boolean {
    return this.pending.has(id);
  }

  /** Runs channel `id`'s callback for its raised interrupt (it reads everything in the ring); false if none was raised. */
  runInterruptOf(id: number): boolean {
    if (!this.pending.delete(id)) return false;
    const c = this.linux.channels.get(id);
    if (c?.open) {
      this.tick();
      this.rt.callback(c.callback, 'onchannel_callback', DISPATCH_LEVEL, c.context);
    }
    return true;
  }

  /**
   * What the trace file holds past what this reader read before (`cat` from where the
   * last one stopped, one open file kept for the run): the lines written since. Once
   * `clearAfter` bytes were read, `trace-clear` empties the buffer and reading starts
   * again at 0, so a long run never fills it (the counters' trace_dropped stays 0).
   */
  readNew(clearAfter = 64 * 1024): string {
    if (!this.reader) {
      const buf = this.rt.pool.alloc(READ_CHUNK, SHIM_TAG, 'shim');
      this.reader = [buf, this.rt.pool.alloc(8, SHIM_TAG, 'shim')];
      this.rt.mem.setU64(this.reader[1], 0n);
    }
    const [buf, pos] = this.reader;
    let text = '';
    for (;;) {
      const n = this.call('shim_fops_read', PASSIVE_LEVEL, this.fops('trace'), buf, READ_CHUNK, pos) | 0;
      if (n < 0) throw new Error(`guest-linux: reading trace failed with ${n}`);
      if (n === 0) break;
      text += new TextDecoder().decode(this.rt.mem.view(buf, n));
      // A short read is the end of what is there (the trace file hands out all it has, up
      // to the count): no read for the 0 after it. Each read has the driver allocate and
      // free a 64 KiB chunk, and the pool's quarantine keeps every one of them poisoned.
      if (n < READ_CHUNK) break;
    }
    if (this.rt.mem.u32(pos) >= clearAfter) {
      const r = this.control('trace-clear');
      if (r < 0) throw new Error(`guest-linux: trace-clear failed with ${r}`);
      this.rt.mem.setU64(pos, 0n);
    }
    return text;
  }

  runWork(now: number): number {
    if (this.linux.nextWorkDue() === null) return 0;
    this.tick();
    return this.linux.runWork(now);
  }

  nextWorkDue(): number | null {
    return this.linux.nextWorkDue();
  }

  /** `echo TEXT > control`: the byte count, or -errno for a refused command. */
  control(text: string): number {
    const bytes = new TextEncoder().encode(text);
    const buf = this.rt.pool.alloc(bytes.length, SHIM_TAG, 'shim');
    this.rt.mem.write(buf, bytes);
    const r = this.call('shim_fops_write', PASSIVE_LEVEL, this.fops('control'), buf, bytes.length) | 0;
    this.rt.pool.free(buf, SHIM_TAG, 'write');
    return r;
  }

  /** `cat FILE`: the whole file. */
  read(file: string): string {
    const size = 65536;
    const buf = this.rt.pool.alloc(size, SHIM_TAG, 'shim');
    const pos = this.rt.pool.alloc(8, SHIM_TAG, 'shim');
    const parts: Uint8Array[] = [];
    for (;;) {
      const n = this.call('shim_fops_read', PASSIVE_LEVEL, this.fops(file), buf, size, pos) | 0;
      if (n < 0) throw new Error(`guest-linux: reading ${file} failed with ${n}`);
      if (n === 0) break;
      parts.push(this.rt.mem.read(buf, n));
    }
    this.rt.pool.free(buf, SHIM_TAG, 'read');
    this.rt.pool.free(pos, SHIM_TAG, 'read');
    return new TextDecoder().decode(Buffer.concat(parts));
  }

  trace(): Array<Record<string, unknown>> {
    return this.read('trace').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  private fops(name: string): number {
    const f = this.linux.files.get(name);
    if (f === undefined) throw new Error(`guest-linux: no debugfs file ${name}`);
    return f;
  }

  /** rmmod: every device removed, the module's exit, then the pool must be empty. */
  unload(): void {
    for (const [id, hdev] of this.devices) {
      this.call('shim_linux_remove', PASSIVE_LEVEL, this.linux.driver, hdev);
      this.devices.delete(id);
    }
    this.call('shim_linux_exit', PASSIVE_LEVEL);
    for (const c of this.linux.channels.values()) if (c.scratch) this.rt.pool.free(c.scratch, 0x6c616d6b, 'unload');
    if (this.reader) for (const at of this.reader) this.rt.pool.free(at, SHIM_TAG, 'unload');
    this.rt.pool.verifyAll('module exit');
    const leaks = this.rt.pool.driverLeaks();
    if (leaks.length > 0) {
      throw violation('pool.leak', 'module exit', leaks.map((a) => `'${tagText(a.tag)}' ${a.size} bytes`).join(', '), `${leaks.length} allocation(s) never freed; the first at ${leaks[0]!.site.join(' <- ')}`);
    }
  }
}

/** Checks every field of a decoded image against the driver it is revived into. */
function checkImage(image: unknown, rt: DriverRuntime): CGuestLinuxImage {
  const bad = (what: string): never => {
    throw new RestoreError('bad-record', `the C guest driver's image ${what}`);
  };
  if (typeof image !== 'object' || image === null || Array.isArray(image)) bad('is not a record');
  const img = image as Record<string, unknown>;
  const isIdList = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff);
  if (!Array.isArray(img.devices) || !img.devices.every((d) => Array.isArray(d) && d.length === 2 && isIdList(d))) bad('devices is not a list of [channel, address]');
  if (!isIdList(img.pending)) bad('pending is not a list of channels');
  if (img.reader !== null && !(Array.isArray(img.reader) && img.reader.length === 2 && isIdList(img.reader))) bad('reader is not null or [buffer, position]');
  checkLinuxShimImage(img.linux);
  checkRuntimeImage(img.runtime, rt);
  const ids = new Set((img.linux as LinuxShimImage).channels.map((c) => c.id));
  for (const id of [...(img.devices as Array<[number, number]>).map((d) => d[0]), ...(img.pending as number[])]) if (!ids.has(id)) bad(`names channel ${id}, which its shim tables do not hold`);
  return img as unknown as CGuestLinuxImage;
}
