// Ending a local PowerShell together with the processes it started.
//
// The process the bench spawns is not always the one running PowerShell: the PowerShell
// global tool (`dotnet tool install --global PowerShell`) installs `pwsh` as a small
// launcher that starts `dotnet pwsh.dll` as its child. Killing only the launcher would
// leave PowerShell running the timed-out command, so a discarded session is ended as a
// tree: children first are found, then everything is killed.

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The pids below `root` (children, grandchildren, ...), as /proc shows them now. Linux only; elsewhere empty. */
export function descendants(root: number): number[] {
  if (process.platform !== 'linux') return [];
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command name (field 2) may
      // hold spaces and parentheses, so the fields are read after its last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [pid, ppid] of parentOf) if (ppid === p) (out.push(pid), queue.push(pid));
  }
  return out;
}

/** SIGKILLs `root` and every process below it; processes already gone are fine. */
export function killTree(root: number): void {
  if (process.platform === 'win32') {
    spawnSync('taskkill', ['/PID', String(root), '/T', '/F'], { stdio: 'ignore', windowsHide: true });
    return;
  }
  for (const pid of [root, ...descendants(root)]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
