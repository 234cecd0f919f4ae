// `bench explore` with worker threads on a bad scenario (issue 14): bad input, so exit 2
// naming file, line and field, and the command ends, with no worker keeping it alive.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scenario whose second step has a count the schema refuses (line 5, field count). */
function badScenario(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'explore-workers-')), 'bad.yaml');
  writeFileSync(file, 'name: bad\nchannels: 1\nsteps:\n  - { op: guest-send, count: 1, size: 64 }\n  - { op: guest-send, count: -3, size: 64 }\n');
  return file;
}

describe('bench explore with worker threads on a bad scenario', () => {
  it('exits 2 naming the file, line and field, and the process ends (no worker keeps it)', async () => {
    const file = badScenario();
    // (A timeout is the hang guard, not a speed check: a hung command is killed and fails here.)
    const r = await execa('node', ['bin/bench.js', 'explore', file, '--workers', '3'], { reject: false, timeout: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${file}:5`);
    expect(r.stderr).toContain('count');
  });
});
