// Migration between emulator instances on different threads writes exactly the trace a
// single-thread run writes: the blob and the hand-off carry everything the run needs.
import { describe, expect, it } from 'vitest';
import { threadId } from 'node:worker_threads';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { executeAcrossThreads } from '../../../src/run/workers/migrate-threads.ts';
import { MemorySink, formatEvent } from '../../../src/trace/sink.ts';
import { statusRuleOf, PropertyChecker } from '../../../src/check/properties.ts';

/** The default device's (the sample's) status rule, as the bench gives its checker. */
const SAMPLE_STATUS_RULE = statusRuleOf({});

const suite = await loadScenarioPaths(['bench/scenarios']);

describe('migration to an emulator instance on another thread', () => {
  it.each([['migrate-and-back'], ['many-channels']])('%s: the same trace, byte for byte, as in one thread', async (name) => {
    const s = suite.find((x) => x.name === name)!;
    for (const seed of [1, 5]) {
      const one = new MemorySink();
      executeScenario(s, { seed, sink: one });
      const two = new MemorySink();
      const r = await executeAcrossThreads(s, { seed, sink: two });
      // Each migration moved the run to a new thread.
      const migrations = s.steps.filter((st) => st.op === 'migrate').length;
      expect(r.threads.length).toBe(migrations + 1);
      expect(new Set(r.threads).size).toBe(r.threads.length);
      expect(r.threads.slice(1)).not.toContain(threadId);
      expect(two.events.map(formatEvent)).toEqual(one.events.map(formatEvent));
      const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
      for (const e of two.events) c.onEvent(e);
      expect(c.finish(r.hang, r.refusedRestores)).toEqual([]);
    }
  });

  it('a fault that acts at the migration is carried across and flagged', async () => {
    const s = suite.find((x) => x.name === 'migrate-and-back')!;
    const sink = new MemorySink();
    const r = await executeAcrossThreads(s, { seed: 1, sink, faults: ['lose-ring-tail-at-migration'] });
    expect(r.faultsFired).toContain('lose-ring-tail-at-migration');
    const c = new PropertyChecker({ statusRule: SAMPLE_STATUS_RULE });
    for (const e of sink.events) c.onEvent(e);
    expect(c.finish(r.hang, r.refusedRestores).map((v) => v.class)).toContain('lost');
  });
});
