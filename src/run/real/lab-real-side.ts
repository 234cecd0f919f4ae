// The real side of the engine on a real lab: the job pipeline's RealSide and real-job's
// JobLab built from the src/lab classes (HyperV, migrate, GuestSsh, the driver packages,
// the device's control tool over the host shell, artefacts, cleanup). Every
// device-specific step goes through the device module the host runs (its inventory
// `device`, default the sample): its control tool, channel lines and instance GUIDs.
//
//   provision  differencing disk + VM (HyperV.provision), SSH to the guest, the template's
//              guest driver package installed, then the base checkpoint `bench-base`.
//              A template without a pinned guest host key gets the key the guest prints
//              on its serial console during first boot (cloud-init's fingerprint block),
//              read from COM1 by the host (lab/serial-log.ts); never the key the first
//              SSH connection happens to present.
//   reset      Restore-VMSnapshot bench-base, start if it came back Saved, SSH again
//   execute    runRealJob on the VM's JobLab (vm-job-lab.ts: the VSP's ETW capture started
//              before and converted after; each channel offered into the VM by the host's
//              handle broker, attach vm-handle). A loopback job has no VM at all: provision, reset and removal
//              do nothing, and execute runs it on loopback-lab.ts.
//   turnOff    artefacts first (event log, VM snapshot, checkpoints), then Stop-VM -TurnOff
//   keep       a checkpoint named after the failed job; the VM stays for debugging
//
// Exercised on the stand-in Hyper-V (test/lab/standin), which has no guest: a Linux
// guest's provisioning stops at SSH; a Windows guest's runs against a local PowerShell
// in its place (test/run/real/lab-real-side.test.ts). Jobs run through real-job.ts's fakes.

import { join } from 'node:path';
import { InfraError, InputError } from '../../errors.ts';
import { collectArtefacts } from '../../lab/artefacts.ts';
import { runIdOf, type HyperV } from '../../lab/hyperv.ts';
import { startSerialCapture, stopSerialCapture, type SerialCapture } from '../../lab/serial-log.ts';
import { pinFromConsole } from './console-host-key.ts';
import { listVms } from '../../lab/hyperv-vm.ts';
import { deviceOf, SAMPLE_DEVICE } from '../../device-api/load.ts';
import { hasTool, noLabControl, type ToolControl } from '../../device-api/device-module.ts';
import { closeLabGuest, connectLabGuest, installLabGuest, labGuestControl, reconnectLabGuest, type GuestConnectors, type LabGuest } from './lab-guest.ts';
import type { LabHost } from '../../lab/inventory.ts';
import type { VmTemplate } from '../../lab/template.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { Evidence, JobResult } from '../../report/summary.ts';
import type { Clock, RealOutcome, RealSide, VmHandle } from '../engine/job-pipeline.ts';
import type { PlannedJob } from '../engine/plan.ts';
import { loopbackJobLab, toolDrivers, vspProvider, type LoopbackLabOptions } from './loopback-lab.ts';
import { runRealJob, type JobLab, type RealJobOptions } from './real-job.ts';
import { vmJobLab } from './vm-job-lab.ts';

export const BASE_CHECKPOINT = 'bench-base';

/** The VmHandle ref of a loopback job: nothing to provision, reset or remove. */
const LOOPBACK = Symbol('loopback');

export interface LabRealSideOptions {
  runId: string;
  hosts: ReadonlyMap<string, LabHost>;
  /** Opened Hyper-V handles, one per host (lab-run.ts opens them). */
  hv: (host: string) => HyperV;
  templates: ReadonlyMap<string, VmTemplate>;
  /** The device's control tool on the hosts, instead of its module's `control.tool.program`. */
  controlTool?: string | undefined;
  clock: Clock;
  realJob: RealJobOptions;
  /** Where the host writes a VM's serial console log (default <vm folder>\serial-com1.log). */
  serialLogPath?: (vm: { name: string; vmPath: string }) => string;
  /** The bench's source commit the guest driver is built from, when known (git). */
  sourceCommit?: string | undefined;
  /** How to reach a Linux guest (default GuestSsh.connect); tests pass a fake. */
  connectGuest?: GuestConnectors['connectGuest'];
  /** How to reach a Windows guest's PowerShell (default openWindowsGuest); tests pass a local one. */
  connectWindowsGuest?: GuestConnectors['connectWindowsGuest'];
  /**
   * A loopback job's lab (default: loopbackJobLab over the control tool and logman on the host);
   * tests pass the C drivers on the emulator (test/run/real/support/c-loopback.ts).
   */
  loopbackLab?: ((o: LoopbackLabOptions, scenario: Scenario) => JobLab) | undefined;
}

interface LabVm {
  id: string;
  guest: LabGuest;
  template: VmTemplate;
  serial: SerialCapture | undefined;
  /** Read by the job pipeline into each result (job-pipeline.ts, base). */
  guestOs: string | undefined;
  drivers: NonNullable<JobResult['drivers']>;
}

export class LabRealSide implements RealSide {
  private readonly o: LabRealSideOptions;
  constructor(options: LabRealSideOptions) {
    this.o = options;
  }

  async provision(job: PlannedJob, host: string, name: string): Promise<VmHandle> {
    const { o } = this;
    // A loopback job has no VM: its peer is the client driver in the host (attach.ts).
    if (job.attach === 'loopback') return { key: name, host, name, memoryMB: 0, ref: LOOPBACK };
    const h = o.hosts.get(host)!;
    const t = o.templates.get(job.template);
    if (!t) throw new InfraError(`template ${job.template} is not loaded`);
    const hv = o.hv(host);
    const pinned = t.guest.hostKey;
    const vm = await hv.provision({
      name, runId: o.runId, parentVhd: t.parentDisk, vmRoot: h.vmRoot, switchName: h.switchName, generation: t.generation,
      memoryMB: t.memoryMB, processors: t.processors, secureBoot: t.secureBoot ? { enabled: true, template: 'MicrosoftUEFICertificateAuthority' } : { enabled: false },
      // Without a pin the console must be read from early on: wait for the guest after the capture starts.
      integrationServices: ['Heartbeat', 'Key-Value Pair Exchange', 'Shutdown'], waitForGuest: pinned !== undefined,
    });
    let serial: SerialCapture | undefined;
    try {
      let hostKey = pinned;
      let ipv4 = vm.ipv4;
      if (!hostKey) {
        const log = (o.serialLogPath ?? ((v) => `${v.vmPath}\\serial-com1.log`))({ name, vmPath: vm.vmPath });
        serial = await startSerialCapture(hv, vm.id, log);
        ipv4 = await hv.waitForGuest(vm.id);
        hostKey = await pinFromConsole(hv, log, hv.timeouts.guestReadyMs, o.clock);
      }
      const guest = await connectLabGuest(t, { name, host: ipv4!, port: t.guest.sshPort, user: t.guest.user, credential: t.guest.credential, hostKey }, o);
      // The template's driver package: its files copied, its install command run; the
      // guest driver's build and the guest's kernel (OS) go into every result of this VM.
      const installed = await installLabGuest(guest, t, o.sourceCommit).catch((e: unknown) => { closeLabGuest(guest); throw e; });
      await hv.checkpoint(vm.id, BASE_CHECKPOINT);
      const lvm: LabVm = { id: vm.id, guest, template: t, serial, ...installed };
      return { key: name, host, name, memoryMB: t.memoryMB, ref: lvm };
    } catch (e) {
      if (serial) await stopSerialCapture(hv, serial).catch(() => undefined);
      await hv.removeQuietly(vm.id, [vm.diskPath]);
      throw e;
    }
  }

  async reset(vm: VmHandle): Promise<void> {
    if (vm.ref === LOOPBACK) return;
    const r = vm.ref as LabVm;
    const hv = this.o.hv(vm.host);
    const back = await hv.restoreCheckpoint(r.id, BASE_CHECKPOINT);
    if (back.state !== 'Running') await hv.start(r.id);
    await reconnectLabGuest(r.guest);
  }

  async execute(job: PlannedJob, scenario: Scenario, vm: VmHandle, hosts: string[], dir: string, signal: AbortSignal): Promise<RealOutcome> {
    if (vm.ref === LOOPBACK) {
      const lo = this.toolOptions(vm);
      const lab = this.o.loopbackLab ? this.o.loopbackLab(lo, scenario) : loopbackJobLab(lo, toolDrivers(lo));
      return runRealJob({ scenario, seed: job.seed, hostMap: job.hostMap }, lab, dir, signal, this.o.realJob);
    }
    const r = vm.ref as LabVm;
    const lab = this.jobLab(vm, hosts);
    const out = await runRealJob({ scenario, seed: job.seed, hostMap: job.hostMap }, lab, dir, signal, this.o.realJob);
    const where = out.kind === 'infra' ? out.host ?? vm.host : vm.host;
    const artefacts = await collectArtefacts(this.o.hv(where), r.id, join(dir, 'host'), { since: new Date(Date.now() - (out.kind === 'infra' ? 3_600_000 : out.realMs + 60_000)), serialLogPath: r.serial?.logPath }).catch(() => undefined);
    const extra = artefacts ? artefacts.files.map((f) => join(artefacts.dir, f)) : [];
    return { ...out, evidence: { ...out.evidence, artefacts: [...(out.evidence.artefacts ?? []), ...extra] } };
  }

  async turnOff(vm: VmHandle, dir: string): Promise<Evidence> {
    if (vm.ref === LOOPBACK) return {};
    const r = vm.ref as LabVm;
    const hv = this.o.hv(vm.host);
    const a = await collectArtefacts(hv, r.id, join(dir, 'host'), { since: new Date(Date.now() - 3_600_000) }).catch(() => undefined);
    await hv.turnOff(r.id).catch(() => undefined);
    return { artefacts: a?.files.map((f) => join(a.dir, f)) };
  }

  async remove(vm: VmHandle): Promise<void> {
    if (vm.ref === LOOPBACK) return;
    const r = vm.ref as LabVm | undefined;
    if (r) closeLabGuest(r.guest);
    const hv = this.o.hv(vm.host);
    if (r?.serial) await stopSerialCapture(hv, r.serial).catch(() => undefined);
    if (r) return hv.remove(r.id);
    // Provisioning failed before we learnt the id: find the VM by its name and run tag.
    for (const v of await listVms(hv.ctx)) if (v.name === vm.name && runIdOf(v.notes) === this.o.runId) await hv.remove(v.id);
  }

  async keep(vm: VmHandle, jobId: string): Promise<void> {
    if (vm.ref === LOOPBACK) return;
    const r = vm.ref as LabVm;
    closeLabGuest(r.guest);
    await this.o.hv(vm.host).checkpoint(r.id, `failed-${jobId}`.slice(0, 100));
  }

  /** The run's VMs on a host, except kept ones (by name), removed. */
  async sweepHost(host: string, keep: ReadonlySet<string>): Promise<number> {
    const hv = this.o.hv(host);
    let n = 0;
    for (const v of await listVms(hv.ctx)) {
      if (runIdOf(v.notes) !== this.o.runId || keep.has(v.name)) continue;
      await hv.remove(v.id);
      n++;
    }
    return n;
  }

  /** The device control of a host's device module, and where its tool is on the host. */
  private control(host: string): { control: ToolControl; program: string } {
    const h = this.o.hosts.get(host)!;
    const d = deviceOf(h.device?.path ?? SAMPLE_DEVICE);
    // lab-run.ts refuses such a host at load (exit 2); this is for a caller that did not.
    if (!hasTool(d.control)) throw new InputError(`device ${d.name} has no control interface for a real lab${noLabControl(d)}`, { file: h.source.file, line: h.device?.line, field: h.device?.field ?? 'device' });
    return { control: d.control, program: this.o.controlTool ?? d.control.tool.program };
  }

  /** The control tool, trace capture and work folder of a job on the host. */
  private toolOptions(vm: VmHandle): LoopbackLabOptions {
    const { o } = this;
    const h = o.hosts.get(vm.host)!;
    return {
      hv: o.hv(vm.host), host: vm.host, ...this.control(vm.host), clock: o.clock,
      workDir: `${h.vmRoot}\\${vm.name}`, session: `bench-${o.runId}-${vm.name}`.slice(0, 60), vspProvider: vspProvider(h),
    };
  }

  private jobLab(vm: VmHandle, hosts: string[]): JobLab {
    const { o } = this;
    const r = vm.ref as LabVm;
    const tool = this.toolOptions(vm);
    return vmJobLab({
      hosts: o.hosts, hv: o.hv, tool, vm: { id: r.id, name: vm.name, host: vm.host }, jobHosts: hosts,
      guest: labGuestControl(r.guest, r.template, tool.control), clock: o.clock, openTimeoutMs: o.realJob.opTimeoutMs,
    });
  }
}
