// Entry file of an emulator worker thread (started by worker-pool.ts). It only serves
// task messages; what a task does is in worker-tasks.ts, the messages in worker-protocol.ts.
import { parentPort } from 'node:worker_threads';
import { serveTasks } from './worker-tasks.ts';

if (!parentPort) throw new Error('emulator-worker.ts runs as a worker thread (see worker-pool.ts)');
serveTasks(parentPort);
