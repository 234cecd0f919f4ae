// The emulator worker pool: jobs run on worker threads give the same traces as in-process
// runs; a task that throws comes back as a rebuilt error; a worker that dies fails only
// the job it was running, and the pool carries on with a new worker.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBenchError } from '../../../src/errors.ts';
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { runEmulatedJob } from '../../../src/run/workers/emulated-job.ts';
import { WorkerPool } from '../../../src/run/workers/worker-pool.ts';
import type { EmulatedJobTask } from '../../../src/run/workers/worker-protocol.ts';

const CRASHING = new URL('../fixtures/misbehaving-worker.ts', import.meta.url);
let pool: WorkerPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function jobTask(jobId: string, dir: string, file = 'bench/scenarios/04-repeated-save-restore.yaml', seed = 3): Promise<EmulatedJobTask> {
  return { kind: 'emulated-job', jobId, scenario: await loadScenarioFile(file), seed, choices: {}, traceFile: join(dir, `${jobId}.jsonl`) };
}

describe('WorkerPool', () => {
  it('sizes itself to the available parallelism unless told otherwise', () => {
    expect(new WorkerPool().size).toBe(availableParallelism());
    expect(new WorkerPool({ size: 3 }).size).toBe(3);
    expect(() => new WorkerPool({ size: 0 })).toThrow(/positive integer/);
  });

  it('starts its workers ahead of work when asked, no more than its size, and they take the work', async () => {
    pool = new WorkerPool({ size: 2 });
    expect(pool.workers).toBe(0);
    pool.start();
    pool.start();
    expect(pool.workers).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'pool-start-'));
    const r = await pool.run(await jobTask('early', dir));
    expect(r.verdict).toBe('pass');
    expect(pool.workers).toBe(2);
  });

  it('runs emulated jobs on worker threads with the same trace and verdict as in process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pool-'));
    pool = new WorkerPool({ size: 2 });
    const scenarios = ['02-inflight-host-transactions', '05-migrate-and-back', '06-checkpoint-apply', '09-many-channels'];
    const tasks = await Promise.all(scenarios.map((s) => jobTask(`w-${s}`, dir, `bench/scenarios/${s}.yaml`, 5)));
    const results = await Promise.all(tasks.map((t) => pool!.run(t)));
    expect(pool.workers).toBeLessThanOrEqual(2);
    for (const [i, t] of tasks.entries()) {
      const local = runEmulatedJob({ ...t, traceFile: join(dir, `local-${i}.jsonl`) });
      expect(results[i]!.verdict).toBe('pass');
      expect(results[i]!.events).toBe(local.events);
      expect(readFileSync(t.traceFile, 'utf8')).toBe(readFileSync(join(dir, `local-${i}.jsonl`), 'utf8'));
      expect(readFileSync(t.traceFile, 'utf8').trim().split('\n').length).toBe(results[i]!.events);
      expect(existsSync(`${t.traceFile}.partial`)).toBe(false);
    }
  });

  it('rebuilds an error thrown by a task, keeps its exit code, and keeps the worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pool-'));
    pool = new WorkerPool({ size: 1 });
    const bad = await jobTask('unwritable', join(dir, 'no-such-dir'));
    const err = await pool.run(bad).catch((e: unknown) => e);
    expect(isBenchError(err)).toBe(true);
    expect((err as { exitCode: number }).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/cannot create trace file .*no-such-dir/);
    const ok = await pool.run(await jobTask('after', dir));
    expect(ok.verdict).toBe('pass');
    expect(pool.crashes).toBe(0);
  });

  it('reports the job of a worker that dies as an infrastructure error and runs every other job', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pool-'));
    pool = new WorkerPool({ size: 2, workerUrl: CRASHING });
    const ids = ['a', 'crash-throw-1', 'b', 'crash-exit-1', 'c', 'd', 'crash-throw-2', 'e'];
    const settled = await Promise.allSettled(ids.map(async (id) => pool!.run(await jobTask(id, dir))));
    for (const [i, id] of ids.entries()) {
      const s = settled[i]!;
      if (id.startsWith('crash')) {
        expect(s.status).toBe('rejected');
        const e = (s as PromiseRejectedResult).reason as Error & { exitCode: number };
        expect(isBenchError(e) && e.exitCode).toBe(3);
        expect(e.message).toContain(`job ${id}`);
        expect(e.message).toMatch(id.startsWith('crash-exit') ? /exited unexpectedly with code 70/ : /crashed .*worker died running/);
      } else {
        expect(s.status).toBe('fulfilled');
        expect((s as PromiseFulfilledResult<{ verdict: string }>).value.verdict).toBe('pass');
      }
    }
    expect(pool.crashes).toBe(3);
    expect(pool.workers).toBeLessThanOrEqual(2);
  });

  it('rejects work still queued when it is closed, and any work after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pool-'));
    pool = new WorkerPool({ size: 1 });
    const first = await jobTask('first', dir, 'bench/scenarios/03-ring-full-library-queue.yaml');
    const second = await jobTask('second', dir);
    const running = pool.run(first).catch((e: unknown) => e as Error);
    const queued = pool.run(second).catch((e: unknown) => e as Error);
    await pool.close();
    expect((await running).message).toMatch(/closed while job first was running/);
    expect((await queued).message).toMatch(/closed before job second ran/);
    await expect(pool.run(await jobTask('third', dir))).rejects.toThrow(/pool is closed/);
  });
});
