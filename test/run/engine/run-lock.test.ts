// One nightly per lab: a live holder keeps the lock, a dead one does not, and another
// machine's lock is refused unless forced.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireRunLock, lockPath, processStartMs, staleness } from '../../../src/run/engine/run-lock.ts';

const root = () => mkdtempSync(join(tmpdir(), 'run-lock-'));

describe('run lock', () => {
  it('refuses a second run of the same lab while the first holds the lock, and frees it on release', () => {
    const dir = root();
    const lock = acquireRunLock(dir, 'lab-a', 'r1');
    expect(() => acquireRunLock(dir, 'lab-a', 'r2')).toThrow(/another run of lab lab-a is in progress: held by pid/);
    const other = acquireRunLock(dir, 'lab-b', 'r3');
    other.release();
    lock.release();
    expect(existsSync(lockPath(dir, 'lab-a'))).toBe(false);
    acquireRunLock(dir, 'lab-a', 'r4').release();
  });

  it('takes over a lock whose process is gone', () => {
    const dir = root();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(lockPath(dir, 'lab'), JSON.stringify({ pid: Number(dead), hostname: hostname(), startedAt: 'then', runId: 'old' }));
    const notes: string[] = [];
    const lock = acquireRunLock(dir, 'lab', 'new', { onNote: (m) => notes.push(m) });
    expect(lock.owner.runId).toBe('new');
    expect(notes.join()).toMatch(/pid \d+ \(run old\) is gone/);
    lock.release();
  });

  it('refuses a lock taken on another machine unless forced', () => {
    const dir = root();
    writeFileSync(lockPath(dir, 'lab'), JSON.stringify({ pid: 1, hostname: 'elsewhere', startedAt: 'then', runId: 'old' }));
    expect(() => acquireRunLock(dir, 'lab', 'new')).toThrow(/on elsewhere .*cannot check another machine/);
    acquireRunLock(dir, 'lab', 'new', { force: true }).release();
  });

  it('treats an unreadable lock file as stale', () => {
    expect(staleness(undefined).stale).toBe(true);
    expect(staleness({ pid: process.pid, hostname: 'me', startedAt: 'x', runId: 'r' }, 'me').stale).toBe(false);
    expect(staleness({ pid: 123, hostname: 'me', startedAt: 'x', runId: 'r' }, 'me', () => false).stale).toBe(true);
  });

  it('treats a lock whose pid was reused by a later process as stale', () => {
    const taken = '2026-11-24T02:00:00.000Z';
    const owner = { pid: 4242, hostname: 'me', startedAt: taken, runId: 'r' };
    expect(staleness(owner, 'me', () => true, () => Date.parse(taken) + 3_600_000)).toMatchObject({ stale: true, why: expect.stringMatching(/started after the lock was taken/) });
    expect(staleness(owner, 'me', () => true, () => Date.parse(taken) - 500).stale).toBe(false);
    expect(staleness(owner, 'me', () => true, () => undefined).stale).toBe(false);
  });

  it('reads this process\'s start time before now', () => {
    const start = processStartMs(process.pid);
    if (process.platform !== 'linux') return expect(start).toBeUndefined();
    expect(start).toBeLessThanOrEqual(Date.now() + 1000);
    expect(start).toBeGreaterThan(Date.now() - 3_600_000);
  });
});
