// The compatibility matrix: host build x guest x scenario. A cell can hold several jobs
// (several hosts with the same build, several templates or seeds); it shows the worst
// verdict among them, so one diverging job is never hidden by passing ones.
import { cellId, isFailing, isQuarantineLive, worstVerdict, type CellKey, type JobResult, type Verdict } from './summary.ts';

export interface MatrixCell extends CellKey {
  id: string;
  verdict: Verdict;
  /** Divergence class of the first job with the cell's verdict, if it has one. */
  divergenceClass: string | undefined;
  jobs: JobResult[];
  /** Every failing job in the cell is excused by a live quarantine. */
  quarantined: boolean;
  /** How many jobs share the cell's (worst) verdict. */
  worstCount: number;
}

export interface Matrix {
  hostBuilds: string[];
  guests: string[];
  scenarios: string[];
  cells: Map<string, MatrixCell>;
  /** each scenario's device (JobResult.device), where its jobs name one */
  devices: Map<string, string>;
}

/** Build numbers and names sort by their numeric parts: 10.0.9600 before 10.0.26100. */
export const naturalCompare = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

export function buildMatrix(jobs: readonly JobResult[], asOf?: string): Matrix {
  const grouped = new Map<string, { key: CellKey; jobs: JobResult[] }>();
  const hostBuilds = new Set<string>();
  const guests = new Set<string>();
  const scenarios = new Set<string>();
  const devices = new Map<string, string>();
  for (const j of jobs) {
    if (j.device !== undefined && !devices.has(j.scenario)) devices.set(j.scenario, j.device);
    const key = { hostBuild: j.hostBuild, guest: j.guest, scenario: j.scenario };
    const id = cellId(key);
    let g = grouped.get(id);
    if (!g) grouped.set(id, (g = { key, jobs: [] }));
    g.jobs.push(j);
    hostBuilds.add(j.hostBuild);
    guests.add(j.guest);
    scenarios.add(j.scenario);
  }
  const cells = new Map<string, MatrixCell>();
  for (const [id, g] of grouped) {
    const verdict = worstVerdict(g.jobs.map((j) => j.verdict)) ?? 'skipped';
    const worst = g.jobs.filter((j) => j.verdict === verdict);
    const failing = g.jobs.filter((j) => isFailing(j.verdict));
    cells.set(id, {
      ...g.key,
      id,
      verdict,
      divergenceClass: worst.find((j) => j.divergenceClass)?.divergenceClass,
      jobs: g.jobs,
      quarantined: failing.length > 0 && failing.every((j) => isQuarantineLive(j, asOf)),
      worstCount: worst.length,
    });
  }
  return {
    hostBuilds: [...hostBuilds].sort(naturalCompare),
    guests: [...guests].sort(naturalCompare),
    scenarios: [...scenarios].sort(naturalCompare),
    cells,
    devices,
  };
}

/** What a cell says in words, so the matrix reads without colour: "pass", "lost", "hang", "error". */
export function cellLabel(c: Pick<MatrixCell, 'verdict' | 'divergenceClass'>): string {
  if (c.verdict === 'diverge') return c.divergenceClass ?? 'diverge';
  if (c.verdict === 'hang') return 'hang';
  return c.verdict === 'skipped' ? 'skip' : c.verdict;
}

/** Two cells are in the same state when verdict and divergence class agree. */
export function sameState(a: { verdict: string; divergenceClass?: string | undefined | null }, b: { verdict: string; divergenceClass?: string | undefined | null }): boolean {
  return a.verdict === b.verdict && (a.divergenceClass ?? null) === (b.divergenceClass ?? null);
}
