// Evidence collected from a host for a job (DESIGN.md "Runs and results"): the Hyper-V
// event log entries about the VM, a Get-VM snapshot of it, its checkpoints, and the serial
// console log the host-side pipe reader wrote. Files are written to a temp name and renamed,
// so a crash never leaves half a file. Reading the serial log goes through .NET
// (File.ReadAllBytes) and base64, which is the same on every PowerShell and keeps bytes
// exact.
//
// Host paths (a trace under vmRoot, the serial log) reach .NET resolved by the session
// first (hostPath, command.ts): .NET sees no PowerShell drive and reads a relative path
// against the process's directory, not $PWD, so without it the bench could read another
// file than the one New-Item made or a tool wrote (issue 14).

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { emit, hostPath, pipe, project, ps, staticCall } from './host-shell/command.ts';
import { expectOk } from './host-shell/errors.ts';
import type { HyperV } from './hyperv.ts';
import { byId, cmd, vmEvents, type HostEvent } from './hyperv-vm.ts';

export interface Artefacts {
  dir: string;
  files: string[];
  /** What could not be collected, and why; collection carries on past each failure. */
  missing: Array<{ what: string; why: string }>;
}

const VM_SNAPSHOT = {
  Id: 'string', Name: 'string', State: 'string', Status: 'string', Heartbeat: 'string', Uptime: 'string',
  MemoryAssigned: 'value', ProcessorCount: 'value', Generation: 'value', Notes: 'string', Path: 'string', ComputerName: 'string',
} as const;

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * The bytes of a file on the host, or undefined when there is none. `path` is a path as
 * the host's cmdlets see it (drive, PSDrive, or relative to the session's location). A
 * drive the host does not have is not "no file": it fails, naming the path.
 */
export async function readHostFile(hv: Pick<HyperV, 'ctx'>, path: string): Promise<Buffer | undefined> {
  const r = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [
    emit(staticCall('System.IO.File', 'Exists', hostPath(path))),
  ]), { timeoutMs: hv.ctx.queryTimeoutMs }));
  if (r.value !== true) return undefined;
  const data = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [
    emit(staticCall('System.Convert', 'ToBase64String', staticCall('System.IO.File', 'ReadAllBytes', hostPath(path)))),
  ]), { timeoutMs: hv.ctx.queryTimeoutMs }));
  return Buffer.from(String(data.value ?? ''), 'base64');
}

export interface CollectOptions {
  /** Only events from this time on (the job's start). */
  since: Date;
  /** Where the host-side reader of the VM's COM1 pipe writes, if any. */
  serialLogPath?: string | undefined;
}

export async function collectArtefacts(hv: HyperV, vmId: string, dir: string, options: CollectOptions): Promise<Artefacts> {
  await mkdir(dir, { recursive: true });
  const out: Artefacts = { dir, files: [], missing: [] };
  const step = async (what: string, file: string, get: () => Promise<string | Uint8Array | undefined>): Promise<void> => {
    try {
      const data = await get();
      if (data === undefined) { out.missing.push({ what, why: 'not present on the host' }); return; }
      await writeAtomic(join(dir, file), data);
      out.files.push(file);
    } catch (e) {
      out.missing.push({ what, why: e instanceof Error ? e.message : String(e) });
    }
  };
  await step('VM snapshot', 'vm.json', async () => {
    const r = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [pipe(byId(vmId), project(VM_SNAPSHOT))]), { timeoutMs: hv.ctx.queryTimeoutMs }));
    return `${JSON.stringify(r.items[0] ?? null, null, 2)}\n`;
  });
  await step('checkpoints', 'checkpoints.json', async () => {
    const r = expectOk(await hv.ctx.shell.run(cmd(hv.ctx, [pipe(byId(vmId), ps('Get-VMSnapshot'), project({ Id: 'string', Name: 'string', SnapshotType: 'string', CreationTime: 'string' }))]), { timeoutMs: hv.ctx.queryTimeoutMs }));
    return `${JSON.stringify(r.items, null, 2)}\n`;
  });
  await step('Hyper-V event log', 'hyperv-events.jsonl', async () => {
    const events: HostEvent[] = await vmEvents(hv.ctx, vmId, options.since);
    return events.reverse().map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
  });
  if (options.serialLogPath) {
    const path = options.serialLogPath;
    await step('serial log', 'serial-com1.log', () => readHostFile(hv, path));
  }
  return out;
}
