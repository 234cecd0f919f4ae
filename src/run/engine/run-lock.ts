// One nightly per lab at a time: a lock file beside the run directories,
// `<results>/.lock-<lab>.json`, holding who took it (pid, hostname, start time, run id).
//
// A lock must not outlive its process: a run that was killed leaves the file behind, and
// the next run takes it over when the holder is provably gone: same hostname, and no
// process with that pid, or (Linux) a process with that pid that started after the lock
// was taken, i.e. the pid was reused. A lock taken on another machine (a results folder on a share)
// cannot be proved stale from here; it is refused with who holds it, and `force` takes
// it anyway (the operator's call). Creation is `open(..., 'wx')`, so two runs racing for
// a free lock cannot both win; a stale lock is removed (by one process at a time, see
// breakLock) and taken again with the same exclusive create, so racing runs still cannot
// both win.

import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InfraError } from '../../errors.ts';

export interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
  runId: string;
}

export interface RunLock {
  file: string;
  owner: LockOwner;
  release(): void;
}

export function lockPath(resultsRoot: string, lab: string): string {
  return join(resultsRoot, `.lock-${lab.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
}

/** Whether a process with this pid exists on this machine. EPERM means it exists (someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process with this pid started (Linux: /proc/<pid>/stat field 22, in clock
 * ticks after boot, plus the boot time from /proc/stat); undefined where that cannot be read.
 */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined;
    return btime * 1000 + (ticks / CLOCK_TICKS) * 1000;
  } catch {
    return undefined;
  }
}

/** USER_HZ; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

export type Staleness = { stale: true; why: string } | { stale: false; why: string };

export function staleness(owner: LockOwner | undefined, here = hostname(), alive = pidAlive, startMs = processStartMs): Staleness {
  if (!owner) return { stale: true, why: 'the lock file is unreadable (a crash while it was written)' };
  if (owner.hostname !== here) return { stale: false, why: `held by pid ${owner.pid} on ${owner.hostname} since ${owner.startedAt} (run ${owner.runId}); cannot check another machine's processes` };
  if (!alive(owner.pid)) return { stale: true, why: `pid ${owner.pid} (run ${owner.runId}) is gone` };
  const started = startMs(owner.pid);
  const taken = Date.parse(owner.startedAt);
  // A second of slack: the tick count is coarse and the lock is written just after start.
  if (started !== undefined && Number.isFinite(taken) && started > taken + 1000) {
    return { stale: true, why: `pid ${owner.pid} now belongs to a process started after the lock was taken (run ${owner.runId} is gone)` };
  }
  return { stale: false, why: `held by pid ${owner.pid} on ${owner.hostname} since ${owner.startedAt} (run ${owner.runId})` };
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.hostname === 'string' && typeof o.startedAt === 'string' && typeof o.runId === 'string') return o as LockOwner;
  } catch { /* unreadable: treated as stale below */ }
  return undefined;
}

export interface AcquireOptions {
  /** Take a lock that cannot be proved stale (another machine's). */
  force?: boolean;
  /** Tells what happened to a stale lock. */
  onNote?: (message: string) => void;
}

export function acquireRunLock(resultsRoot: string, lab: string, runId: string, options: AcquireOptions = {}): RunLock {
  mkdirSync(resultsRoot, { recursive: true });
  const file = lockPath(resultsRoot, lab);
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(), runId };
  const text = `${JSON.stringify(owner)}\n`;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(file, 'wx');
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return held(file, owner);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new InfraError(`cannot create the run lock ${file}: ${(e as Error).message}`, { cause: e });
    }
    const current = readOwner(file);
    // A file just created by a run that has not written it yet reads as unreadable too.
    const st = current === undefined && youngerThan(file, UNWRITTEN_GRACE_MS) ? { stale: false, why: 'another run is taking it right now' } : staleness(current);
    if (!st.stale && !options.force) {
      throw new InfraError(`another run of lab ${lab} is in progress: ${st.why}; lock file ${file}`, {});
    }
    // Two runs may find the same stale lock at once (two --resume of one killed run).
    // Replacing it in place let both believe they held it; instead one of them breaks it
    // (under a second lock file), only if it is still the lock both judged, and each then
    // tries the exclusive create again, which only one wins.
    if (breakLock(file, current, options.force === true)) options.onNote?.(`took over the lock of lab ${lab}: ${st.why}`);
  }
  throw new InfraError(`could not take the run lock ${file}: another run keeps taking it`);
}

/** A lock file this young and still empty is being written, not left by a crash. */
const UNWRITTEN_GRACE_MS = 2000;

function youngerThan(file: string, ms: number): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs < ms;
  } catch {
    return false;
  }
}

function sameOwner(a: LockOwner | undefined, b: LockOwner | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.pid === b.pid && a.hostname === b.hostname && a.startedAt === b.startedAt && a.runId === b.runId;
}

/**
 * Removes the lock file if it still holds `judged` (the owner found stale), under
 * `<file>.break`, which only one process can hold. Returns whether it removed it.
 * Invariant: between reading the owner and removing the file nobody else can remove or
 * replace it: its holder is gone, and every other breaker waits for the break file.
 */
function breakLock(file: string, judged: LockOwner | undefined, force: boolean): boolean {
  const brk = `${file}.break`;
  const me: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(), runId: '(breaking a stale lock)' };
  try {
    const fd = openSync(brk, 'wx');
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new InfraError(`cannot create ${brk}: ${(e as Error).message}`, { cause: e });
    // Someone else is breaking it. A breaker that died there left its file: remove that.
    const other = readOwner(brk);
    if ((other === undefined && !youngerThan(brk, UNWRITTEN_GRACE_MS)) || (other !== undefined && staleness(other).stale)) rmSync(brk, { force: true });
    return false;
  }
  try {
    const now = readOwner(file);
    if (!sameOwner(now, judged) && !force) return false;
    rmSync(file, { force: true });
    return true;
  } finally {
    rmSync(brk, { force: true });
  }
}

function held(file: string, owner: LockOwner): RunLock {
  let released = false;
  return {
    file,
    owner,
    release: () => {
      if (released) return;
      released = true;
      const now = readOwner(file);
      // Only remove the lock if it is still ours (a forced takeover may have replaced it).
      if (now && now.pid === owner.pid && now.startedAt === owner.startedAt) rmSync(file, { force: true });
    },
  };
}
