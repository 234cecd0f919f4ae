// The sample Windows guest driver (lab/drivers/guest-windows) running on the emulator
// (src/devices/wasm/windows-driver.ts says how): a KMCL client that enables its channel when its device
// starts; `enabled` hands the client Channel to whoever plays the host, to connect it
// to an offer. Its trace is its own JSON Lines buffer, read with IOCTL_SAMPLE_READ_TRACE
// exactly as sample-ctl reads it on a real guest.
//
// Its whole state is guest memory: `image()` is the driver's linear memory and pool
// (runtime-image.ts), the WDF shim's objects (wdf-shim-image.ts) and the KMCL shim's
// client channels and packets (kmcl-client-image.ts); constructed `from` an image, the
// driver is built again as it was, as a restored VM's kernel finds it where it was (in
// the instance of a driver nobody uses any more, when given one: WindowsDriver's `reuse`).

import type { Channel } from '../../../src/vmbus/channel.ts';
import { SAMPLE_IOCTL } from './control.ts';
import { guestWindowsRecipe } from './recipes.ts';
import { WindowsDriver, type WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';
import { checkRuntimeImage, fitsRuntime, restoreRuntime, runtimeImage, type RuntimeImage } from '../../../src/devices/wasm/runtime-image.ts';
import { checkWdfShimImage, type WdfShimImage } from '../../../src/devices/wasm/wdf-shim-image.ts';
import { checkKmclClientImage, kmclClientImage, restoreKmclClient, type KmclClientImage } from '../../../src/devices/wasm/kmcl-client-image.ts';
import { RestoreError } from '../../../src/vmbus/saved-state.ts';

export interface CGuestWindowsOptions extends WindowsDriverOptions {
  /** a client channel was enabled and waits for an offer */
  onEnabled: (client: Channel) => void;
  /** the driver's TraceKiB registry value (the INF's default is 4096), set before DriverEntry */
  traceKib?: number;
  /** PnP adds one device at load (the default: one channel offered), or none (`addDevice` per offer) */
  devicesAtLoad?: 0 | 1;
}

/** Bytes per IOCTL_SAMPLE_READ_TRACE call. */
const READ_CHUNK = 65536;

/** The driver as a saved VM holds it (plain data). */
export interface CGuestWindowsImage {
  runtime: RuntimeImage;
  wdf: WdfShimImage;
  kmcl: KmclClientImage;
}

export class CGuestWindows extends WindowsDriver {
  /**
   * Loads the driver (DriverEntry, then PnP adds and starts its device); with `from`,
   * revives it from an image instead (checked first: a malformed one is a RestoreError
   * naming the field, and nothing runs). `spare`: a driver of the same build and options
   * that nobody uses any more (the guest state a restore replaced): the image goes into
   * its instance, emptied in place, when its memory fits, rather than into a new instance
   * (mapping a new instance's memory was most of a restore's cost). Either way the driver
   * is the one the image holds.
   */
  constructor(opts: CGuestWindowsOptions, from?: unknown, spare?: CGuestWindows) {
    // The image is checked against the spare's build before the spare is touched.
    const checked = from !== undefined && spare !== undefined ? checkImage(from, spare) : undefined;
    const reuse = checked !== undefined && fitsRuntime(spare!.rt, checked.runtime) ? spare : undefined;
    super(guestWindowsRecipe(), 'guest', opts, { enabled: (r) => opts.onEnabled(r.ch) }, SAMPLE_IOCTL, reuse);
    if (from !== undefined) {
      const img = checked ?? checkImage(from, this);
      restoreRuntime(this.rt, img.runtime, { fresh: reuse === undefined });
      this.wdf.restoreImage(img.wdf);
      restoreKmclClient(this.kmcl, img.kmcl, opts.choices);
      return;
    }
    if (opts.traceKib !== undefined) this.wdf.registry.set('TraceKiB', opts.traceKib);
    if (opts.devicesAtLoad === 0) this.driverEntry();
    else this.load();
  }

  /**
   * PnP adds a device for a channel offer (EvtDriverDeviceAdd, EvtDevicePrepareHardware):
   * its client channel is enabled and waits for the offer (onEnabled). Returns the
   * device's handle; a failed start is an error naming its status.
   */
  addDevice(): number {
    const r = this.wdf.addPnpDevice();
    if (r.status !== 0 || r.device === 0) throw new Error(`${this.rt.name}: device start failed with 0x${r.status.toString(16)}`);
    return r.device;
  }

  /** PnP removes device `h` (its offer was rescinded, or the guest disabled it). */
  removeDevice(h: number): void {
    this.wdf.removeDevice(h);
  }

  /** The live devices, in the order PnP added them. */
  devices(): number[] {
    return this.wdf.pnpDevices();
  }

  /** The client channel device `h` allocated (its VmbChannelSetPointer is the device's context), or null. */
  clientOf(h: number): Channel | null {
    const ctx = this.wdf.deviceContext(h);
    for (const r of this.kmcl.channels.values()) if (r.pointer === ctx) return r.ch;
    return null;
  }

  /**
   * The driver's state now, as a saved VM holds it (a copy; with `live`, its memory as
   * views of the driver's own, for a caller that copies them at once). Between entries only.
   */
  image(live = false): CGuestWindowsImage {
    return { runtime: runtimeImage(this.rt, live), wdf: this.wdf.image(), kmcl: kmclClientImage(this.kmcl) };
  }

  /** The first client channel (a driver with one device), or null once cleaned up. */
  client(): Channel | null {
    for (const r of this.kmcl.channels.values()) return r.ch;
    return null;
  }

  /**
   * The trace bytes from `offset` on (IOCTL_SAMPLE_READ_TRACE in 64 KiB reads, as sample-ctl
   * reads). A short read handed out all there was: no second call to learn that (each call's
   * output buffer is a pool block, poisoned into the quarantine when freed).
   */
  readTraceFrom(offset: number): Uint8Array {
    const chunks: Uint8Array[] = [];
    let at = BigInt(offset);
    for (;;) {
      const req = new Uint8Array(8);
      new DataView(req.buffer).setBigUint64(0, at, true);
      const r = this.wdf.ioctl(SAMPLE_IOCTL.readTrace, req, READ_CHUNK);
      if (r.status !== 0) throw new Error(`guest-windows: reading the trace failed with 0x${r.status.toString(16)}`);
      if (r.output.length > 0) chunks.push(r.output);
      at += BigInt(r.output.length);
      if (r.output.length < READ_CHUNK) break;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** The driver's trace: every JSON Lines event it has written, parsed. */
  readTrace(): Array<Record<string, unknown>> {
    const text = new TextDecoder().decode(this.readTraceFrom(0));
    return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** Checks every part of a decoded image against the driver it is revived into. */
function checkImage(image: unknown, drv: WindowsDriver): CGuestWindowsImage {
  if (typeof image !== 'object' || image === null || Array.isArray(image)) throw new RestoreError('bad-record', 'the C guest driver\'s image is not a record');
  const img = image as Record<string, unknown>;
  checkRuntimeImage(img.runtime, drv.rt);
  checkWdfShimImage(img.wdf);
  checkKmclClientImage(img.kmcl);
  return img as unknown as CGuestWindowsImage;
}
