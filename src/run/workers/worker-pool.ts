// A small pool of emulator worker threads (STYLE.md 10: threads are for the emulator only;
// the lab is async I/O on the main thread).
//
// - `run(task)` queues a task and resolves with its result. Workers start lazily, up to
//   `size` (default: os.availableParallelism()), and each takes one task at a time.
// - Dispatching is synchronous on purpose: every event that frees a worker or adds work
//   calls `dispatch`, which hands out tasks until none or no worker is left, with no await
//   in between to interleave with.
// - A task that throws inside the worker comes back as a plain error and is rebuilt here
//   (its exit code kept); the worker takes the next task.
// - A worker that dies (uncaught exception, process.exit, out of memory) fails the task it
//   was running with an InfraError naming the task, so the job is reported, not lost; a
//   new worker replaces it if work is waiting. An exit we asked for (close) is not a crash.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fromPlainError, InfraError } from '../../errors.ts';
import { isWorkerReply, type ResultOf, type TaskMessage, type WorkerReply, type WorkerTask } from './worker-protocol.ts';

export interface PoolOptions {
  /** Worker threads at most; default os.availableParallelism(). */
  size?: number | undefined;
  /** The worker entry file; tests substitute one that misbehaves. */
  workerUrl?: URL | undefined;
}

interface Pending {
  id: number;
  task: WorkerTask;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  running: Pending | undefined;
  gone: boolean;
}

const DEFAULT_WORKER = new URL('./emulator-worker.ts', import.meta.url);

export class WorkerPool {
  readonly size: number;
  private readonly url: URL;
  private readonly queue: Pending[] = [];
  private readonly slots = new Set<Slot>();
  private nextId = 1;
  private closing = false;
  /** Workers that died unexpectedly so far (for tests and logs). */
  crashes = 0;

  constructor(options: PoolOptions = {}) {
    const size = options.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`worker pool size must be a positive integer, got ${size}`);
    this.size = size;
    this.url = options.workerUrl ?? DEFAULT_WORKER;
  }

  run<T extends WorkerTask>(task: T): Promise<ResultOf<T>> {
    if (this.closing) return Promise.reject(new InfraError(`worker pool is closed; cannot run ${describeTask(task)}`));
    return new Promise<ResultOf<T>>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, resolve: resolve as (v: unknown) => void, reject });
      this.dispatch();
    });
  }

  /**
   * Starts every worker now rather than when tasks come, so that their start (loading
   * the modules) overlaps with what the caller does before it has tasks to give.
   */
  start(): void {
    while (!this.closing && this.slots.size < this.size) this.spawn();
  }

  /** Workers currently alive. */
  get workers(): number {
    return this.slots.size;
  }

  /** Stops every worker. Tasks still queued or running are rejected. */
  async close(): Promise<void> {
    this.closing = true;
    for (const p of this.queue.splice(0)) p.reject(new InfraError(`worker pool closed before ${describeTask(p.task)} ran`));
    const slots = [...this.slots];
    this.slots.clear();
    for (const s of slots) {
      s.gone = true;
      s.running?.reject(new InfraError(`worker pool closed while ${describeTask(s.running.task)} was running`));
      s.running = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closing) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (!s.running) slot = s;
      if (!slot) {
        if (this.slots.size >= this.size) return;
        slot = this.spawn();
      }
      const p = this.queue.shift()!;
      slot.running = p;
      const message: TaskMessage = { type: 'task', id: p.id, task: p.task };
      slot.worker.postMessage(message);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(this.url);
    const slot: Slot = { worker, running: undefined, gone: false };
    worker.on('message', (m: unknown) => this.onMessage(slot, m));
    worker.on('error', (e: Error) => this.retire(slot, `emulator worker crashed (${e.name}: ${e.message})`, e));
    worker.on('messageerror', (e: Error) => this.retire(slot, `emulator worker sent a message that could not be read (${e.message})`, e));
    worker.on('exit', (code: number) => this.retire(slot, `emulator worker exited unexpectedly with code ${code}`));
    this.slots.add(slot);
    return slot;
  }

  private onMessage(slot: Slot, m: unknown): void {
    if (slot.gone) return;
    const p = slot.running;
    if (!isWorkerReply(m) || !p || m.id !== p.id) {
      // The protocol is one reply per task; anything else means the worker is broken.
      this.retire(slot, `emulator worker broke the protocol (unexpected message ${JSON.stringify(m)?.slice(0, 200)})`);
      void slot.worker.terminate();
      return;
    }
    slot.running = undefined;
    settle(p, m);
    this.dispatch();
  }

  /** Takes a dead (or broken) worker out of the pool; the first reason given wins. */
  private retire(slot: Slot, reason: string, cause?: unknown): void {
    if (slot.gone || this.closing) return;
    slot.gone = true;
    this.crashes++;
    this.slots.delete(slot);
    const p = slot.running;
    slot.running = undefined;
    p?.reject(new InfraError(`${reason} while running ${describeTask(p.task)}`, { cause }));
    this.dispatch();
  }
}

function settle(p: Pending, m: WorkerReply): void {
  if (m.type === 'result') p.resolve(m.result);
  else p.reject(fromPlainError(m.error));
}

export function describeTask(task: WorkerTask): string {
  switch (task.kind) {
    case 'emulated-job':
      return `job ${task.jobId}`;
    case 'explore-share':
      return `a share of the explore of ${task.scenario.name}`;
  }
}
