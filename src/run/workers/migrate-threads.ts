// Live migration between emulator instances on different threads.
//
// Each emulated host is an emulator instance on its own worker thread. A run starts on
// the main thread; at a migration the source saves the VM and hands the versioned,
// checksummed blob (with the bench's own state: clock, schedule position, host-side tx
// numbering, checkpoints) to the destination's thread, which restores it and carries
// the scenario on, until the next migration hands it on again. Trace events come back in
// batches and keep the one seq clock, so the trace is byte for byte the one a single-
// thread run writes: the test that the blob really carries everything.

import { Worker } from 'node:worker_threads';
import { fromPlainError, type PlainError } from '../../errors.ts';
import { startScenario, type ExecuteResult, type MigrationHandoff, type Segment } from '../../scenario/execute.ts';
import type { Scenario } from '../../scenario/model.ts';
import type { TraceEvent } from '../../trace/schema.ts';
import { StampingSink, type TraceSink } from '../../trace/sink.ts';
import type { GapChoices } from '../../vmbus/choices.ts';
import type { FaultMode } from '../../vmbus/faults.ts';

/** main -> destination thread */
export interface ResumeRequest {
  scenario: Scenario;
  seed: number;
  choices?: Partial<GapChoices> | undefined;
  faults?: FaultMode[] | undefined;
  handoff: MigrationHandoff;
  /** the last seq written before the hand-off */
  seq: number;
}

/** destination thread -> main */
export type ResumeReply =
  | { kind: 'segment'; events: TraceEvent[]; segment: Segment; threadId: number }
  | { kind: 'error'; error: PlainError };

export interface ThreadedResult extends ExecuteResult {
  /** the thread ids that ran the VM, in order (main first) */
  threads: number[];
}

export async function executeAcrossThreads(
  scenario: Scenario,
  opts: { seed: number; sink: StampingSink; choices?: Partial<GapChoices>; faults?: FaultMode[] },
): Promise<ThreadedResult> {
  const threads = [0];
  let seg = startScenario(scenario, { seed: opts.seed, sink: opts.sink as TraceSink, choices: opts.choices, faults: opts.faults });
  while (seg.kind === 'handoff') {
    const reply = await runOnNewThread({
      scenario, seed: opts.seed, choices: opts.choices, faults: opts.faults, handoff: seg.handoff, seq: opts.sink.lastSeq,
    });
    if (reply.kind === 'error') throw fromPlainError(reply.error);
    for (const e of reply.events) opts.sink.forward(e);
    threads.push(reply.threadId);
    seg = reply.segment;
  }
  return { ...seg.result, threads };
}

function runOnNewThread(req: ResumeRequest): Promise<ResumeReply> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./migration-worker.ts', import.meta.url), { workerData: req });
    let settled = false;
    w.once('message', (m: ResumeReply) => {
      settled = true;
      resolve(m);
      void w.terminate();
    });
    w.once('error', (e) => {
      settled = true;
      reject(e);
    });
    w.once('exit', (code) => {
      if (!settled) reject(new Error(`the destination emulator thread exited with code ${code} before replying`));
    });
  });
}
