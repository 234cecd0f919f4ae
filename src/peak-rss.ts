// This process's peak resident memory, for the benchmarks that report it.
//
// Not process.resourceUsage().maxRSS: on Linux a child process inherits its parent's
// peak (the kernel keeps the larger of the forked copy's and the new program's), so a
// benchmark child started by `bench perf` reported the parent's few hundred MB, not its
// own. /proc/self/status's VmHWM is the peak of this program's own memory.

import { readFileSync } from 'node:fs';

export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall back to what the OS reports (where a child's figure is its own).
  }
  return process.resourceUsage().maxRSS * 1024;
}
