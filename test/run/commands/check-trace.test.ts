// bench check's search of the documented-gap choices (run/commands/check-trace.ts): a
// trace that diverges under the model's choices is tried under each other option, and the
// report names the one the host showed. Here for runningCheckpoint, both ways round.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTraces, fittingChoices } from '../../../src/run/commands/check-trace.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { MemorySink, formatEvent } from '../../../src/trace/sink.ts';
import type { GapChoices } from '../../../src/vmbus/choices.ts';

const [s] = await loadScenarioPaths(['bench/scenarios/06-checkpoint-apply.yaml']);

/** A trace file of the scenario as a host with `choices` writes it. */
function traceFile(choices: Partial<GapChoices>): string {
  const sink = new MemorySink('hyperv');
  executeScenario(s!, { seed: 1, sink, choices });
  const file = join(mkdtempSync(join(tmpdir(), 'check-trace-')), 'host.jsonl');
  writeFileSync(file, `${sink.events.map(formatEvent).join('\n')}\n`);
  return file;
}

describe('bench check names the runningCheckpoint option a host showed', () => {
  it('a host that restored its checkpoint onto new objects: pulse', async () => {
    const file = traceFile({ runningCheckpoint: 'pulse' });
    const report = await checkTraces(s!, [file], { minimise: false });
    expect(report.result.verdict).toBe('diverge');
    expect(report.fitsChoices).toEqual([{ key: 'runningCheckpoint', value: 'pulse' }]);
  });

  it('a host that went on on the same objects, checked under pulse: save-and-continue', async () => {
    const file = traceFile({});
    const report = await checkTraces(s!, [file], { minimise: false, choices: { runningCheckpoint: 'pulse' } });
    expect(report.result.verdict).toBe('diverge');
    expect(report.fitsChoices).toEqual([{ key: 'runningCheckpoint', value: 'save-and-continue' }]);
    expect((await checkTraces(s!, [file], { minimise: false })).result.verdict).toBe('pass');
  });

  it('bench lab probe learns the option from the traces (fittingChoices)', async () => {
    const fits = await fittingChoices(s!, [traceFile({ runningCheckpoint: 'pulse' })]);
    expect(fits.find((f) => f.key === 'runningCheckpoint')!.fits).toEqual(['pulse']);
  });
});
