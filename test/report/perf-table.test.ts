// `bench perf`'s table: units, targets and a met / missed column, the same fields in JSON,
// and figures nobody listed still printed (others add figures without touching this file).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatPerfTable, meets, perfJson, perfRows, TARGETS, unitFromName } from '../../src/report/perf-table.ts';

const figures = { ring64PacketsPerSec: 15_812_345, saveRestore1000InFlightMs: 7.25, exploreRanInFull: true, newThingPerSec: 42, oddFigure: 3 };

describe('bench perf table', () => {
  it('gives each figure its unit, its target and whether it was met', () => {
    const rows = perfRows(figures);
    expect(rows).toEqual([
      { figure: 'ring64PacketsPerSec', value: 15_812_345, unit: 'packets/s', target: '≥ 15,000,000 packets/s', status: 'met' },
      { figure: 'saveRestore1000InFlightMs', value: 7.25, unit: 'ms', target: '< 5 ms', status: 'missed' },
      { figure: 'exploreRanInFull', value: true, unit: '', target: null, status: 'no target' },
      // Not in TARGETS: the unit comes from the name, and there is no target to meet.
      { figure: 'newThingPerSec', value: 42, unit: '/s', target: null, status: 'no target' },
      { figure: 'oddFigure', value: 3, unit: '', target: null, status: 'no target' },
    ]);
  });

  it('prints aligned columns with a header, MISSED in capitals, and the count of targets met', () => {
    const text = formatPerfTable(perfRows(figures));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^figure\s+value\s+unit\s+target\s+met\?$/);
    expect(lines[1]).toMatch(/^ring64PacketsPerSec\s+15,812,345\s+packets\/s\s+≥ 15,000,000 packets\/s\s+met$/);
    expect(lines[2]).toMatch(/^saveRestore1000InFlightMs\s+7\.25\s+ms\s+< 5 ms\s+MISSED$/);
    expect(lines[3]).toMatch(/^exploreRanInFull\s+yes\s+–\s+–$/);
    // Values are right-aligned: their last characters share a column.
    const ends = lines.slice(1, 6).map((l) => /^\S+\s+(\S+)/.exec(l)!).map((m) => m.index + m[0].length);
    expect(new Set(ends).size).toBe(1);
    expect(text).toContain('1 of 2 targets met; missed: saveRestore1000InFlightMs');
  });

  it('keeps the same fields in JSON', () => {
    const doc = JSON.parse(JSON.stringify(perfJson(perfRows(figures)))) as ReturnType<typeof perfJson>;
    expect(doc.targets).toBe(2);
    expect(doc.targetsMet).toBe(1);
    expect(doc.figures.map((r) => Object.keys(r))).toEqual(Array(5).fill(['figure', 'value', 'unit', 'target', 'status']));
    expect(doc.figures[1]).toEqual({ figure: 'saveRestore1000InFlightMs', value: 7.25, unit: 'ms', target: '< 5 ms', status: 'missed' });
  });

  it('prints the spread of a ratio as "min to max" with no target, and keeps it as {min, max} in JSON', () => {
    const rows = perfRows({ exploreCOverTwin: 2.6, exploreCOverTwinSpread: { min: 2.31, max: 3.2 } });
    expect(rows[1]).toEqual({ figure: 'exploreCOverTwinSpread', value: { min: 2.31, max: 3.2 }, unit: 'x, CPU time', target: null, status: 'no target' });
    expect(formatPerfTable(rows).split('\n')[2]).toMatch(/^exploreCOverTwinSpread\s+2\.31 to 3\.2\s+x, CPU time\s+–\s+–$/);
    expect(JSON.parse(JSON.stringify(perfJson(rows))).figures[1].value).toEqual({ min: 2.31, max: 3.2 });
  });

  it('counts a benchmark that produced no number as missing its target', () => {
    expect(perfRows({ checkEventsPerSec: Number.NaN })[0]!.status).toBe('missed');
  });

  it('reads units from the suffixes the figures use', () => {
    expect([unitFromName('xPerSec'), unitFromName('xMs'), unitFromName('checkPeakRssMb'), unitFromName('x')]).toEqual(['/s', 'ms', 'MB', '']);
  });

  // Invariant: a figure meets "op value" exactly when the comparison holds, and every
  // target in TARGETS has a unit of its own to print beside it.
  it('meets a target exactly when the comparison holds', () => {
    fc.assert(fc.property(fc.double({ noNaN: true }), fc.double({ noNaN: true }), (v, t) => {
      expect(meets(v, { op: '<', value: t })).toBe(v < t);
      expect(meets(v, { op: '>=', value: t })).toBe(v >= t);
      expect(meets(v, { op: '<=', value: t })).toBe(v <= t);
      expect(meets(v, { op: '>', value: t })).toBe(v > t);
    }));
    for (const [name, spec] of Object.entries(TARGETS)) if (spec.target) expect(spec.unit, name).toBeTruthy();
  });
});
