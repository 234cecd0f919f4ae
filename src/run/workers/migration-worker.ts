// A destination host's thread: restore the migrated VM, run until the scenario ends or
// migrates again, send the events and the outcome back. Types: migrate-threads.ts.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { toPlainError } from '../../errors.ts';
import { resumeScenario } from '../../scenario/execute.ts';
import type { TraceEvent } from '../../trace/schema.ts';
import { StampingSink } from '../../trace/sink.ts';
import type { ResumeReply, ResumeRequest } from './migrate-threads.ts';
import { loadDevice } from '../../device-api/load.ts';
import { devicePath } from '../../scenario/devices-mode.ts';

const req = workerData as ResumeRequest;
const events: TraceEvent[] = [];
let reply: ResumeReply;
try {
  // The scenario carries its device module's path: load it in this thread first.
  await loadDevice(devicePath(req.scenario));
  const sink = new StampingSink('emulator', (e) => events.push(e), req.seq);
  const segment = resumeScenario(req.scenario, { seed: req.seed, sink, choices: req.choices, faults: req.faults }, req.handoff);
  reply = { kind: 'segment', events, segment, threadId };
} catch (e) {
  reply = { kind: 'error', error: toPlainError(e) };
}
parentPort!.postMessage(reply);
