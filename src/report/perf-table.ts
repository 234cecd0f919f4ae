// How `bench perf` shows its figures: one row per figure with its value, its unit, its
// target and whether the target was met, as a text table or as JSON with the same fields.
//
// The figures themselves are measured elsewhere (src/run/commands/perf.ts) and arrive as a
// plain record of named values, so a new figure needs nothing here to be printed: its
// unit is read from its name's suffix (…PerSec, …Ms, …Mb) and it shows "no target" until
// one is added to TARGETS below, the one list of performance targets.
//
// A value is a number, a yes/no, or a spread: the smallest and largest of the per-pair
// ratios behind a ratio figure (src/run/commands/perf-pairs.ts), printed "2.1 to 2.4".
// A spread meets no target; it says how noisy the run was.

export type Op = '<' | '<=' | '>' | '>=';

export interface Target {
  op: Op;
  value: number;
}

export interface FigureSpec {
  unit?: string;
  target?: Target;
}

/** The unit of a ratio of CPU times (times x). */
const CPU_RATIO = 'x, CPU time';

/** Units and targets of the figures that have them. Names not listed here still print. */
export const TARGETS: Readonly<Record<string, FigureSpec>> = {
  ring64PacketsPerSec: { unit: 'packets/s', target: { op: '>=', value: 15_000_000 } },
  ring64UnbatchedPacketsPerSec: { unit: 'packets/s' },
  ring256PacketsPerSec: { unit: 'packets/s' },
  ring4KiBPacketsPerSec: { unit: 'packets/s' },
  kmclRoundTripsPerSec: { unit: 'round trips/s', target: { op: '>=', value: 2_000_000 } },
  roundTripsPerSec: { unit: 'round trips/s' },
  vspTwinRoundTripsPerSec: { unit: 'round trips/s' },
  vspCRoundTripsPerSec: { unit: 'round trips/s' },
  // The C VSP in WebAssembly within 2x of its TypeScript twin (issue 14). Each ratio is
  // the median over interleaved pairs of CPU times, its spread the pairs' smallest and
  // largest ratio (src/run/commands/perf-pairs.ts).
  vspTwinOverCRoundTrips: { unit: CPU_RATIO, target: { op: '<=', value: 2 } },
  vspTwinOverCRoundTripsSpread: { unit: CPU_RATIO },
  saveRestore1000InFlightMs: { unit: 'ms', target: { op: '<', value: 5 } },
  exploreSchedules: { unit: 'schedules' },
  exploreMs: { unit: 'ms', target: { op: '<', value: 2000 } },
  exploreWorkers: { unit: 'threads' },
  exploreSchedulesPerSec: { unit: 'schedules/s' },
  exploreRanInFull: { unit: '' },
  exploreOneThreadMs: { unit: 'ms' },
  // The same explore on the C VSP (issue 14), one thread, beside the twins' one-thread
  // explore of the same run; target within 3x of the twins.
  exploreCOneThreadMs: { unit: 'ms' },
  exploreCRanInFull: { unit: '' },
  exploreCOverTwin: { unit: CPU_RATIO, target: { op: '<=', value: 3 } },
  exploreCOverTwinSpread: { unit: CPU_RATIO },
  // The same explore with the C Linux guest as the VM's guest too (devices: c-linux).
  exploreCLinuxOneThreadMs: { unit: 'ms' },
  exploreCLinuxSchedules: { unit: 'schedules' },
  exploreCLinuxRanInFull: { unit: '' },
  exploreCLinuxOverTwin: { unit: CPU_RATIO, target: { op: '<=', value: 3 } },
  exploreCLinuxOverTwinSpread: { unit: CPU_RATIO },
  checkTraceEvents: { unit: 'events' },
  checkEventsPerSec: { unit: 'events/s', target: { op: '>=', value: 1_000_000 } },
  checkPeakRssMb: { unit: 'MB', target: { op: '<', value: 300 } },
  traceReadEventsPerSec: { unit: 'events/s' },
  reportRender1500Ms: { unit: 'ms', target: { op: '<', value: 2000 } },
  // A trivial command's median round trip on a warm session (issue 12).
  pwshLocalRoundTripMedianMs: { unit: 'ms', target: { op: '<', value: 10 } },
  pwshSshRoundTripMedianMs: { unit: 'ms', target: { op: '<', value: 20 } },
};

/** The smallest and largest per-pair ratio behind a ratio figure. */
export interface PairSpread {
  min: number;
  max: number;
}

export type FigureValue = number | boolean | PairSpread;

export type FigureStatus = 'met' | 'missed' | 'no target';

/** One row of the table; the JSON output is a list of exactly these. */
export interface FigureRow {
  figure: string;
  value: FigureValue;
  unit: string;
  /** The target as a person reads it ("< 5 ms"), or null. */
  target: string | null;
  status: FigureStatus;
}

/** A unit from the name's suffix, for figures TARGETS does not list. */
export function unitFromName(name: string): string {
  if (/PerSec$/.test(name)) return '/s';
  if (/Ms$/.test(name)) return 'ms';
  if (/Mb$/.test(name)) return 'MB';
  if (/Bytes$/.test(name)) return 'bytes';
  return '';
}

const OP_TEXT: Readonly<Record<Op, string>> = { '<': '<', '<=': '≤', '>': '>', '>=': '≥' };

export function meets(value: number, t: Target): boolean {
  switch (t.op) {
    case '<': return value < t.value;
    case '<=': return value <= t.value;
    case '>': return value > t.value;
    case '>=': return value >= t.value;
  }
}

/** 15812345 -> "15,812,345"; 2.46 -> "2.46"; true -> "yes"; {min: 2.1, max: 2.4} -> "2.1 to 2.4". */
export function formatValue(v: FigureValue): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return `${formatValue(v.min)} to ${formatValue(v.max)}`;
  if (!Number.isFinite(v)) return String(v);
  return v.toLocaleString('en', { maximumFractionDigits: 2 });
}

/**
 * The rows, in the order the figures were measured. A figure that is not a finite number
 * (a benchmark that failed) can meet no target: it is "missed" when it has one.
 */
export function perfRows(figures: Readonly<Record<string, FigureValue>>, specs: Readonly<Record<string, FigureSpec>> = TARGETS): FigureRow[] {
  return Object.entries(figures).map(([figure, value]) => {
    const spec = specs[figure];
    const unit = spec?.unit ?? unitFromName(figure);
    const t = spec?.target;
    const target = t ? `${OP_TEXT[t.op]} ${formatValue(t.value)}${unit ? ` ${unit}` : ''}` : null;
    const status: FigureStatus = !t ? 'no target' : typeof value === 'number' && Number.isFinite(value) && meets(value, t) ? 'met' : 'missed';
    return { figure, value, unit, target, status };
  });
}

/** The text table: aligned columns, numbers right-aligned, then how many targets were met. */
export function formatPerfTable(rows: readonly FigureRow[]): string {
  const head = ['figure', 'value', 'unit', 'target', 'met?'];
  const cells = rows.map((r) => [r.figure, formatValue(r.value), r.unit, r.target ?? '–', r.status === 'missed' ? 'MISSED' : r.status === 'met' ? 'met' : '–']);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c.map((x, i) => (i === 1 ? x.padStart(widths[i]!) : i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ').trimEnd();
  const withTarget = rows.filter((r) => r.status !== 'no target');
  const missed = withTarget.filter((r) => r.status === 'missed');
  const tail = withTarget.length === 0
    ? 'no figure has a target'
    : `${withTarget.length - missed.length} of ${withTarget.length} targets met${missed.length ? `; missed: ${missed.map((r) => r.figure).join(', ')}` : ''}`;
  return [line(head), ...cells.map(line), '', tail, ''].join('\n');
}

/** The JSON document: the same rows and the same count, for scripts. */
export function perfJson(rows: readonly FigureRow[]): { figures: FigureRow[]; targetsMet: number; targets: number } {
  const withTarget = rows.filter((r) => r.status !== 'no target');
  return { figures: [...rows], targetsMet: withTarget.filter((r) => r.status === 'met').length, targets: withTarget.length };
}
