// The sample Linux guest driver (lab/drivers/guest-linux) running on the emulator: built
// to wasm32 against the stand-in kernel API, loaded as insmod loads it (module
// parameters, then init), probed by the VMBus core for each offer, driven through its
// debugfs control file and read through its debugfs trace and counters files, exactly
// as the lab does over SSH. Its channels talk to the rings in guest memory directly.

import type { IncomingRing, OutgoingRing } from '../../../src/vmbus/ring.ts';
import { buildDriver } from '../../../src/devices/wasm/build.ts';
import { guestLinuxRecipe } from './recipes.ts';
import { kernelImports, mergeImports } from '../../../src/devices/wasm/kernel-shim.ts';
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from '../../../src/devices/wasm/irql.ts';
import { LinuxShim } from '../../../src/devices/wasm/linux-shim.ts';
import { tagText } from '../../../src/devices/wasm/pool.ts';
import { DriverRuntime } from '../../../src/devices/wasm/runtime.ts';
import { violation } from '../../../src/devices/wasm/violations.ts';

const SHIM_TAG = 0x6d696853; // 'Shim'

export interface CGuestLinuxOptions {
  now: () => number;
  ringPages?: number;
  replace?: Readonly<Record<string, string>>;
  hangCalls?: number;
}

export class CGuestLinux {
  readonly rt: DriverRuntime;
  readonly linux: LinuxShim;
  private readonly devices = new Map<number, number>();
  private readonly pending = new Set<number>();

  constructor(opts: CGuestLinuxOptions) {
    const built = buildDriver(guestLinuxRecipe(), opts.replace ? { replace: opts.replace } : {});
    this.rt = new DriverRuntime('guest-linux', { now: opts.now, hangCalls: opts.hangCalls });
    this.linux = new LinuxShim(this.rt);
    this.rt.instantiate(built.wasm, mergeImports(this.linux.imports(), kernelImports(this.rt)));
    if (opts.ringPages !== undefined) this.rt.mem.setU32(this.call('shim_param_ring_pages', PASSIVE_LEVEL), opts.ringPages);
    const st = this.call('shim_linux_init', PASSIVE_LEVEL) | 0;
    if (st !== 0) throw new Error(`guest-linux: module init failed with ${st}`);
  }

  /** Calls into the module with jiffies brought up to the scheduler's clock. */
  private call(name: string, level: number, ...args: unknown[]): number {
    const j = this.rt.callExport('shim_jiffies', this.rt.irql.level);
    this.rt.mem.setU32(j, Math.floor(this.rt.opts.now()));
    return this.rt.callExport(name, level, ...args);
  }

  /** The VMBus core offers channel `id` (instance GUID) on these rings: probe. */
  offer(id: number, instance: string, rings: { out: OutgoingRing; in: IncomingRing }, signalHost: (w: 'interrupt' | 'writable') => void): number {
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

  /** The host signalled channel `id`: the interrupt runs the channel callback (softirq). */
  signal(id: number): void {
    this.pending.add(id);
  }

  /** Runs one pending channel callback; false when none is pending. */
  runInterrupt(): boolean {
    for (const id of this.pending) {
      this.pending.delete(id);
      const c = this.linux.channels.get(id);
      if (c?.open) this.rt.callback(c.callback, 'onchannel_callback', DISPATCH_LEVEL, c.context);
      return true;
    }
    return false;
  }

  runWork(now: number): number {
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
    this.rt.pool.verifyAll('module exit');
    const leaks = this.rt.pool.driverLeaks();
    if (leaks.length > 0) {
      throw violation('pool.leak', 'module exit', leaks.map((a) => `'${tagText(a.tag)}' ${a.size} bytes`).join(', '), `${leaks.length} allocation(s) never freed; the first at ${leaks[0]!.site.join(' <- ')}`);
    }
  }
}
