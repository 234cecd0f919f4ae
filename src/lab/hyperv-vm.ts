// A VM as the bench sees it on one host: its state (Get-VM .State, reference/prior-art-lab.md
// 4.1), how to read it, how to wait for a state with a deadline, and what to report when an
// operation fails: the state the VM was last seen in and the host's event log entries that
// mention it since the operation began.

import { InfraError } from '../errors.ts';
import { date, pipe, project, ps, script, type PsCommand, type PsInvocation, type PsStatement } from './host-shell/command.ts';
import { expectOk, HostCommandError } from './host-shell/errors.ts';
import type { HostShell } from './host-shell/types.ts';

// Microsoft.HyperV.PowerShell.VMState, the whole enum: the states with a `…Critical`
// twin (the VM's storage is unreachable), and those without one.
const CRITICAL_CAPABLE = ['Running', 'Off', 'Stopping', 'Saved', 'Paused', 'Starting', 'Reset', 'Saving', 'Pausing', 'Resuming', 'FastSaved', 'FastSaving'] as const;
const OTHER_STATES = ['Other', 'ForceShutdown', 'ForceReboot', 'Hibernated', 'ComponentServicing'] as const;
type CriticalCapable = (typeof CRITICAL_CAPABLE)[number];
export type VmState = CriticalCapable | `${CriticalCapable}Critical` | (typeof OTHER_STATES)[number];

export const ALL_VM_STATES: readonly VmState[] = [...OTHER_STATES, ...CRITICAL_CAPABLE, ...CRITICAL_CAPABLE.map((s) => `${s}Critical` as const)];

/** A state name as Get-VM prints it; anything unknown is `Other`. */
export function parseVmState(s: unknown): VmState {
  return typeof s === 'string' && (ALL_VM_STATES as readonly string[]).includes(s) ? (s as VmState) : 'Other';
}

/** States a VM only passes through (an operation may not start from them; cleanup kills the worker). */
export const TRANSIENT_STATES: readonly VmState[] = ['Starting', 'Stopping', 'Saving', 'Pausing', 'Resuming', 'Reset', 'FastSaving', 'ForceShutdown', 'ForceReboot', 'ComponentServicing'];

/**
 * The only states an operation starts from. Invariant: anything else (transient, the
 * `…Critical` states, Hibernated, FastSaved, Other, a state a later Hyper-V adds) is refused
 * before a cmdlet runs, because what Hyper-V does from there is not known to the bench.
 */
export const STABLE_STATES: readonly VmState[] = ['Running', 'Off', 'Saved', 'Paused'];

export interface VmInfo {
  id: string;
  name: string;
  state: VmState;
  status: string;
  heartbeat: string;
  notes: string;
  memoryAssigned: number;
}

export interface HostEvent {
  time: string;
  id: number;
  level: string;
  log: string;
  message: string;
}

export const HYPERV_LOGS = [
  'Microsoft-Windows-Hyper-V-Worker-Admin',
  'Microsoft-Windows-Hyper-V-VMMS-Admin',
  'Microsoft-Windows-Hyper-V-Worker-Operational',
  'Microsoft-Windows-Hyper-V-VMMS-Operational',
];

/** How a Hyper-V step talks to its host: the shell, modules to load first, and polling. */
export interface HostContext {
  shell: HostShell;
  /** Imported before each command; empty on a real host (Hyper-V autoloads). */
  modules: readonly string[];
  /** Deadline for one query command (Get-VM and the like). */
  queryTimeoutMs: number;
  pollMs: number;
}

export function hostContext(shell: HostShell, options: Partial<Omit<HostContext, 'shell'>> & { signal?: AbortSignal } = {}): HostContext {
  return {
    shell: options.signal ? withSignal(shell, options.signal) : shell,
    modules: options.modules ?? [], queryTimeoutMs: options.queryTimeoutMs ?? 60_000, pollMs: options.pollMs ?? 1000,
  };
}

/**
 * The same shell, with `signal` applied to every command (a run being stopped cancels
 * whatever Hyper-V step is under way, and every later one). Closing it closes the shell.
 */
export function withSignal(shell: HostShell, signal: AbortSignal): HostShell {
  return {
    host: shell.host,
    transport: shell.transport,
    run: (c, o) => shell.run(c, { ...o, signal: o.signal ? AbortSignal.any([o.signal, signal]) : signal }),
    close: () => shell.close(),
  };
}

export function cmd(ctx: HostContext, statements: Array<PsStatement | PsInvocation>, depth = 4): PsCommand {
  return script(statements, { imports: [...ctx.modules], depth });
}

export const VM_FIELDS = { Id: 'string', Name: 'string', State: 'string', Status: 'string', Heartbeat: 'string', Notes: 'string', MemoryAssigned: 'value' } as const;

export function toVmInfo(o: unknown): VmInfo {
  const r = (o ?? {}) as Record<string, unknown>;
  const str = (k: string): string => (typeof r[k] === 'string' ? (r[k] as string) : '');
  return { id: str('Id').toLowerCase(), name: str('Name'), state: parseVmState(r.State), status: str('Status'), heartbeat: str('Heartbeat'), notes: str('Notes'), memoryAssigned: Number(r.MemoryAssigned ?? 0) };
}

/**
 * The VM with this id, or undefined when the host has none. Only Get-VM's own "no such
 * VM" ids count (InvalidParameter, and ObjectNotFound which some builds use); anything
 * else, a missing Hyper-V module above all, is an error and never taken for "gone".
 */
export async function getVm(ctx: HostContext, id: string, timeoutMs = ctx.queryTimeoutMs): Promise<VmInfo | undefined> {
  const r = await ctx.shell.run(cmd(ctx, [pipe(ps('Get-VM', { Id: id }), project(VM_FIELDS))]), { timeoutMs });
  const rec = r.errorRecords[0];
  if (r.failure?.kind === 'error-record' && rec?.cmdlet === 'Get-VM' && (rec.errorId === 'InvalidParameter' || rec.errorId === 'ObjectNotFound')) return undefined;
  expectOk(r);
  return r.items[0] === undefined ? undefined : toVmInfo(r.items[0]);
}

export async function listVms(ctx: HostContext): Promise<VmInfo[]> {
  const r = expectOk(await ctx.shell.run(cmd(ctx, [pipe(ps('Get-VM'), project(VM_FIELDS))]), { timeoutMs: ctx.queryTimeoutMs }));
  return r.items.map(toVmInfo);
}

/** Event log entries that mention the VM id, newest first; none is not an error. */
export async function vmEvents(ctx: HostContext, id: string, since: Date): Promise<HostEvent[]> {
  const filter = { kind: 'hashtable' as const, entries: { LogName: HYPERV_LOGS, StartTime: date(since) } };
  const r = expectOk(await ctx.shell.run(cmd(ctx, [pipe(
    ps('Get-WinEvent', { FilterHashtable: filter, ErrorAction: 'SilentlyContinue' }),
    { kind: 'where', property: 'Message', op: 'like', value: `*${id}*` },
    project({ TimeCreated: 'string', Id: 'value', LevelDisplayName: 'string', LogName: 'string', Message: 'string' }),
  )]), { timeoutMs: ctx.queryTimeoutMs }));
  return r.items.map((o) => {
    const e = o as Record<string, unknown>;
    return { time: String(e.TimeCreated ?? ''), id: Number(e.Id ?? 0), level: String(e.LevelDisplayName ?? ''), log: String(e.LogName ?? ''), message: String(e.Message ?? '') };
  });
}

/** A Hyper-V step that did not reach its state: what was asked, what the VM showed, why. */
export class VmOperationError extends InfraError {
  readonly operation: string;
  readonly vmId: string;
  /** The state last seen, or 'missing' when the host no longer has the VM, 'unknown' if it could not be read. */
  readonly lastState: VmState | 'missing' | 'unknown';
  readonly events: HostEvent[];
  constructor(operation: string, vmId: string, host: string, why: string, lastState: VmOperationError['lastState'], events: HostEvent[], cause?: unknown) {
    const ev = events.slice(0, 5).map((e) => `\n  event ${e.id} ${e.level} ${e.time}: ${e.message}`).join('');
    super(`${operation} of VM ${vmId} on ${host} failed: ${why}; VM state: ${lastState}${ev}`, {
      host, timedOut: /timed out/.test(why), cause,
      command: cause instanceof HostCommandError ? cause.result.command : undefined,
    });
    this.name = 'VmOperationError';
    this.operation = operation;
    this.vmId = vmId;
    this.lastState = lastState;
    this.events = events;
  }
}

/** Builds the error for a failed step, reading state and events with a fresh command. */
export async function describeFailure(ctx: HostContext, operation: string, id: string, since: Date, why: string, cause?: unknown): Promise<VmOperationError> {
  let last: VmOperationError['lastState'] = 'unknown';
  let events: HostEvent[] = [];
  try {
    const vm = await getVm(ctx, id);
    last = vm ? vm.state : 'missing';
  } catch { /* the host may be the problem; report what we have */ }
  try {
    events = await vmEvents(ctx, id, new Date(since.getTime() - 60_000));
  } catch { /* as above */ }
  return new VmOperationError(operation, id, ctx.shell.host, why, last, events, cause);
}

/**
 * Polls until the VM is in one of `states`, or throws VmOperationError at the deadline.
 * A VM that vanishes meanwhile is a failure at once.
 */
export async function waitForState(ctx: HostContext, id: string, states: readonly VmState[], timeoutMs: number, operation: string, since = new Date()): Promise<VmInfo> {
  const deadline = performance.now() + timeoutMs;
  let last: VmInfo | undefined;
  let readError: unknown;
  for (;;) {
    const left = deadline - performance.now();
    readError = undefined;
    let vm: VmInfo | undefined;
    try {
      vm = await getVm(ctx, id, Math.max(1000, Math.min(ctx.queryTimeoutMs, left)));
    } catch (e) {
      readError = e;
    }
    if (readError === undefined) {
      if (vm === undefined) throw await describeFailure(ctx, operation, id, since, `the VM is no longer on ${ctx.shell.host} while waiting for ${states.join('/')}`);
      if (states.includes(vm.state)) return vm;
      last = vm;
    }
    if (performance.now() >= deadline) {
      const why = readError !== undefined
        ? `timed out after ${timeoutMs} ms waiting for ${states.join('/')}; last read failed: ${(readError as Error).message}`
        : `timed out after ${timeoutMs} ms waiting for ${states.join('/')} (still ${last?.state ?? 'unknown'})`;
      throw await describeFailure(ctx, operation, id, since, why, readError);
    }
    await sleep(Math.min(ctx.pollMs, Math.max(0, deadline - performance.now())));
  }
}

export const byId = (id: string) => ps('Get-VM', { Id: id });

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
