import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { fieldPath, loadSummary, parseSummary } from '../../src/report/summary-schema.ts';
import { FIXTURES, fixtureSummary, RUN_IDS } from './support/fixtures.ts';

async function inputError(p: Promise<unknown>): Promise<InputError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(InputError);
  return e as InputError;
}

describe('loadSummary', () => {
  it.each(RUN_IDS)('accepts the fixture run %s', async (id) => {
    const s = await loadSummary(join(FIXTURES, 'results', id, 'summary.json'));
    expect(s.runId).toBe(id);
    expect(s.jobs.length).toBeGreaterThan(10);
  });

  it('names file and field when a verdict is not one of the five', async () => {
    const file = join(FIXTURES, 'bad/bad-verdict/summary.json');
    const e = await inputError(loadSummary(file));
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file, field: 'jobs[1].verdict' });
    expect(e.message).toContain(file);
    expect(e.message).toContain('jobs[1].verdict');
  });

  it('names the missing field', async () => {
    const e = await inputError(loadSummary(join(FIXTURES, 'bad/missing-durations/summary.json')));
    expect(e.location.field).toBe('jobs[2].durationsMs');
  });

  it('reports JSON that does not parse with the file and a line', async () => {
    const file = join(FIXTURES, 'bad/not-json/summary.json');
    const e = await inputError(loadSummary(file));
    expect(e.message).toMatch(/not valid JSON/);
    expect(e.location.file).toBe(file);
    expect(e.location.line).toBeGreaterThan(1);
  });

  it('says there is no summary.json when the directory is not a run directory', async () => {
    const e = await inputError(loadSummary(join(FIXTURES, 'nowhere/summary.json')));
    expect(e.message).toMatch(/no summary\.json/);
  });
});

describe('parseSummary', () => {
  it('rejects duplicate job ids, which would share evidence folders', () => {
    const s = fixtureSummary();
    s.jobs[3]!.jobId = s.jobs[0]!.jobId;
    expect(() => parseSummary(s, 'x.json')).toThrow(/jobs\[3\]\.jobId: duplicate jobId/);
  });

  it('rejects a job id that is not safe as a folder name', () => {
    const s = fixtureSummary();
    s.jobs[0]!.jobId = '../escape';
    expect(() => parseSummary(s, 'x.json')).toThrow(/jobs\[0\]\.jobId/);
  });

  it('checks timeline events for the fields every trace event has', () => {
    const s = fixtureSummary();
    const diverged = s.jobs.findIndex((j) => j.timeline);
    (s.jobs[diverged]!.timeline![2] as unknown as Record<string, unknown>).side = 'vm';
    expect(() => parseSummary(s, 'x.json')).toThrow(new RegExp(`jobs\\[${diverged}\\]\\.timeline\\[2\\]\\.side`));
  });

  it('ignores fields it does not know, so producers can add some', () => {
    const s = { ...fixtureSummary(), extra: { anything: 1 } };
    expect(parseSummary(s, 'x.json').runId).toBe('2026-11-22-nightly');
  });

  it('writes field paths the way people read them', () => {
    expect(fieldPath(['jobs', 3, 'evidence', 'artefacts', 0])).toBe('jobs[3].evidence.artefacts[0]');
    expect(fieldPath([])).toBe('(document)');
  });
});
