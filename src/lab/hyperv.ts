// Typed Hyper-V operations over a HostShell, every VM addressed by id (names are not
// unique in Hyper-V). Each operation runs its cmdlet with a deadline, then waits for the
// state it should leave the VM in; on any failure it throws VmOperationError carrying the
// VM's last state and the host's event log entries about it.
//
// Invocations follow reference/prior-art-lab.md 8(c).

import { InputError } from '../errors.ts';
import { expand, pipe, project, ps, where, type PsInvocation, type PsStatement } from './host-shell/command.ts';
import { expectOk, failureError } from './host-shell/errors.ts';
import { byId, cmd, describeFailure, getVm, STABLE_STATES, TRANSIENT_STATES, waitForState, type HostContext, type VmInfo, type VmState } from './hyperv-vm.ts';

/** The Notes tag that marks a VM as the bench's; cleanup and the sweep go by it. */
export const RUN_TAG_PREFIX = 'vmbus-bench run=';
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function runTag(runId: string): string {
  if (!RUN_ID.test(runId)) throw new InputError(`run id ${JSON.stringify(runId)} must be 1-64 letters, digits, ".", "_" or "-"`);
  return `${RUN_TAG_PREFIX}${runId}`;
}

/** The run id in a VM's Notes, or undefined when the VM is not the bench's. */
export function runIdOf(notes: string): string | undefined {
  if (!notes.startsWith(RUN_TAG_PREFIX)) return undefined;
  const id = notes.slice(RUN_TAG_PREFIX.length).trim();
  return RUN_ID.test(id) ? id : undefined;
}

export interface Timeouts {
  /** New-VHD, New-VM and the settings. */
  provisionMs: number;
  /** Start-VM until Running. */
  startMs: number;
  /** Running until heartbeat OK and an IPv4 address. */
  guestReadyMs: number;
  saveMs: number;
  checkpointMs: number;
  stopMs: number;
  pauseMs: number;
  migrateMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  provisionMs: 120_000, startMs: 120_000, guestReadyMs: 600_000, saveMs: 300_000,
  checkpointMs: 300_000, stopMs: 120_000, pauseMs: 60_000, migrateMs: 1_800_000,
};

export interface ProvisionSpec {
  /** VM name; the bench's names start with `bench-`. */
  name: string;
  runId: string;
  /** The cached parent disk on the host; each VM gets a differencing disk of it. */
  parentVhd: string;
  /** Host folder under which the VM's folder and disk are made. */
  vmRoot: string;
  switchName: string;
  generation: 1 | 2;
  memoryMB: number;
  processors: number;
  secureBoot: { enabled: false } | { enabled: true; template: string };
  integrationServices: readonly string[];
  /** Wait for heartbeat and an IPv4 address after start (skip for VMs without KVP). */
  waitForGuest: boolean;
}

export interface ProvisionedVm {
  id: string;
  name: string;
  host: string;
  diskPath: string;
  vmPath: string;
  /** The named pipe COM1 is connected to (the serial log is read from it). */
  com1Pipe: string;
  ipv4: string | undefined;
}

function winJoin(...parts: string[]): string {
  return parts.map((p, i) => (i === 0 ? p.replace(/[\\/]+$/, '') : p.replace(/^[\\/]+|[\\/]+$/g, ''))).join('\\');
}

export class HyperV {
  readonly ctx: HostContext;
  readonly timeouts: Timeouts;
  constructor(ctx: HostContext, timeouts: Partial<Timeouts> = {}) {
    this.ctx = ctx;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
  }

  get host(): string {
    return this.ctx.shell.host;
  }

  getVm(id: string): Promise<VmInfo | undefined> {
    return getVm(this.ctx, id);
  }

  /**
   * Differencing disk, VM, settings, start, wait for the guest. A failure after the VM
   * exists removes it again before the error is thrown, so nothing leaks from here.
   */
  async provision(spec: ProvisionSpec): Promise<ProvisionedVm> {
    const tag = runTag(spec.runId);
    // The name becomes a folder under vmRoot and a Get-VM -Name pattern: no separators,
    // no wildcards.
    if (!VM_NAME.test(spec.name)) throw new InputError(`VM name ${JSON.stringify(spec.name)} must be 1-64 letters, digits, ".", "_" or "-"`);
    const vmPath = winJoin(spec.vmRoot, spec.name);
    const diskPath = winJoin(vmPath, `${spec.name}.vhdx`);
    const since = new Date();
    const t = { timeoutMs: this.timeouts.provisionMs };
    expectOk(await this.ctx.shell.run(cmd(this.ctx, [ps('New-VHD', { Path: diskPath, ParentPath: spec.parentVhd, Differencing: true })]), t));
    let id: string;
    try {
      // The run tag goes on in the same pipeline as New-VM, so no VM of ours ever exists
      // without it: the sweep finds whatever a crash leaves behind.
      const made = expectOk(await this.ctx.shell.run(cmd(this.ctx, [pipe(
        ps('New-VM', { Name: spec.name, Generation: spec.generation, MemoryStartupBytes: spec.memoryMB * 1024 * 1024, VHDPath: diskPath, SwitchName: spec.switchName, Path: vmPath, Force: true }),
        ps('Set-VM', { Notes: tag, Passthru: true }),
        project({ Id: 'string' }),
      )]), t));
      id = String((made.items[0] as { Id?: unknown } | undefined)?.Id ?? '').toLowerCase();
      if (!id) throw new Error('New-VM returned no id');
    } catch (e) {
      // New-VM may have made the VM before failing or timing out: find it by its
      // (run-unique) name and tag, and remove it with the disk.
      await this.#removeTaggedByName(spec.name, tag);
      await this.ctx.shell.run(cmd(this.ctx, [ps('Remove-Item', { LiteralPath: diskPath, Force: true, ErrorAction: 'SilentlyContinue' })]), t).catch(() => undefined);
      throw e;
    }
    const com1Pipe = `\\\\.\\pipe\\${id}-com1`;
    try {
      const settings: Array<PsStatement | PsInvocation> = [
        pipe(byId(id), ps('Set-VM', { CheckpointType: 'Standard', AutomaticCheckpointsEnabled: false, AutomaticStopAction: 'TurnOff', StaticMemory: true })),
        pipe(byId(id), ps('Set-VMProcessor', { Count: spec.processors, CompatibilityForMigrationEnabled: true })),
        pipe(byId(id), ps('Set-VMComPort', { Number: 1, Path: com1Pipe })),
      ];
      if (spec.generation === 2) {
        settings.push(pipe(byId(id), ps('Set-VMFirmware', spec.secureBoot.enabled ? { EnableSecureBoot: 'On', SecureBootTemplate: spec.secureBoot.template } : { EnableSecureBoot: 'Off' })));
      }
      if (spec.integrationServices.length > 0) settings.push(pipe(byId(id), ps('Enable-VMIntegrationService', { Name: [...spec.integrationServices] })));
      const r = await this.ctx.shell.run(cmd(this.ctx, settings), t);
      if (r.failure) throw await describeFailure(this.ctx, 'configure', id, since, failureError(r)!.message, failureError(r));
      await this.start(id);
      const ipv4 = spec.waitForGuest ? await this.waitForGuest(id) : undefined;
      return { id, name: spec.name, host: this.host, diskPath, vmPath, com1Pipe, ipv4 };
    } catch (e) {
      await this.removeQuietly(id, [diskPath]);
      throw e;
    }
  }

  /** Runs one cmdlet on the VM, then waits for `to`. Refuses to start from a state not known to be stable. */
  async #transition(operation: string, id: string, cmdlet: ReturnType<typeof ps>, to: readonly VmState[], timeoutMs: number): Promise<VmInfo> {
    await this.#stable(id, operation);
    const since = new Date();
    const r = await this.ctx.shell.run(cmd(this.ctx, [pipe(byId(id), cmdlet)]), { timeoutMs });
    const err = failureError(r);
    if (err) throw await describeFailure(this.ctx, operation, id, since, err.message, err);
    return waitForState(this.ctx, id, to, timeoutMs, operation, since);
  }

  start(id: string): Promise<VmInfo> {
    return this.#transition('Start-VM', id, ps('Start-VM'), ['Running'], this.timeouts.startMs);
  }

  /** Save-VM: the VM's memory and device state go to disk; Start-VM restores them. */
  save(id: string): Promise<VmInfo> {
    return this.#transition('Save-VM', id, ps('Save-VM'), ['Saved'], this.timeouts.saveMs);
  }

  /** Save-VM then Start-VM: the whole-VM save/restore the bench checks packets across. */
  async saveAndRestore(id: string): Promise<VmInfo> {
    await this.save(id);
    return this.start(id);
  }

  suspend(id: string): Promise<VmInfo> {
    return this.#transition('Suspend-VM', id, ps('Suspend-VM'), ['Paused'], this.timeouts.pauseMs);
  }

  resume(id: string): Promise<VmInfo> {
    return this.#transition('Resume-VM', id, ps('Resume-VM'), ['Running'], this.timeouts.pauseMs);
  }

  /** Pulls the plug (Stop-VM -TurnOff); no guest shutdown. */
  turnOff(id: string): Promise<VmInfo> {
    return this.#transition('Stop-VM -TurnOff', id, ps('Stop-VM', { TurnOff: true, Force: true }), ['Off'], this.timeouts.stopMs);
  }

  /** Heartbeat OK and an IPv4 address from KVP; returns the address. */
  async waitForGuest(id: string): Promise<string> {
    const since = new Date();
    const deadline = performance.now() + this.timeouts.guestReadyMs;
    for (;;) {
      const r = await this.ctx.shell.run(cmd(this.ctx, [
        pipe(byId(id), ps('Get-VMIntegrationService', { Name: 'Heartbeat' }), project({ PrimaryStatusDescription: 'string' })),
        pipe(byId(id), ps('Get-VMNetworkAdapter'), expand('IPAddresses')),
      ]), { timeoutMs: Math.max(1000, Math.min(this.ctx.queryTimeoutMs, deadline - performance.now())) });
      if (!r.failure) {
        const heartbeat = r.items.some((o) => typeof o === 'object' && o !== null && (o as Record<string, unknown>).PrimaryStatusDescription === 'OK');
        // Link-local IPv6 appears first; the bench reaches guests over IPv4.
        const ipv4 = r.items.find((o): o is string => typeof o === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(o));
        if (heartbeat && ipv4) return ipv4;
      }
      if (performance.now() >= deadline) {
        throw await describeFailure(this.ctx, 'wait for guest', id, since, `timed out after ${this.timeouts.guestReadyMs} ms waiting for heartbeat OK and an IPv4 address`, failureError(r));
      }
      await new Promise((res) => setTimeout(res, this.ctx.pollMs));
    }
  }

  /** A standard checkpoint (the base for fast resets); the VM keeps its state. */
  async checkpoint(id: string, name: string): Promise<void> {
    const before = await this.#stable(id, 'Checkpoint-VM');
    await this.#transition('Checkpoint-VM', id, ps('Checkpoint-VM', { SnapshotName: name }), [before.state], this.timeouts.checkpointMs);
  }

  /**
   * Runs `Get-VMSnapshot -Name <name> | <cmdlet> -Passthru` and fails unless a checkpoint
   * came through: a missing checkpoint must never pass as restored or removed, whether the
   * host's Get-VMSnapshot reports it (ObjectNotFound) or just returns nothing.
   */
  async #onCheckpoint(operation: 'Restore-VMSnapshot' | 'Remove-VMSnapshot', id: string, name: string, params: Record<string, boolean>): Promise<void> {
    await this.#stable(id, operation);
    const since = new Date();
    const r = await this.ctx.shell.run(cmd(this.ctx, [pipe(byId(id), ps('Get-VMSnapshot', { Name: name }), ps(operation, { ...params, Passthru: true }), project({ Name: 'string' }))]), { timeoutMs: this.timeouts.checkpointMs });
    const err = failureError(r);
    if (err) throw await describeFailure(this.ctx, operation, id, since, err.message, err);
    if (r.items.length === 0) throw await describeFailure(this.ctx, operation, id, since, `no checkpoint named ${JSON.stringify(name)}`);
  }

  async checkpoints(id: string): Promise<Array<{ id: string; name: string }>> {
    const r = expectOk(await this.ctx.shell.run(cmd(this.ctx, [pipe(byId(id), ps('Get-VMSnapshot'), project({ Id: 'string', Name: 'string' }))]), { timeoutMs: this.ctx.queryTimeoutMs }));
    return r.items.map((o) => ({ id: String((o as Record<string, unknown>).Id ?? ''), name: String((o as Record<string, unknown>).Name ?? '') }));
  }

  /**
   * Applies a checkpoint. A standard checkpoint returns the VM to the state it was taken
   * in (a running VM's comes back Running), a production one to Off; a checkpoint that
   * does not exist is a failure.
   */
  async restoreCheckpoint(id: string, name: string): Promise<VmInfo> {
    const since = new Date();
    await this.#onCheckpoint('Restore-VMSnapshot', id, name, { Confirm: false });
    return waitForState(this.ctx, id, STABLE_STATES, this.timeouts.checkpointMs, 'Restore-VMSnapshot', since);
  }

  async removeCheckpoint(id: string, name: string): Promise<void> {
    await this.#onCheckpoint('Remove-VMSnapshot', id, name, { Confirm: false });
  }

  /** The VM if it is in a state an operation may start from (STABLE_STATES); else a VmOperationError. */
  async #stable(id: string, operation: string): Promise<VmInfo> {
    let vm: VmInfo | undefined;
    try {
      vm = await getVm(this.ctx, id);
    } catch (e) {
      // Canceled, timed out, host gone: still a failure of this operation, as callers expect.
      throw await describeFailure(this.ctx, operation, id, new Date(), (e as Error).message, e);
    }
    if (!vm) throw await describeFailure(this.ctx, operation, id, new Date(), 'no such VM');
    if (!STABLE_STATES.includes(vm.state)) {
      const kind = TRANSIENT_STATES.includes(vm.state) ? 'transient' : 'not a known stable';
      throw await describeFailure(this.ctx, operation, id, new Date(), `the VM is in ${kind} state ${vm.state}; the bench only starts ${operation} from ${STABLE_STATES.join('/')}`);
    }
    return vm;
  }

  /** Disk paths of the VM (for deletion after Remove-VM, which keeps them). */
  async diskPaths(id: string): Promise<string[]> {
    const r = expectOk(await this.ctx.shell.run(cmd(this.ctx, [pipe(byId(id), ps('Get-VMHardDiskDrive'), expand('Path'))]), { timeoutMs: this.ctx.queryTimeoutMs }));
    return r.items.filter((p): p is string => typeof p === 'string');
  }

  /**
   * Turns the VM off if needed, removes it and deletes its disks. A VM that is already
   * gone is fine. Throws VmOperationError when the VM is still there afterwards.
   */
  async remove(id: string, extraPaths: readonly string[] = []): Promise<void> {
    const since = new Date();
    const vm = await getVm(this.ctx, id);
    let paths = [...extraPaths];
    if (vm) {
      paths = [...new Set([...(await this.diskPaths(id).catch(() => [] as string[])), ...extraPaths])];
      if (vm.state !== 'Off' && vm.state !== 'Saved') {
        const off = await this.ctx.shell.run(cmd(this.ctx, [pipe(byId(id), ps('Stop-VM', { TurnOff: true, Force: true }))]), { timeoutMs: this.timeouts.stopMs });
        const err = failureError(off);
        // A VM stuck in a transition (Saving, Stopping...) refuses even TurnOff; killing
        // its worker process is what is left.
        if (err && TRANSIENT_STATES.includes((await getVm(this.ctx, id))?.state ?? 'Off')) await this.#killWorker(id, since);
        else if (err) throw await describeFailure(this.ctx, 'remove (turn off)', id, since, err.message, err);
      }
      const rm = await this.ctx.shell.run(cmd(this.ctx, [pipe(byId(id), ps('Remove-VM', { Force: true }))]), { timeoutMs: this.timeouts.stopMs });
      if (rm.failure && (await getVm(this.ctx, id)) !== undefined) throw await describeFailure(this.ctx, 'Remove-VM', id, since, failureError(rm)!.message, failureError(rm));
    }
    if (paths.length > 0) {
      expectOk(await this.ctx.shell.run(cmd(this.ctx, [ps('Remove-Item', { LiteralPath: paths, Force: true, ErrorAction: 'SilentlyContinue' })]), { timeoutMs: this.ctx.queryTimeoutMs }));
    }
  }

  /** Kills the VM's worker process (vmwp.exe, whose command line holds the VM id) and waits for Off. */
  async #killWorker(id: string, since: Date): Promise<void> {
    const r = expectOk(await this.ctx.shell.run(cmd(this.ctx, [pipe(
      ps('Get-CimInstance', { ClassName: 'Win32_Process', Filter: "Name='vmwp.exe'" }),
      where('CommandLine', 'like', `*${id}*`),
      expand('ProcessId'),
    )]), { timeoutMs: this.ctx.queryTimeoutMs }));
    const pids = r.items.filter((p): p is number => typeof p === 'number');
    if (pids.length === 0) throw await describeFailure(this.ctx, 'remove (kill worker)', id, since, 'the VM refuses to turn off and no worker process was found for it');
    expectOk(await this.ctx.shell.run(cmd(this.ctx, [ps('Stop-Process', { Id: pids, Force: true })]), { timeoutMs: this.ctx.queryTimeoutMs }));
    await waitForState(this.ctx, id, ['Off'], this.timeouts.stopMs, 'remove (kill worker)', since);
  }

  async #removeTaggedByName(name: string, tag: string): Promise<void> {
    try {
      const r = await this.ctx.shell.run(cmd(this.ctx, [pipe(ps('Get-VM', { Name: name, ErrorAction: 'SilentlyContinue' }), project({ Id: 'string', Notes: 'string' }))]), { timeoutMs: this.ctx.queryTimeoutMs });
      for (const o of r.items as Array<{ Id?: string; Notes?: string }>) {
        // Ours: tagged, or untagged because the pipeline stopped between New-VM and
        // Set-VM, which only a bench-named VM created this moment can be.
        if (o.Id && (o.Notes === tag || (o.Notes === '' && name.startsWith('bench-')))) await this.removeQuietly(o.Id.toLowerCase());
      }
    } catch {
      // Best effort; the sweep finds tagged leftovers later.
    }
  }

  async removeQuietly(id: string, extraPaths: readonly string[] = []): Promise<void> {
    try {
      await this.remove(id, extraPaths);
    } catch {
      // The caller is already failing with a better error; the sweep catches leftovers.
    }
  }
}

