// Crash safety, for real: the orchestrator runs in a child process on the simulated lab
// (real time, short durations, the lab's VM registry in a file), is killed with SIGKILL
// at random moments and resumed each time. In the end every planned job is recorded
// exactly once and no VM of the run is left in the lab.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChild, verifyCrashRun } from '../../../bench/lab-sim.ts';
import { readJournal } from '../../../src/run/engine/journal.ts';

describe('resume after SIGKILL', () => {
  it('records every job exactly once and leaves no VM behind, whenever the orchestrator is killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crash-resume-'));
    let seed = 99;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let kills = 0;
    let midRun = 0;
    let starts = 0;
    for (;;) {
      starts++;
      // 6 ms per simulated second: a whole run takes about 4 s, so most kills land mid-run.
      const exit = await runChild(dir, 'crash', starts > 1, kills < 6 ? 300 + rand() * 1200 : undefined, 6);
      if (exit === 'killed') {
        kills++;
        // Count the kills that hit a run in progress: some jobs recorded, not all.
        const journal = join(dir, 'crash', 'journal.jsonl');
        const ends = existsSync(journal) ? readJournal(journal).records.filter((r) => r.t === 'end').length : 0;
        if (ends > 0 && ends < verifyCrashRun(dir, 'crash').jobs) midRun++;
        continue;
      }
      expect(exit).toBe(0);
      break;
    }
    expect(midRun).toBeGreaterThanOrEqual(2);
    const v = verifyCrashRun(dir, 'crash');
    expect(v).toEqual({ jobs: v.jobs, recorded: v.jobs, duplicates: 0, missing: 0, vmsLeft: 0, runEnded: true });
  }, 60_000);
});
