// The KMDF subset KMCL drivers use, over the emulator: driver, PnP devices (any number:
// PnP adds one per `addDevice` and removes it with `removeDevice`), control devices,
// default I/O queues, requests, timers, work items, spin and wait locks, registry values,
// typed object contexts and cleanup callbacks. Nothing runs on its own: a device's
// adapter (devices/sample/c/vsp.ts, devices/blockq/c/vsp.ts) calls `ioctl`, `runTimers`
// and `runWorkItems` from the scenario's seeded scheduler, so runs stay deterministic.
// `ioctl` opens the device a symbolic link names (the one the driver created) and hands
// any control code to its queue: the codes are the device's own, the shim knows none.
//
// What it checks (beside irql.ts and pool.ts): a request completed twice or never, a
// spin lock acquired twice or released unheld, a wait lock likewise or taken above
// PASSIVE_LEVEL, a timer stopped with Wait at DISPATCH, a symbolic link name taken twice
// (STATUS_OBJECT_NAME_COLLISION, as the object manager answers), a PnP device deleted
// by its driver (the framework deletes it at removal), and a control device still there
// when the driver unloads (a PnP driver must delete it from a cleanup callback: KMDF's
// ControlDeviceDeleted rule; the system would never unload the driver).

import type { DriverRuntime, ImportTable } from './runtime.ts';
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from './irql.ts';
import { violation } from './violations.ts';
import { STATUS } from '../../vmbus/status.ts';
import type { WdfShimImage } from './wdf-shim-image.ts';

const KIND = { device: 1, queue: 2, timer: 3, workitem: 4, spinlock: 5, request: 6, driver: 7, key: 8, init: 9, waitlock: 10 } as const;
const LEVEL_PASSIVE = 2;
const LEVEL_DISPATCH = 3;
const SHIM_TAG = 0x43666457; // 'WdfC'
const STATUS_BUFFER_TOO_SMALL = 0xc0000023;
const STATUS_INVALID_DEVICE_REQUEST = 0xc0000010;
const STATUS_OBJECT_NAME_NOT_FOUND = 0xc0000034;
const STATUS_OBJECT_NAME_COLLISION = 0xc0000035;

interface WdfObject {
  handle: number;
  kind: number;
  parent: WdfObject | null;
  callback: number;
  period: number;
  /** WDF_EXECUTION_LEVEL as given (1 inherit, 2 passive, 3 dispatch) */
  level: number;
  contexts: Map<number, number>;
  children: WdfObject[];
  // timer
  due: number | null;
  // spin lock
  held: boolean;
  savedIrql: number;
  // work item
  queued: boolean;
  // request
  request?: { input: number; inputLen: number; output: number; outputLen: number; code: number; status: number | null; info: number };
  // device
  pnp?: { prepare: number; release: number; ioInCallerContext: number };
  queue?: WdfObject;
  /** a control device (WdfControlDeviceInitAllocate): no PnP; I/O once finished initializing */
  control?: { name: string | null; finished: boolean };
  /** the symbolic link the driver created for the device */
  link?: string;
  /** EvtCleanupCallback, run when the object is deleted */
  cleanup?: number;
}

/** A WDFDEVICE_INIT not yet taken by WdfDeviceCreate. */
interface DeviceInit {
  pnp: { prepare: number; release: number; ioInCallerContext: number };
  control: boolean;
  name: string | null;
}

/**
 * A UNICODE_STRING's text. The driver's L"..." literals are wasm32's wchar_t, 32 bits
 * (clang's wasm32 target has no 16-bit one), so its bytes are UTF-32 here, where a
 * Windows build's are UTF-16; Length counts bytes either way.
 */
function wide(mem: DriverRuntime['mem'], at: number, bytes: number): string {
  let s = '';
  for (let i = 0; i + 4 <= bytes; i += 4) s += String.fromCodePoint(mem.u32(at + i));
  return s;
}

export interface IoctlResult {
  status: number;
  info: number;
  output: Uint8Array;
}

export class WdfShim {
  private readonly rt: DriverRuntime;
  private readonly objects = new Map<number, WdfObject>();
  private driver: { handle: number; add: number; unload: number } | null = null;
  /** live devices, PnP and control, in creation order */
  private devices: WdfObject[] = [];
  /** init structures handed out and not yet taken or freed (WDFDEVICE_INIT handles) */
  private readonly inits = new Map<number, DeviceInit>();
  readonly registry = new Map<string, number>();
  private readonly deviceObject: number;
  /** requests queued behind one being dispatched (a sequential queue) */
  private readonly backlog: WdfObject[] = [];
  private dispatching = false;
  /**
   * The timers that are started (due not null) and the work items that are queued, kept
   * as those fields change (setDue, setQueued): the scheduler asks when work is next due
   * at every step, and a scan of every WDF object for it cost each step as much as the
   * driver has objects. Sets keep insertion order, not creation order, so what runs
   * first is still decided by creation order (the handle, which grows with it).
   * Invariant: armed holds exactly the live timers whose due is not null, and queued
   * exactly the live work items whose queued is true, as a scan of `objects` finds them
   * (test/devices/wasm/wdf-shim.test.ts).
   */
  private readonly armed = new Set<WdfObject>();
  private readonly queued = new Set<WdfObject>();

  constructor(rt: DriverRuntime) {
    this.rt = rt;
    this.deviceObject = rt.handle(0xe);
  }

  private obj(h: number, call: string, kind?: number): WdfObject {
    const o = this.objects.get(h >>> 0);
    if (!o || (kind !== undefined && o.kind !== kind)) throw violation('wdf.misuse', call, `handle 0x${(h >>> 0).toString(16)}`, 'not a live WDF object of the right type');
    return o;
  }

  private create(kind: number, parent: WdfObject | null, callback = 0, period = 0, level = 1): WdfObject {
    const o: WdfObject = {
      handle: this.rt.handle(5), kind, parent, callback: callback >>> 0, period, level, contexts: new Map(), children: [],
      due: null, held: false, savedIrql: 0, queued: false,
    };
    this.objects.set(o.handle, o);
    parent?.children.push(o);
    return o;
  }

  private addContext(o: WdfObject, type: number, size: number): number {
    if (type === 0 || size === 0) return 0;
    const at = this.rt.pool.alloc(size, SHIM_TAG, 'shim');
    o.contexts.set(type >>> 0, at);
    return at;
  }

  private destroy(o: WdfObject): void {
    for (const c of [...o.children]) this.destroy(c);
    // Children first, then the object's own cleanup, while its context is still there.
    if (o.cleanup) this.rt.callback(o.cleanup, 'EvtCleanupCallback', o.kind === KIND.device ? PASSIVE_LEVEL : this.levelOf(o), o.handle);
    if (o.kind === KIND.device) this.devices = this.devices.filter((d) => d !== o);
    for (const at of o.contexts.values()) this.rt.pool.free(at, SHIM_TAG, 'WdfObjectDelete');
    if (o.request) {
      if (o.request.input) this.rt.pool.free(o.request.input, SHIM_TAG, 'WdfRequest');
      if (o.request.output) this.rt.pool.free(o.request.output, SHIM_TAG, 'WdfRequest');
    }
    o.contexts.clear();
    this.setDue(o, null);
    this.setQueued(o, false);
    if (o.parent) o.parent.children = o.parent.children.filter((c) => c !== o);
    this.objects.delete(o.handle);
  }

  private setDue(t: WdfObject, due: number | null): void {
    t.due = due;
    if (due === null) this.armed.delete(t);
    else this.armed.add(t);
  }

  private setQueued(w: WdfObject, queued: boolean): void {
    w.queued = queued;
    if (queued) this.queued.add(w);
    else this.queued.delete(w);
  }

  /** The IRQL a queue's or timer's callbacks run at: DISPATCH unless it or a parent asks for PASSIVE. */
  private levelOf(o: WdfObject | null): number {
    for (let p = o; p; p = p.parent) {
      if (p.level === LEVEL_PASSIVE) return PASSIVE_LEVEL;
      if (p.level === LEVEL_DISPATCH) return DISPATCH_LEVEL;
    }
    return DISPATCH_LEVEL;
  }

  imports(): ImportTable {
    const rt = this.rt;
    const m = () => rt.mem;
    return {
      wdf: {
        DriverCreate: (add: number, unload: number, out: number) => {
          this.driver = { handle: rt.handle(KIND.driver), add: add >>> 0, unload: unload >>> 0 };
          if (out) m().setU32(out, this.driver.handle);
          return STATUS.SUCCESS;
        },
        SetPnpPower: (init: number, prepare: number, release: number) => {
          const i = this.init(init, 'WdfDeviceInitSetPnpPowerEventCallbacks');
          Object.assign(i.pnp, { prepare: prepare >>> 0, release: release >>> 0 });
        },
        ObjectCreate: (kind: number, parent: number, callback: number, period: number, level: number, type: number, size: number, initAt: number, out: number) => {
          if (kind === KIND.device) {
            rt.irql.requirePassive('WdfDeviceCreate', 'device');
            const init = this.init(initAt, 'WdfDeviceCreate');
            const o = this.create(kind, null, 0, 0, level);
            if (init.control) o.control = { name: init.name, finished: false };
            else o.pnp = init.pnp;
            this.inits.delete(initAt >>> 0);
            this.devices.push(o);
            this.addContext(o, type, size);
            m().setU32(out, o.handle);
            return STATUS.SUCCESS;
          }
          // The driver parents what names no parent (or names it): deleted after EvtDriverUnload.
          const p = parent && (parent >>> 0) !== this.driver?.handle ? this.obj(parent, 'WdfObjectCreate') : null;
          const o = this.create(kind, p, callback, period, level);
          if (kind === KIND.queue && p) p.queue = o;
          this.addContext(o, type, size);
          if (out) m().setU32(out, o.handle);
          return STATUS.SUCCESS;
        },
        ObjectAllocateContext: (h: number, type: number, size: number, out: number) => {
          const o = this.obj(h, 'WdfObjectAllocateContext');
          if (o.contexts.has(type >>> 0)) return 0xc0000035; // STATUS_OBJECT_NAME_EXISTS
          const at = this.addContext(o, type, size);
          if (out) m().setU32(out, at);
          return STATUS.SUCCESS;
        },
        RequestGetParameters: (h: number, typeAt: number, outLenAt: number, inLenAt: number, codeAt: number) => {
          const r = this.obj(h, 'WdfRequestGetParameters', KIND.request).request!;
          m().setU32(typeAt, 0xe); // WdfRequestTypeDeviceControl
          m().setU32(outLenAt, r.outputLen);
          m().setU32(inLenAt, r.inputLen);
          m().setU32(codeAt, r.code);
        },
        ObjectSetCleanup: (h: number, fn: number) => {
          this.obj(h, 'WdfObjectCreate').cleanup = fn >>> 0;
        },
        DeviceInitAssignName: (init: number, name: number, bytes: number) => {
          rt.irql.requirePassive('WdfDeviceInitAssignName', 'device init');
          this.init(init, 'WdfDeviceInitAssignName').name = wide(m(), name, bytes);
          return STATUS.SUCCESS;
        },
        CreateSymbolicLink: (h: number, name: number, bytes: number) => {
          rt.irql.requirePassive('WdfDeviceCreateSymbolicLink', 'device');
          const d = this.obj(h, 'WdfDeviceCreateSymbolicLink', KIND.device);
          const link = wide(m(), name, bytes);
          // One name, one device: the object manager refuses a second link of the same name.
          if (this.devices.some((o) => o.link?.toLowerCase() === link.toLowerCase())) return STATUS_OBJECT_NAME_COLLISION;
          d.link = link;
          return STATUS.SUCCESS;
        },
        RegistryQueryULong: (key: number, name: number, bytes: number, out: number) => {
          rt.irql.requirePassive('WdfRegistryQueryULong', `key 0x${(key >>> 0).toString(16)}`);
          const v = this.registry.get(wide(m(), name, bytes));
          if (v === undefined) return 0xc0000034; // STATUS_OBJECT_NAME_NOT_FOUND
          m().setU32(out, v);
          return STATUS.SUCCESS;
        },
      },
      env: {
        WdfDeviceInitSetIoInCallerContextCallback: (init: number, fn: number) => {
          this.init(init, 'WdfDeviceInitSetIoInCallerContextCallback').pnp.ioInCallerContext = fn >>> 0;
        },
        WdfControlDeviceInitAllocate: (driver: number, _sddl: number) => {
          rt.irql.requirePassive('WdfControlDeviceInitAllocate', 'driver');
          if (!this.driver || (driver >>> 0) !== this.driver.handle) throw violation('wdf.misuse', 'WdfControlDeviceInitAllocate', `driver 0x${(driver >>> 0).toString(16)}`, 'not the driver WdfDriverCreate made');
          const h = this.rt.handle(KIND.init);
          this.inits.set(h, { pnp: { prepare: 0, release: 0, ioInCallerContext: 0 }, control: true, name: null });
          return h;
        },
        WdfDeviceInitFree: (init: number) => {
          if (!this.init(init, 'WdfDeviceInitFree').control) throw violation('wdf.misuse', 'WdfDeviceInitFree', `init 0x${(init >>> 0).toString(16)}`, 'a PnP device\'s init structure is the framework\'s to free');
          this.inits.delete(init >>> 0);
        },
        WdfControlFinishInitializing: (h: number) => {
          const d = this.obj(h, 'WdfControlFinishInitializing', KIND.device);
          if (!d.control) throw violation('wdf.misuse', 'WdfControlFinishInitializing', `device 0x${d.handle.toString(16)}`, 'not a control device');
          d.control.finished = true;
        },
        WdfDriverOpenParametersRegistryKey: (_d: number, _a: number, _attrs: number, out: number) => {
          rt.irql.requirePassive('WdfDriverOpenParametersRegistryKey', 'driver');
          m().setU32(out, this.create(KIND.key, null).handle);
          return STATUS.SUCCESS;
        },
        WdfWaitLockAcquire: (h: number, timeout: number) => {
          const l = this.obj(h, 'WdfWaitLockAcquire', KIND.waitlock);
          if (!timeout) rt.irql.requirePassive('WdfWaitLockAcquire', `wait lock 0x${l.handle.toString(16)}`);
          if (l.held) throw violation('wdf.misuse', 'WdfWaitLockAcquire', `wait lock 0x${l.handle.toString(16)}`, 'acquired while already held: the thread waits for itself for ever');
          l.held = true;
          return STATUS.SUCCESS;
        },
        WdfWaitLockRelease: (h: number) => {
          const l = this.obj(h, 'WdfWaitLockRelease', KIND.waitlock);
          if (!l.held) throw violation('wdf.misuse', 'WdfWaitLockRelease', `wait lock 0x${l.handle.toString(16)}`, 'released while not held');
          l.held = false;
        },
        WdfDeviceWdmGetDeviceObject: () => this.deviceObject,
        WdfObjectGetTypedContextWorker: (h: number, type: number) => this.obj(h, 'WdfObjectGetTypedContextWorker').contexts.get(type >>> 0) ?? 0,
        WdfObjectDelete: (h: number) => {
          const o = this.obj(h, 'WdfObjectDelete');
          if (o.kind === KIND.device && !o.control) throw violation('wdf.misuse', 'WdfObjectDelete', `device 0x${o.handle.toString(16)}`, 'a PnP device is the framework\'s to delete, when PnP removes it');
          this.destroy(o);
        },
        WdfIoQueueGetDevice: (q: number) => this.obj(q, 'WdfIoQueueGetDevice', KIND.queue).parent?.handle ?? 0,
        WdfDeviceEnqueueRequest: (d: number, h: number) => {
          this.dispatch(this.obj(h, 'WdfDeviceEnqueueRequest', KIND.request), this.obj(d, 'WdfDeviceEnqueueRequest', KIND.device));
          return STATUS.SUCCESS;
        },
        WdfRequestRetrieveInputBuffer: (h: number, min: number, bufAt: number, lenAt: number) => {
          const r = this.obj(h, 'WdfRequestRetrieveInputBuffer', KIND.request).request!;
          if (r.inputLen < (min >>> 0) || r.inputLen === 0) return STATUS_BUFFER_TOO_SMALL;
          m().setU32(bufAt, r.input);
          if (lenAt) m().setU32(lenAt, r.inputLen);
          return STATUS.SUCCESS;
        },
        WdfRequestRetrieveOutputBuffer: (h: number, min: number, bufAt: number, lenAt: number) => {
          const r = this.obj(h, 'WdfRequestRetrieveOutputBuffer', KIND.request).request!;
          if (r.outputLen < (min >>> 0) || r.outputLen === 0) return STATUS_BUFFER_TOO_SMALL;
          m().setU32(bufAt, r.output);
          if (lenAt) m().setU32(lenAt, r.outputLen);
          return STATUS.SUCCESS;
        },
        WdfRequestComplete: (h: number, status: number) => this.complete(h, status, 0, 'WdfRequestComplete'),
        WdfRequestCompleteWithInformation: (h: number, status: number, info: bigint) => this.complete(h, status, Number(info), 'WdfRequestCompleteWithInformation'),
        WdfSpinLockAcquire: (h: number) => {
          const l = this.obj(h, 'WdfSpinLockAcquire', KIND.spinlock);
          if (l.held) throw violation('spinlock.misuse', 'WdfSpinLockAcquire', `spin lock 0x${l.handle.toString(16)}`, 'acquired while already held: a deadlock on one processor');
          l.held = true;
          l.savedIrql = rt.irql.level;
          rt.irql.level = DISPATCH_LEVEL;
        },
        WdfSpinLockRelease: (h: number) => {
          const l = this.obj(h, 'WdfSpinLockRelease', KIND.spinlock);
          if (!l.held) throw violation('spinlock.misuse', 'WdfSpinLockRelease', `spin lock 0x${l.handle.toString(16)}`, 'released while not held');
          l.held = false;
          rt.irql.level = l.savedIrql;
        },
        WdfTimerStart: (h: number, due: bigint) => {
          const t = this.obj(h, 'WdfTimerStart', KIND.timer);
          const was = t.due !== null;
          // Negative: relative, in 100 ns units; positive: an absolute interrupt time.
          this.setDue(t, due < 0n ? this.rt.opts.now() + Number(-due) / 10_000 : Number(due) / 10_000);
          return was ? 1 : 0;
        },
        WdfTimerStop: (h: number, wait: number) => {
          const t = this.obj(h, 'WdfTimerStop', KIND.timer);
          if (wait & 0xff) rt.irql.requirePassive('WdfTimerStop(Wait=TRUE)', `timer 0x${t.handle.toString(16)}`);
          const was = t.due !== null;
          this.setDue(t, null);
          return was ? 1 : 0;
        },
        WdfTimerGetParentObject: (h: number) => this.obj(h, 'WdfTimerGetParentObject', KIND.timer).parent?.handle ?? 0,
        WdfWorkItemEnqueue: (h: number) => {
          this.setQueued(this.obj(h, 'WdfWorkItemEnqueue', KIND.workitem), true);
        },
        WdfWorkItemFlush: (h: number) => {
          rt.irql.requirePassive('WdfWorkItemFlush', `work item 0x${(h >>> 0).toString(16)}`);
          const w = this.obj(h, 'WdfWorkItemFlush', KIND.workitem);
          if (w.queued) this.runWorkItem(w);
        },
        WdfWorkItemGetParentObject: (h: number) => this.obj(h, 'WdfWorkItemGetParentObject', KIND.workitem).parent?.handle ?? 0,
        WdfDeviceOpenRegistryKey: (_d: number, _t: number, _a: number, _attrs: number, out: number) => {
          rt.irql.requirePassive('WdfDeviceOpenRegistryKey', 'device');
          m().setU32(out, this.create(KIND.key, null).handle);
          return STATUS.SUCCESS;
        },
        WdfRegistryClose: (h: number) => this.destroy(this.obj(h, 'WdfRegistryClose', KIND.key)),
      },
    };
  }

  private init(h: number, call: string): DeviceInit {
    const i = this.inits.get(h >>> 0);
    if (!i) throw violation('wdf.misuse', call, `init 0x${(h >>> 0).toString(16)}`, 'not a WDFDEVICE_INIT the framework handed out (taken by WdfDeviceCreate, or freed, already?)');
    return i;
  }

  private complete(h: number, status: number, info: number, call: string): void {
    const o = this.obj(h, call, KIND.request);
    const r = o.request!;
    if (r.status !== null) throw violation('wdf.misuse', call, `request 0x${o.handle.toString(16)}`, 'the request was already completed');
    r.status = status >>> 0;
    r.info = info;
  }

  private dispatch(req: WdfObject, dev: WdfObject | null = this.opened): void {
    const queue = dev?.queue;
    if (!queue) {
      req.request!.status = STATUS_INVALID_DEVICE_REQUEST;
      return;
    }
    this.backlog.push(req);
    if (this.dispatching) return; // sequential: one request at a time
    this.dispatching = true;
    try {
      while (this.backlog.length > 0) {
        const next = this.backlog.shift()!;
        const r = next.request!;
        this.rt.callback(queue.callback, 'EvtIoDeviceControl', this.levelOf(queue), queue.handle, next.handle, r.outputLen, r.inputLen, r.code);
      }
    } finally {
      this.dispatching = false;
    }
  }

  // ------------------------------------------------------------ the harness's side

  /** The first PnP device (a VSP's one device), or null. */
  get device(): WdfObject | null {
    return this.devices.find((d) => !d.control) ?? null;
  }

  /** The device `ioctl` opens: the one a symbolic link names, else the only PnP device. */
  private get opened(): WdfObject | null {
    return this.devices.find((d) => d.link !== undefined) ?? null;
  }

  /** The live PnP devices' handles, in the order PnP added them. */
  pnpDevices(): number[] {
    return this.devices.filter((d) => !d.control).map((d) => d.handle);
  }

  /**
   * PnP: DriverEntry has run; a device arrives: EvtDriverDeviceAdd, then its hardware is
   * prepared. Returns the NTSTATUS and the new device (0 when none was made). A failed
   * add deletes what it made (its cleanup runs); a failed prepare releases it first.
   */
  addPnpDevice(): { status: number; device: number } {
    if (!this.driver) throw new Error(`${this.rt.name}: DriverEntry did not create a WDF driver`);
    const initAt = this.rt.handle(KIND.init);
    this.inits.set(initAt, { pnp: { prepare: 0, release: 0, ioInCallerContext: 0 }, control: false, name: null });
    const before = new Set(this.devices);
    let st = this.rt.callback(this.driver.add, 'EvtDriverDeviceAdd', PASSIVE_LEVEL, this.driver.handle, initAt) >>> 0;
    this.inits.delete(initAt);
    const dev = this.devices.find((d) => !before.has(d) && !d.control) ?? null;
    if (st !== 0 || !dev) {
      if (dev) this.destroy(dev);
      return { status: st, device: 0 };
    }
    const prepare = dev.pnp!.prepare;
    if (prepare) st = this.rt.callback(prepare, 'EvtDevicePrepareHardware', PASSIVE_LEVEL, dev.handle, 0, 0) >>> 0;
    if (st !== 0) {
      this.removeDevice(dev.handle);
      return { status: st, device: 0 };
    }
    return { status: st, device: dev.handle };
  }

  /** addPnpDevice's status alone (a driver with one device, a VSP). */
  addDevice(): number {
    return this.addPnpDevice().status;
  }

  /** PnP removes a device (its offer was rescinded, or the OS disabled it): EvtDeviceReleaseHardware, then the framework deletes it. */
  removeDevice(h: number): void {
    const dev = this.obj(h, 'PnP removal', KIND.device);
    if (dev.control) throw new Error(`${this.rt.name}: a control device is not removed by PnP`);
    if (dev.pnp?.release) this.rt.callback(dev.pnp.release, 'EvtDeviceReleaseHardware', PASSIVE_LEVEL, dev.handle, 0);
    this.destroy(dev);
  }

  /**
   * One DeviceIoControl from user mode on the device a symbolic link names (CreateFile
   * on it, then the IOCTL): through EvtIoInCallerContext (if any) into its queue. No
   * such device, or a control device not finished initializing: the open fails
   * (STATUS_OBJECT_NAME_NOT_FOUND) and the driver sees nothing.
   */
  ioctl(code: number, input: Uint8Array, outputSize: number): IoctlResult {
    const dev = this.opened;
    if (!dev || (dev.control && !dev.control.finished)) return { status: STATUS_OBJECT_NAME_NOT_FOUND, info: 0, output: new Uint8Array(0) };
    const pool = this.rt.pool;
    const inAt = input.length ? pool.alloc(input.length, SHIM_TAG, 'shim') : 0;
    if (inAt) this.rt.mem.write(inAt, input);
    const outAt = outputSize ? pool.alloc(outputSize, SHIM_TAG, 'shim') : 0;
    const o = this.create(KIND.request, null);
    o.request = { input: inAt, inputLen: input.length, output: outAt, outputLen: outputSize, code: code >>> 0, status: null, info: 0 };
    const ioCaller = dev.pnp?.ioInCallerContext ?? 0;
    if (ioCaller) this.rt.callback(ioCaller, 'EvtIoInCallerContext', PASSIVE_LEVEL, dev.handle, o.handle);
    else this.dispatch(o, dev);
    const r = o.request;
    if (r.status === null) throw violation('wdf.misuse', 'EvtIoDeviceControl', `request 0x${o.handle.toString(16)}`, 'returned without completing the request (the caller would wait for ever)');
    const output = outAt ? this.rt.mem.read(outAt, Math.min(r.info, outputSize)) : new Uint8Array(0);
    const result = { status: r.status, info: r.info, output };
    this.destroy(o);
    return result;
  }

  /** The object context of the device (its first), e.g. a VSP's VSP_DEVICE; 0 when none. */
  deviceContext(h = this.device?.handle ?? 0): number {
    for (const at of this.objects.get(h >>> 0)?.contexts.values() ?? []) return at;
    return 0;
  }

  /**
   * Every live WDF object in creation order, as explore's state key reads them
   * (shim-key.ts); `handle` only to find the one a driver's structure names.
   */
  liveObjects(): Iterable<Readonly<Pick<WdfObject, 'handle' | 'kind' | 'level' | 'callback' | 'period' | 'due' | 'held' | 'queued'>>> {
    return this.objects.values();
  }

  /** The live object of a handle, or undefined (shim-key.ts). */
  objectOf(h: number): Readonly<Pick<WdfObject, 'handle' | 'kind' | 'level' | 'callback' | 'period' | 'due' | 'held' | 'queued'>> | undefined {
    return this.objects.get(h >>> 0);
  }

  /** Requests waiting for the sequential queue (none between two calls from the bench). */
  get queuedRequests(): number {
    return this.backlog.length + (this.dispatching ? 1 : 0);
  }

  /** When the next timer is due (ms), or null. */
  nextTimerDue(): number | null {
    let best: number | null = null;
    for (const o of this.armed) if (best === null || o.due! < best) best = o.due;
    return best;
  }

  /** Whether a work item is queued (runWorkItems would run one). */
  get workItemQueued(): boolean {
    return this.queued.size > 0;
  }

  /**
   * The timers started and the work items queued, each in creation order, as the shim
   * keeps them (for the invariant's test: the same as a scan of liveObjects).
   */
  pendingWork(): { timers: number[]; workItems: number[] } {
    const byHandle = (a: number, b: number): number => a - b;
    return { timers: [...this.armed].map((o) => o.handle).sort(byHandle), workItems: [...this.queued].map((o) => o.handle).sort(byHandle) };
  }

  /**
   * Fires every timer due at `now`, soonest first (two due at once: the one created first);
   * periodic ones are due again after their period.
   */
  runTimers(now: number): number {
    let fired = 0;
    for (;;) {
      let t: WdfObject | null = null;
      for (const o of this.armed) if (o.due! <= now && (t === null || o.due! < t.due! || (o.due === t.due && o.handle < t.handle))) t = o;
      if (!t) return fired;
      this.setDue(t, t.period > 0 ? t.due! + t.period : null);
      this.rt.callback(t.callback, 'EvtTimerFunc', this.levelOf(t), t.handle);
      fired++;
    }
  }

  private runWorkItem(w: WdfObject): void {
    this.setQueued(w, false);
    this.rt.callback(w.callback, 'EvtWorkItemFunc', PASSIVE_LEVEL, w.handle);
  }

  /** Runs every queued work item at PASSIVE_LEVEL. */
  runWorkItems(): number {
    if (this.queued.size === 0) return 0;
    let n = 0;
    // In creation order, as the objects are kept; one the last run queued again waits for the next.
    for (const o of [...this.objects.values()]) if (o.kind === KIND.workitem && o.queued) {
      this.runWorkItem(o);
      n++;
    }
    return n;
  }

  /**
   * The shim's tables as plain data (wdf-shim-image.ts), for a guest driver's memory
   * image. Between entries into the driver only: nothing is being dispatched then.
   */
  image(): WdfShimImage {
    if (this.dispatching || this.backlog.length > 0 || this.inits.size > 0) throw new Error(`${this.rt.name}: a WDF image is taken between entries into the driver, not inside one`);
    const objects = [...this.objects.values()].map((o) => ({
      handle: o.handle, kind: o.kind, parent: o.parent?.handle ?? 0, callback: o.callback, period: o.period, level: o.level,
      contexts: [...o.contexts], due: o.due, held: o.held, savedIrql: o.savedIrql, queued: o.queued,
      request: o.request ? { ...o.request } : null, pnp: o.pnp ? { ...o.pnp } : null, queue: o.queue?.handle ?? 0,
      control: o.control ? { ...o.control } : null, link: o.link ?? null, cleanup: o.cleanup ?? 0,
    }));
    return { objects, driver: this.driver ? { ...this.driver } : null, devices: this.devices.map((d) => d.handle), registry: [...this.registry] };
  }

  /**
   * Empties the shim as a new one is (a reused runtime, DriverRuntime.reuse), for
   * restoreImage to fill. Between entries into the driver only.
   */
  reset(): void {
    if (this.dispatching) throw new Error(`${this.rt.name}: a WDF shim is reset between entries into the driver, not inside one`);
    this.objects.clear();
    this.driver = null;
    this.devices = [];
    this.inits.clear();
    this.registry.clear();
    this.backlog.length = 0;
    this.armed.clear();
    this.queued.clear();
  }

  /** Fills a fresh shim (nothing created yet) from a checked image (checkWdfShimImage). */
  restoreImage(img: WdfShimImage): void {
    if (this.objects.size > 0 || this.driver) throw new Error(`${this.rt.name}: a WDF image is restored into a fresh shim only`);
    for (const i of img.objects) {
      const parent = i.parent ? this.objects.get(i.parent)! : null;
      const o: WdfObject = {
        handle: i.handle, kind: i.kind, parent, callback: i.callback, period: i.period, level: i.level, contexts: new Map(i.contexts), children: [],
        due: i.due, held: i.held, savedIrql: i.savedIrql, queued: i.queued,
      };
      if (i.request) o.request = { ...i.request };
      if (i.pnp) o.pnp = { ...i.pnp };
      if (i.control) o.control = { ...i.control };
      if (i.link !== null) o.link = i.link;
      if (i.cleanup) o.cleanup = i.cleanup;
      this.objects.set(o.handle, o);
      parent?.children.push(o);
      if (o.due !== null) this.armed.add(o);
      if (o.queued) this.queued.add(o);
    }
    for (const i of img.objects) if (i.queue) this.objects.get(i.handle)!.queue = this.objects.get(i.queue)!;
    this.driver = img.driver ? { ...img.driver } : null;
    this.devices = img.devices.map((h) => this.objects.get(h)!);
    this.registry.clear();
    for (const [k, v] of img.registry) this.registry.set(k, v);
  }

  /**
   * PnP removes every device (ReleaseHardware, deleted), then the driver unloads
   * (EvtDriverUnload), then the framework deletes the objects left (the driver's own).
   * A control device still there then is a violation: the system never unloads a PnP
   * driver whose control device exists (KMDF's ControlDeviceDeleted rule).
   */
  unload(): void {
    for (const h of this.pnpDevices()) this.removeDevice(h);
    const control = this.devices.find((d) => d.control);
    if (control) throw violation('wdf.misuse', 'EvtDriverUnload', `device 0x${control.handle.toString(16)}`, 'a control device is still there after the last PnP device went: a PnP driver deletes it from a cleanup callback (KMDF rule ControlDeviceDeleted), or the system never unloads the driver');
    if (this.driver?.unload) this.rt.callback(this.driver.unload, 'EvtDriverUnload', PASSIVE_LEVEL, this.driver.handle);
    for (const o of [...this.objects.values()]) if (o.kind !== KIND.driver && this.objects.has(o.handle)) this.destroy(o);
  }
}
