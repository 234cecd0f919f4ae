// The sample Windows guest driver (lab/drivers/guest-windows) running on the emulator
// (src/devices/wasm/windows-driver.ts says how): a KMCL client that enables its channel when its device
// starts; `enabled` hands the client Channel to whoever plays the host, to connect it
// to an offer. Its trace is its own JSON Lines buffer, read with IOCTL_SAMPLE_READ_TRACE
// exactly as sample-ctl reads it on a real guest.

import type { Channel } from '../../../src/vmbus/channel.ts';
import { SAMPLE_IOCTL } from './control.ts';
import { guestWindowsRecipe } from './recipes.ts';
import { WindowsDriver, type WindowsDriverOptions } from '../../../src/devices/wasm/windows-driver.ts';

export interface CGuestWindowsOptions extends WindowsDriverOptions {
  /** a client channel was enabled and waits for an offer */
  onEnabled: (client: Channel) => void;
}

export class CGuestWindows extends WindowsDriver {
  constructor(opts: CGuestWindowsOptions) {
    super(guestWindowsRecipe(), 'guest', opts, { enabled: (r) => opts.onEnabled(r.ch) }, SAMPLE_IOCTL);
    this.load();
  }

  /** The driver's trace: every JSON Lines event it has written, parsed. */
  readTrace(): Array<Record<string, unknown>> {
    const chunks: Uint8Array[] = [];
    let offset = 0n;
    for (;;) {
      const req = new Uint8Array(8);
      new DataView(req.buffer).setBigUint64(0, offset, true);
      const r = this.wdf.ioctl(SAMPLE_IOCTL.readTrace, req, 65536);
      if (r.status !== 0) throw new Error(`guest-windows: reading the trace failed with 0x${r.status.toString(16)}`);
      if (r.output.length === 0) break;
      chunks.push(r.output);
      offset += BigInt(r.output.length);
    }
    const text = new TextDecoder().decode(Buffer.concat(chunks));
    return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
