// The sample C VSP (lab/drivers/vsp) running on the emulator: built to wasm32, loaded
// like PnP loads it (DriverEntry, EvtDriverDeviceAdd, EvtDevicePrepareHardware), driven
// through its real control interface (IOCTL_SAMPLE_COMMAND with the command language of
// lab/drivers/README.md, IOCTL_SAMPLE_COUNTERS), and unloaded with Driver Verifier's
// unload checks (pool leaks, channels and packets never freed).
//
// The channels it offers are the emulator's own server Channels; whoever plays the
// guest connects to them (`offered`), exactly as to a TypeScript twin's channel.

import type { Channel } from '../../vmbus/channel.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import type { TraceSink } from '../../trace/sink.ts';
import { buildDriver } from './build.ts';
import { KmclShim, type ChannelRec, type KmclShimOptions } from './kmcl-shim.ts';
import { kernelImports, mergeImports } from './kernel-shim.ts';
import { PASSIVE_LEVEL } from './irql.ts';
import { DriverRuntime } from './runtime.ts';
import { TraceShim } from './trace-shim.ts';
import { tagText } from './pool.ts';
import { violation } from './violations.ts';
import { IOCTL, WdfShim } from './wdf-shim.ts';

export interface CVspOptions {
  choices: GapChoices;
  sink: TraceSink;
  now: () => number;
  /** -D switches for the build (a test's unfixed variant of a function) */
  defines?: readonly string[];
  /** driver sources replaced by other files (buildDriver's `replace`) */
  replace?: Readonly<Record<string, string>>;
  faults?: KmclShimOptions['faults'];
  hangCalls?: number;
}

export class CVspError extends Error {
  constructor(command: string, status: number) {
    super(`C VSP refused '${command}': status 0x${(status >>> 0).toString(16).padStart(8, '0')}`);
    this.name = 'CVspError';
  }
}

const enc = new TextEncoder();

export class CVsp {
  readonly rt: DriverRuntime;
  readonly wdf: WdfShim;
  readonly kmcl: KmclShim;
  readonly trace: TraceShim;
  /** offered server channels by channel number (the instance GUID's last 8 hex digits) */
  private readonly offers = new Map<number, ChannelRec>();

  constructor(opts: CVspOptions) {
    const built = buildDriver('vsp', { defines: opts.defines ?? [], ...(opts.replace ? { replace: opts.replace } : {}) });
    this.rt = new DriverRuntime('vsp', { now: opts.now, hangCalls: opts.hangCalls });
    this.wdf = new WdfShim(this.rt);
    this.kmcl = new KmclShim(this.rt, {
      choices: opts.choices,
      faults: opts.faults,
      hooks: {
        enabled: (r) => {
          const inst = r.ch.config.interfaceInstance ?? '';
          this.offers.set(Number.parseInt(inst.slice(-8), 16), r);
        },
      },
    });
    this.trace = new TraceShim(this.rt, opts.sink, 'host');
    this.rt.instantiate(built.wasm, mergeImports(this.kmcl.imports(), this.wdf.imports(), this.trace.imports(), kernelImports(this.rt)));
    const st = this.rt.callExport('DriverEntry', PASSIVE_LEVEL, this.rt.handle(0xd), 0) >>> 0;
    if (st !== 0) throw new Error(`C VSP: DriverEntry failed with 0x${st.toString(16)}`);
    const add = this.wdf.addDevice();
    if (add !== 0) throw new Error(`C VSP: device start failed with 0x${add.toString(16)}`);
  }

  /** IOCTL_SAMPLE_COMMAND: the NTSTATUS the driver completed the request with. */
  command(text: string): number {
    return this.wdf.ioctl(IOCTL.command, enc.encode(text), 0).status;
  }

  /** Like `command`, but a refusal is an error. */
  run(text: string): void {
    const st = this.command(text);
    if (st !== 0) throw new CVspError(text, st);
  }

  /** IOCTL_SAMPLE_COUNTERS: one "key=value ..." line per channel, parsed. */
  counters(): Array<Record<string, number>> {
    const r = this.wdf.ioctl(IOCTL.counters, new Uint8Array(0), 16384);
    const text = new TextDecoder().decode(r.output);
    return text.split('\n').filter((l) => l.trim()).map((l) => Object.fromEntries(l.trim().split(/\s+/).map((kv) => {
      const [k, v] = kv.split('=');
      return [k!, Number(v)];
    })));
  }

  /** The server channel offered as channel number `ch`, or null. */
  offered(ch: number): Channel | null {
    const r = this.offers.get(ch);
    return r && this.kmcl.channels.has(r.handle) ? r.ch : null;
  }

  nextTimerDue(): number | null {
    return this.wdf.nextTimerDue();
  }

  runTimers(now: number): number {
    return this.wdf.runTimers(now);
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
