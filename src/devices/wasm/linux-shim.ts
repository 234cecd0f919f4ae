// The Linux kernel API the sample guest driver uses (lab/drivers/linux-standin), over
// the emulator: VMBus over the guest's rings in guest memory, delayed work from the
// scheduler's clock, debugfs files the harness reads and writes, locks, kmalloc and the
// xarray. The VMBus core's calls into the driver (probe, remove, the channel callback)
// go through the C glue (src/devices/wasm/c/linux-glue.c) and the function table.
//
// Checks, Linux's own debugging options made strict: sleeping in atomic context
// (mutex_lock, usleep_range, GFP_KERNEL allocations, cancel_delayed_work_sync under a
// spin lock or in the channel callback: CONFIG_DEBUG_ATOMIC_SLEEP's "BUG: sleeping
// function called from invalid context", reported as irql.passive-only), a lock taken
// twice or released unheld (lockdep), and the pool's checks on kmalloc/kfree (KASAN).

import type { IncomingRing, OutgoingRing, PacketView } from '../../vmbus/ring.ts';
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from './irql.ts';
import { formatC } from './printf.ts';
import type { DriverRuntime, ImportTable } from './runtime.ts';
import { violation } from './violations.ts';

const KMALLOC_TAG = 0x6c616d6b; // 'kmal'
const EAGAIN = 11;
const EBUSY = 16;

export interface LinuxChannel {
  id: number;
  out: OutgoingRing;
  in: IncomingRing;
  /** tells the host side: new data ('interrupt') or room freed ('writable') */
  signalHost: (what: 'interrupt' | 'writable') => void;
  open: boolean;
  callback: number;
  context: number;
  /** the packet the iterator handed out, advanced past on the next call */
  current: PacketView | null;
  scratch: number;
}

interface Work {
  func: number;
  due: number;
}

/**
 * The shim's tables as plain data, for a snapshot of the driver beside its memory
 * (runtime-image.ts). A channel's rings are not in it: they are guest memory the VM's
 * saved state carries, and the restored channel is bound to the restored rings (`bind`).
 */
export interface LinuxShimImage {
  driver: number;
  channels: Array<{ id: number; open: boolean; callback: number; context: number; scratch: number }>;
  files: Array<[name: string, fops: number]>;
  locks: Array<[at: number, held: boolean, saved: number]>;
  mutexes: number[];
  works: Array<[at: number, func: number, due: number]>;
  xarrays: Array<[at: number, entries: Array<[index: number, entry: number]>]>;
}

export class LinuxShim {
  private readonly rt: DriverRuntime;
  driver = 0;
  readonly channels = new Map<number, LinuxChannel>();
  readonly files = new Map<string, number>();
  private readonly locks = new Map<number, { held: boolean; saved: number }>();
  private readonly mutexes = new Set<number>();
  private readonly works = new Map<number, Work>();
  private readonly xarrays = new Map<number, Map<number, number>>();
  readonly log: string[] = [];
  /** the guest thread sleeps: whoever plays the host may run meanwhile */
  onSleep: (us: number) => void = () => {};

  constructor(rt: DriverRuntime) {
    this.rt = rt;
  }

  /** The tables now. Between entries only: no packet may be half read (`current`). */
  image(): LinuxShimImage {
    for (const c of this.channels.values()) {
      if (c.current) throw new Error(`guest-linux: channel ${c.id} is inside a packet iteration; a snapshot is taken between entries`);
    }
    return {
      driver: this.driver,
      channels: [...this.channels.values()].map((c) => ({ id: c.id, open: c.open, callback: c.callback, context: c.context, scratch: c.scratch })),
      files: [...this.files],
      locks: [...this.locks].map(([at, l]) => [at, l.held, l.saved]),
      mutexes: [...this.mutexes],
      works: [...this.works].map(([at, w]) => [at, w.func, w.due]),
      xarrays: [...this.xarrays].map(([at, x]) => [at, [...x]]),
    };
  }

  /**
   * Puts the tables back. Each channel's rings and host doorbell come from `bind`: the
   * restored VM's rings, which the channel reads and writes from now on.
   */
  restore(img: LinuxShimImage, bind: (id: number) => Pick<LinuxChannel, 'out' | 'in' | 'signalHost'>): void {
    // A reused shim (DriverRuntime.reuse) starts as a new one would: no log, nobody to run while asleep.
    this.log.length = 0;
    this.onSleep = () => {};
    this.driver = img.driver;
    this.channels.clear();
    for (const c of img.channels) this.channels.set(c.id, { ...c, ...bind(c.id), current: null });
    this.files.clear();
    for (const [name, fops] of img.files) this.files.set(name, fops);
    this.locks.clear();
    for (const [at, held, saved] of img.locks) this.locks.set(at, { held, saved });
    this.mutexes.clear();
    for (const m of img.mutexes) this.mutexes.add(m);
    this.works.clear();
    for (const [at, func, due] of img.works) this.works.set(at, { func, due });
    this.xarrays.clear();
    for (const [at, entries] of img.xarrays) this.xarrays.set(at, new Map(entries));
  }

  private atomic(call: string, what: string): void {
    if (this.rt.irql.level > PASSIVE_LEVEL) {
      throw violation('irql.passive-only', call, what, 'a sleeping function called from atomic context (spin lock held, or the channel callback)');
    }
  }

  private chan(ptr: number, call: string): LinuxChannel {
    const id = this.rt.callExport('shim_linux_channel_of', this.rt.irql.level, ptr) >>> 0;
    const c = this.channels.get(id);
    if (!c) throw violation('kmcl.bad-handle', call, `vmbus_channel 0x${(ptr >>> 0).toString(16)}`, 'not a channel the VMBus core offered');
    return c;
  }

  private lock(at: number, call: string): void {
    const l = this.locks.get(at >>> 0) ?? { held: false, saved: 0 };
    if (l.held) throw violation('spinlock.misuse', call, `lock 0x${(at >>> 0).toString(16)}`, 'acquired while already held: a deadlock');
    l.held = true;
    l.saved = this.rt.irql.level;
    this.locks.set(at >>> 0, l);
    this.rt.irql.level = DISPATCH_LEVEL;
  }

  private unlock(at: number, call: string): void {
    const l = this.locks.get(at >>> 0);
    if (!l?.held) throw violation('spinlock.misuse', call, `lock 0x${(at >>> 0).toString(16)}`, 'released while not held');
    l.held = false;
    this.rt.irql.level = l.saved;
  }

  /** Reads the next packet out of the ring into the channel's scratch: descriptor, then payload. */
  private iterate(c: LinuxChannel): number {
    if (c.current) {
      c.in.advance(c.current);
      if (c.in.commit()) c.signalHost('writable');
      c.current = null;
    }
    const v = c.in.peek();
    if (!v) return 0;
    c.current = v;
    const payload = c.in.payload(v);
    const need = 16 + payload.length;
    if (c.scratch) this.rt.pool.free(c.scratch, KMALLOC_TAG, 'hv_pkt_iter_next');
    c.scratch = this.rt.pool.alloc(need, KMALLOC_TAG, 'shim');
    const m = this.rt.mem;
    m.setU16(c.scratch, v.type);
    m.setU16(c.scratch + 2, 2);
    m.setU16(c.scratch + 4, need / 8);
    m.setU16(c.scratch + 6, v.flags);
    m.setU64(c.scratch + 8, BigInt(v.transId));
    m.write(c.scratch + 16, payload);
    return c.scratch;
  }

  private xa(at: number): Map<number, number> {
    let x = this.xarrays.get(at >>> 0);
    if (!x) this.xarrays.set(at >>> 0, (x = new Map()));
    return x;
  }

  private xaFind(xa: number, indexAt: number, after: boolean): number {
    const from = this.rt.mem.u32(indexAt);
    let best: number | null = null;
    for (const k of this.xa(xa).keys()) if ((after ? k > from : k >= from) && (best === null || k < best)) best = k;
    if (best === null) return 0;
    this.rt.mem.setU32(indexAt, best);
    return this.xa(xa).get(best)!;
  }

  imports(): ImportTable {
    const rt = this.rt;
    const m = () => rt.mem;
    const alloc = (n: number, gfp: number, call: string): number => {
      if ((gfp & 0x400) !== 0) this.atomic(call, 'GFP_KERNEL'); // __GFP_DIRECT_RECLAIM: may sleep
      return rt.pool.alloc(n >>> 0, KMALLOC_TAG, 'driver');
    };
    return {
      env: {
        __vmbus_driver_register: (drv: number) => {
          this.driver = drv >>> 0;
          return 0;
        },
        vmbus_driver_unregister: () => void (this.driver = 0),
        vmbus_open: (chan: number, _send: number, _recv: number, _ud: number, _udl: number, cb: number, ctx: number) => {
          this.atomic('vmbus_open', 'channel');
          const c = this.chan(chan, 'vmbus_open');
          Object.assign(c, { open: true, callback: cb >>> 0, context: ctx >>> 0 });
          return 0;
        },
        vmbus_close: (chan: number) => {
          this.atomic('vmbus_close', 'channel');
          const c = this.chan(chan, 'vmbus_close');
          c.open = false;
          c.current = null;
        },
        vmbus_sendpacket: (chan: number, buf: number, len: number, reqid: bigint, type: number, flags: number) => {
          const c = this.chan(chan, 'vmbus_sendpacket');
          if (!c.open) throw violation('kmcl.misuse', 'vmbus_sendpacket', `channel ${c.id}`, 'the channel is not open');
          if (!c.out.tryWrite(type, flags, Number(reqid), m().read(buf, len))) return -EAGAIN;
          if (c.out.commit()) c.signalHost('interrupt');
          return 0;
        },
        hv_pkt_iter_first: (chan: number) => this.iterate(this.chan(chan, 'hv_pkt_iter_first')),
        hv_pkt_iter_next: (chan: number) => this.iterate(this.chan(chan, 'hv_pkt_iter_next')),
        spin_lock: (l: number) => this.lock(l, 'spin_lock'),
        spin_unlock: (l: number) => this.unlock(l, 'spin_unlock'),
        spin_lock_bh: (l: number) => this.lock(l, 'spin_lock_bh'),
        spin_unlock_bh: (l: number) => this.unlock(l, 'spin_unlock_bh'),
        shim_spin_lock_irqsave: (l: number) => {
          this.lock(l, 'spin_lock_irqsave');
          return 0;
        },
        spin_unlock_irqrestore: (l: number) => this.unlock(l, 'spin_unlock_irqrestore'),
        mutex_lock: (mu: number) => {
          this.atomic('mutex_lock', `mutex 0x${(mu >>> 0).toString(16)}`);
          if (this.mutexes.has(mu >>> 0)) throw violation('spinlock.misuse', 'mutex_lock', `mutex 0x${(mu >>> 0).toString(16)}`, 'taken twice: a deadlock');
          this.mutexes.add(mu >>> 0);
        },
        mutex_unlock: (mu: number) => {
          if (!this.mutexes.delete(mu >>> 0)) throw violation('spinlock.misuse', 'mutex_unlock', `mutex 0x${(mu >>> 0).toString(16)}`, 'released while not held');
        },
        kmalloc: (n: number, gfp: number) => alloc(n, gfp, 'kmalloc'),
        kzalloc: (n: number, gfp: number) => alloc(n, gfp, 'kzalloc'),
        kfree: (p: number) => void (p && rt.pool.free(p >>> 0, null, 'kfree')),
        vmalloc: (n: number) => alloc(n, 0x400, 'vmalloc'),
        vfree: (p: number) => void (p && rt.pool.free(p >>> 0, null, 'vfree')),
        copy_from_user: (to: number, from: number, n: number) => {
          this.atomic('copy_from_user', 'user buffer');
          m().write(to, m().read(from, n));
          return 0;
        },
        copy_to_user: (to: number, from: number, n: number) => {
          this.atomic('copy_to_user', 'user buffer');
          m().write(to, m().read(from, n));
          return 0;
        },
        msecs_to_jiffies: (ms: number) => ms >>> 0, // HZ = 1000
        usleep_range: (min: number) => {
          this.atomic('usleep_range', 'sleep');
          this.onSleep(min >>> 0);
        },
        schedule_delayed_work: (dw: number, delay: number) => {
          if (this.works.has(dw >>> 0)) return 0;
          this.works.set(dw >>> 0, { func: m().u32(dw), due: rt.opts.now() + (delay >>> 0) });
          return 1;
        },
        mod_delayed_work: (_wq: number, dw: number, delay: number) => {
          const was = this.works.has(dw >>> 0);
          this.works.set(dw >>> 0, { func: m().u32(dw), due: rt.opts.now() + (delay >>> 0) });
          return was ? 1 : 0;
        },
        cancel_delayed_work_sync: (dw: number) => {
          this.atomic('cancel_delayed_work_sync', `work 0x${(dw >>> 0).toString(16)}`);
          return this.works.delete(dw >>> 0) ? 1 : 0;
        },
        xa_insert_bh: (xa: number, index: number, entry: number) => {
          const x = this.xa(xa);
          if (x.has(index >>> 0)) return -EBUSY;
          x.set(index >>> 0, entry >>> 0);
          return 0;
        },
        xa_erase: (xa: number, index: number) => this.xaErase(xa, index),
        xa_erase_bh: (xa: number, index: number) => this.xaErase(xa, index),
        xa_destroy: (xa: number) => void this.xarrays.delete(xa >>> 0),
        xa_find: (xa: number, indexAt: number) => this.xaFind(xa, indexAt, false),
        xa_find_after: (xa: number, indexAt: number) => this.xaFind(xa, indexAt, true),
        debugfs_create_dir: () => rt.handle(0xa),
        debugfs_create_file: (name: number, _mode: number, _parent: number, _data: number, fops: number) => {
          this.files.set(m().cstring(name), fops >>> 0);
          return rt.handle(0xa);
        },
        debugfs_remove_recursive: () => this.files.clear(),
        simple_read_from_buffer: (to: number, count: number, ppos: number, from: number, available: number) => {
          const pos = Number(m().u32(ppos));
          if (pos >= available) return 0;
          const n = Math.min(count >>> 0, (available >>> 0) - pos);
          m().write(to, m().read(from + pos, n));
          m().setU64(ppos, BigInt(pos + n));
          return n;
        },
        noop_llseek: () => 0n,
        default_llseek: () => 0n,
        scnprintf: (buf: number, size: number, fmt: number, va: number) => this.print(buf, size, fmt, va, true),
        snprintf: (buf: number, size: number, fmt: number, va: number) => this.print(buf, size, fmt, va, false),
        _printk: (fmt: number, va: number) => {
          this.log.push(formatC(m(), m().cstring(fmt), va));
          return 0;
        },
      },
    };
  }

  private xaErase(xa: number, index: number): number {
    const x = this.xa(xa);
    const e = x.get(index >>> 0) ?? 0;
    x.delete(index >>> 0);
    return e;
  }

  /** scnprintf returns what it wrote; snprintf what it would have written. */
  private print(buf: number, size: number, fmt: number, va: number, written: boolean): number {
    const m = this.rt.mem;
    const bytes = new TextEncoder().encode(formatC(m, m.cstring(fmt), va));
    if ((size >>> 0) === 0) return written ? 0 : bytes.length;
    const n = Math.min(bytes.length, (size >>> 0) - 1);
    m.write(buf, bytes.subarray(0, n));
    m.bytes[(buf >>> 0) + n] = 0;
    return written ? n : bytes.length;
  }

  /** Runs the delayed work that is due, soonest first, at PASSIVE (a worker thread). */
  runWork(now: number): number {
    let n = 0;
    for (;;) {
      let best: [number, Work] | null = null;
      for (const e of this.works) if (e[1].due <= now && (!best || e[1].due < best[1].due)) best = e;
      if (!best) return n;
      this.works.delete(best[0]);
      this.rt.callback(best[1].func, 'work_func', PASSIVE_LEVEL, best[0]);
      n++;
    }
  }

  nextWorkDue(): number | null {
    let d: number | null = null;
    for (const w of this.works.values()) if (d === null || w.due < d) d = w.due;
    return d;
  }
}
