// What an emulator worker does with each task, and the message loop that serves them.
// Kept apart from the entry file so tests can run the same tasks in a worker of their own
// (test/run/fixtures: a worker that crashes on request).
import type { MessagePort } from 'node:worker_threads';
import { toPlainError } from '../../errors.ts';
import { runEmulatedJob } from './emulated-job.ts';
import { exploreShare } from './explore-share.ts';
import type { TaskMessage, TaskResults, WorkerReply, WorkerTask } from './worker-protocol.ts';
import { loadDevice } from '../../device-api/load.ts';
import { devicePath } from '../../scenario/devices-mode.ts';

export type TaskHandler = (task: WorkerTask) => TaskResults[keyof TaskResults];

export function runTask(task: WorkerTask): TaskResults[keyof TaskResults] {
  switch (task.kind) {
    case 'emulated-job':
      return runEmulatedJob(task);
    case 'explore-share':
      return exploreShare(task);
  }
}

/** Answers every task message on `port` with exactly one result or error reply. */
export function serveTasks(port: MessagePort, handle: TaskHandler = runTask): void {
  port.on('message', (m: TaskMessage) => {
    void answer(m).then((reply) => port.postMessage(reply));
  });

  async function answer(m: TaskMessage): Promise<WorkerReply> {
    try {
      // The scenario carries its device module's path: load it in this thread first.
      await loadDevice(devicePath(m.task.scenario));
      return { type: 'result', id: m.id, result: handle(m.task) };
    } catch (e) {
      // The task failed, the worker did not: report it and take the next one.
      return { type: 'error', id: m.id, error: toPlainError(e) };
    }
  }
}
