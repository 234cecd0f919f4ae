// Two threads, one ring: the writer in a worker, the reader here, sharing the ring's
// SharedArrayBuffer. Each side sleeps (Atomics.wait) when it cannot progress and is woken
// only when the other side's commit says "signal". A lost wakeup shows as a sleep that
// ends by timeout while the other side had already made room or data: the reader then
// fails at once; the writer counts it (see KNOWN_READER_COMMIT_RACE). It cannot hang.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ControlWord, PacketType, align8, ringBytes } from '../../src/vmbus/ring-layout.ts';
import { IncomingRing, RingMemory } from '../../src/vmbus/ring.ts';
import { Signal, payloadByte, payloadSize, type WriterData, type WriterReport } from '../fixtures/vmbus/ring-traffic.ts';

const COUNT = 20_000;
// Generous: a wait only times out when a wakeup was lost, and CI machines can be busy.
const WAIT_MS = 10_000;
// The writer re-checks for room after this long asleep; finding some means it was not woken.
const RESCUE_MS = 1_000;
// IncomingRing.commit can lose the writer's wakeup (see the it.fails test "wakes a writer
// that blocked while the reader was publishing its read index" in ring.test.ts); it shows
// here only now and then, under load. Set this to false when that bug is fixed, so that
// this test insists on zero lost wakeups again.
const KNOWN_READER_COMMIT_RACE = false;

function startWriter(data: WriterData): { report: Promise<WriterReport>; worker: Worker } {
  const worker = new Worker(new URL('../fixtures/vmbus/ring-writer-worker.ts', import.meta.url), { workerData: data });
  const report = new Promise<WriterReport>((resolve, reject) => {
    worker.once('message', (m: WriterReport) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`writer worker exited (${code}) without a report`)));
  });
  // The test may fail before it awaits the report; terminating the worker then rejects it.
  report.catch(() => {});
  return { report, worker };
}

/** Blocks this thread until `word` moves away from `seen`; fails on timeout. */
function waitFor(sig: Int32Array, word: number, seen: number, what: string): void {
  if (Atomics.wait(sig, word, seen, WAIT_MS) === 'timed-out') throw new Error(`reader waited ${WAIT_MS} ms for ${what}: lost wakeup`);
}

describe('ring shared by two threads', () => {
  it.each([1, 2])(
    'delivers %i-page ring traffic exactly once, in order and intact, using only the commit signals to sleep and wake',
    async (dataPages) => {
      const ring = new SharedArrayBuffer(ringBytes(dataPages));
      const mem = new RingMemory(ring, 0, dataPages);
      mem.initialize();
      const signals = new SharedArrayBuffer(16);
      const sig = new Int32Array(signals);
      const inc = new IncomingRing(mem);
      const { report, worker } = startWriter({ ring, dataPages, signals, count: COUNT, waitMs: WAIT_MS, rescueMs: RESCUE_MS });
      try {
        // Let the writer fill the ring and block once before reading anything, so the
        // full -> not-full path is taken for certain.
        waitFor(sig, Signal.writerBlocked, 0, 'the writer to fill the ring');

        let next = 0;
        let writerSignals = 0;
        let bad: string | null = null;
        inc.setInterruptMask(true);
        while (next < COUNT && bad === null) {
          const seen = Atomics.load(sig, Signal.readerDoorbell);
          const v = inc.peek();
          if (v === null) {
            // Clear the mask, then look again: a writer that saw the mask set did not signal.
            inc.setInterruptMask(false);
            if (inc.isEmpty()) waitFor(sig, Signal.readerDoorbell, seen, `packet ${next}`);
            inc.setInterruptMask(true);
            continue;
          }
          const size = payloadSize(next);
          if (v.transId !== next) bad = `expected packet ${next}, got transaction id ${v.transId}`;
          else if (v.type !== PacketType.dataInBand || v.flags !== (next % 3 === 0 ? 1 : 0)) bad = `packet ${next}: type ${v.type} flags ${v.flags}`;
          else if (v.payloadLen !== align8(size)) bad = `packet ${next}: ${v.payloadLen} payload bytes, expected ${align8(size)}`;
          else {
            const p = inc.payload(v);
            for (let k = 0; k < p.length; k++) {
              const want = k < size ? payloadByte(next, k) : 0;
              if (p[k] !== want) {
                bad = `packet ${next}: byte ${k} is ${p[k]}, expected ${want}`;
                break;
              }
            }
          }
          inc.advance(v);
          if (inc.commit()) {
            writerSignals++;
            Atomics.add(sig, Signal.writerDoorbell, 1);
            Atomics.notify(sig, Signal.writerDoorbell);
          }
          next++;
        }
        expect(bad).toBeNull();
        const r = await report;
        expect(r.error).toBeUndefined();
        expect(r.ok).toBe(true);
        // Nothing extra after the last packet: every packet arrived exactly once.
        expect(inc.peek()).toBeNull();
        expect(mem.load(ControlWord.readIndex)).toBe(mem.load(ControlWord.writeIndex));
        if (!KNOWN_READER_COMMIT_RACE) expect(r.lostWakeups).toBe(0);
        // Both directions of signalling were needed and used.
        expect(r.blocked).toBeGreaterThan(0);
        expect(writerSignals).toBeGreaterThan(0);
        expect(r.signalsSent).toBeGreaterThan(0);
      } finally {
        await worker.terminate();
      }
    },
    60_000,
  );
});
