// Live migration between two hosts (shared nothing: the VM's storage moves with it).
// Every move is preceded by Compare-VM; its incompatibilities are reported as they are,
// before anything moves. After Move-VM the VM must be on the destination, in the state it
// had, and gone from the source. On failure the error says where the VM is now.

import { InfraError } from '../errors.ts';
import { expand, pipe, project, ps } from './host-shell/command.ts';
import { expectOk, failureError } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { byId, cmd, describeFailure, getVm, STABLE_STATES, TRANSIENT_STATES, waitForState, type VmInfo } from './hyperv-vm.ts';

export interface Incompatibility {
  message: string;
  messageId: number;
  source: string;
}

/** Compare-VM found reasons the VM cannot move; nothing was changed. */
export class MigrationBlockedError extends InfraError {
  readonly incompatibilities: Incompatibility[];
  constructor(vmId: string, from: string, to: string, list: Incompatibility[]) {
    super(`VM ${vmId} cannot move from ${from} to ${to}:${list.map((i) => `\n  ${i.messageId}: ${i.message}`).join('')}`, { host: from });
    this.name = 'MigrationBlockedError';
    this.incompatibilities = list;
  }
}

export interface MoveOptions {
  /** Folder on the destination host for the VM's files and disks. */
  destinationStoragePath: string;
  /** The name Move-VM uses for the destination (default: the destination shell's host name). */
  destinationHost?: string;
}

export async function compareMigration(src: HyperV, id: string, destinationHost: string, destinationStoragePath: string): Promise<Incompatibility[]> {
  const r = expectOk(await src.ctx.shell.run(cmd(src.ctx, [pipe(
    byId(id),
    ps('Compare-VM', { DestinationHost: destinationHost, IncludeStorage: true, DestinationStoragePath: destinationStoragePath }),
    expand('Incompatibilities'),
    project({ Message: 'string', MessageId: 'value', Source: 'string' }),
  )]), { timeoutMs: src.ctx.queryTimeoutMs }));
  return r.items.map((o) => {
    const x = o as Record<string, unknown>;
    return { message: String(x.Message ?? ''), messageId: Number(x.MessageId ?? 0), source: String(x.Source ?? '') };
  });
}

/** Moves the VM from `src` to `dst`; returns it as the destination sees it. */
export async function migrate(src: HyperV, dst: HyperV, id: string, options: MoveOptions): Promise<VmInfo> {
  const to = options.destinationHost ?? dst.host;
  const since = new Date();
  const before = await getVm(src.ctx, id);
  if (!before) throw await describeFailure(src.ctx, 'Move-VM', id, since, `the VM is not on ${src.host}`);
  // Only from a state known to be stable: what Move-VM does from a transient, critical or
  // unknown state is not something the bench can tell apart from a failed move.
  if (!STABLE_STATES.includes(before.state)) {
    const kind = TRANSIENT_STATES.includes(before.state) ? 'transient' : 'not a known stable';
    throw await describeFailure(src.ctx, 'Move-VM', id, since, `the VM is in ${kind} state ${before.state}; the bench only starts Move-VM from ${STABLE_STATES.join('/')}`);
  }
  const blockers = await compareMigration(src, id, to, options.destinationStoragePath);
  if (blockers.length > 0) throw new MigrationBlockedError(id, src.host, to, blockers);

  const r = await src.ctx.shell.run(cmd(src.ctx, [pipe(byId(id), ps('Move-VM', { DestinationHost: to, IncludeStorage: true, DestinationStoragePath: options.destinationStoragePath }))]), { timeoutMs: src.timeouts.migrateMs });
  const err = failureError(r);
  if (err) throw await describeFailure(src.ctx, 'Move-VM', id, since, `${err.message}; ${await whereIs(src, dst, id)}`, err);

  const arrived = await waitForState(dst.ctx, id, [before.state], src.timeouts.migrateMs, 'Move-VM (destination)', since);
  const left = await getVm(src.ctx, id).catch(() => undefined);
  if (left) throw await describeFailure(src.ctx, 'Move-VM', id, since, `the VM is on both ${src.host} and ${dst.host} after the move`);
  return arrived;
}

/** There and back: A -> B, then B -> A, as the migration scenarios do. */
export async function migrateRoundTrip(a: HyperV, b: HyperV, id: string, storageOnB: string, storageOnA: string, names: { a?: string; b?: string } = {}): Promise<VmInfo> {
  await migrate(a, b, id, { destinationStoragePath: storageOnB, destinationHost: names.b });
  return migrate(b, a, id, { destinationStoragePath: storageOnA, destinationHost: names.a });
}

/** A sentence saying on which host the VM is after a failed move, as far as can be told. */
async function whereIs(src: HyperV, dst: HyperV, id: string): Promise<string> {
  const here = await getVm(src.ctx, id).then((v) => v?.state ?? 'absent', () => 'unknown (source not answering)');
  const there = await getVm(dst.ctx, id).then((v) => v?.state ?? 'absent', () => 'unknown (destination not answering)');
  return `on ${src.host}: ${here}, on ${dst.host}: ${there}`;
}
