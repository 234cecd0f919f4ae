// The peak memory the benchmarks report (src/peak-rss.ts) is the measuring process's own,
// even in a child started by a parent that holds far more (as `bench perf` starts its
// `bench check` and trace-read children).

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { peakRssBytes } from '../src/peak-rss.ts';

const MB = 1 << 20;

describe('peakRssBytes', () => {
  it.runIf(process.platform === 'linux')('reports a child its own peak, not the larger one of the parent that started it', () => {
    const held = Buffer.alloc(400 * MB, 1); // touched, so resident in this process
    const script = `import { peakRssBytes } from ${JSON.stringify(new URL('../src/peak-rss.ts', import.meta.url).href)};
      console.log(JSON.stringify({ own: peakRssBytes(), inherited: process.resourceUsage().maxRSS * 1024 }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { own: number; inherited: number };
    expect(held[held.length - 1]).toBe(1);
    // The OS's own figure for the child carries this process's peak over; ours does not.
    expect(out.inherited).toBeGreaterThan(400 * MB);
    expect(out.own).toBeLessThan(200 * MB);
    expect(peakRssBytes()).toBeGreaterThan(400 * MB);
  });
});
