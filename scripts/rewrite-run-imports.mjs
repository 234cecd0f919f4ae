// A merge aid for issue 15's move of src/run into folders (commit ab81216): after merging a
// branch that edited src/run files at their old paths, take that branch's side of each
// conflicted import block (keeping any import line only the moved side has, such as
// explore-parallel.ts's `../workers/explore-share.ts`), then run from the repository root:
//
//   node scripts/rewrite-run-imports.mjs
//
// Every relative specifier (import, export, new URL('./x.ts')) in src, test, bench, scripts
// and bin that resolves, from a moved file's OLD place, to a file that existed then is
// rewritten for the file's new place and the target's new place. Specifiers already
// written for the new layout resolve to nothing from the old place and are left alone.
// Delete this file once no branch from before the move is left.
const MOVES = `
src/run/engine.ts src/run/engine/engine.ts
src/run/scheduler.ts src/run/engine/scheduler.ts
src/run/job-pipeline.ts src/run/engine/job-pipeline.ts
src/run/journal.ts src/run/engine/journal.ts
src/run/plan.ts src/run/engine/plan.ts
src/run/run-lock.ts src/run/engine/run-lock.ts
src/run/quarantine.ts src/run/engine/quarantine.ts
src/run/chat-summary.ts src/run/engine/chat-summary.ts
src/run/worker-pool.ts src/run/workers/worker-pool.ts
src/run/worker-protocol.ts src/run/workers/worker-protocol.ts
src/run/worker-tasks.ts src/run/workers/worker-tasks.ts
src/run/emulator-worker.ts src/run/workers/emulator-worker.ts
src/run/emulated-job.ts src/run/workers/emulated-job.ts
src/run/migrate-threads.ts src/run/workers/migrate-threads.ts
src/run/migration-worker.ts src/run/workers/migration-worker.ts
src/run/sim-clock.ts src/run/sim/sim-clock.ts
src/run/sim-lab.ts src/run/sim/sim-lab.ts
src/run/sim-run.ts src/run/sim/sim-run.ts
src/run/emulated-lab.ts src/run/emulated/emulated-lab.ts
src/run/emulated-engine.ts src/run/emulated/emulated-engine.ts
src/run/nightly-emulated.ts src/run/emulated/nightly-emulated.ts
src/run/emulate.ts src/run/commands/emulate.ts
src/run/perf.ts src/run/commands/perf.ts
src/run/perf-check.ts src/run/commands/perf-check.ts
src/run/explore-parallel.ts src/run/commands/explore-parallel.ts
src/run/check-trace.ts src/run/commands/check-trace.ts
src/run/lab-run.ts src/run/real/lab-run.ts
src/run/lab-real-side.ts src/run/real/lab-real-side.ts
src/run/real-job.ts src/run/real/real-job.ts
src/run/console-host-key.ts src/run/real/console-host-key.ts
test/run/engine/emulated-engine.test.ts test/run/emulated/emulated-engine.test.ts
test/run/emulated-lab.test.ts test/run/emulated/emulated-lab.test.ts
test/run/nightly-emulated.test.ts test/run/emulated/nightly-emulated.test.ts
test/run/nightly-command.test.ts test/run/emulated/nightly-command.test.ts
test/run/worker-pool.test.ts test/run/workers/worker-pool.test.ts
test/run/emulated-job.test.ts test/run/workers/emulated-job.test.ts
test/run/migrate-threads.test.ts test/run/workers/migrate-threads.test.ts
test/run/explore-parallel.test.ts test/run/commands/explore-parallel.test.ts
test/run/engine/lab-real-side.test.ts test/run/real/lab-real-side.test.ts
test/run/engine/real-job.test.ts test/run/real/real-job.test.ts
test/run/engine/real-job-standin.test.ts test/run/real/real-job-standin.test.ts
test/run/engine/run-command.test.ts test/run/real/run-command.test.ts
test/run/engine/nightly-schedule.test.ts test/run/real/nightly-schedule.test.ts
test/run/engine/support/emulator-lab.ts test/run/real/support/emulator-lab.ts
`;
import { readFileSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { resolve, dirname, relative, join } from 'node:path';
const root = process.cwd();
const moves = MOVES.trim().split('\n').map((l) => l.trim().split(' ').map((p) => resolve(root, p)));
const oldToNew = new Map(moves);
const newToOld = new Map(moves.map(([a, b]) => [b, a]));
const movedOld = new Set(oldToNew.keys());
function files(d) { return readdirSync(d).flatMap((n) => { if (n === 'node_modules' || n.startsWith('.')) return []; const p = join(d, n); return statSync(p).isDirectory() ? files(p) : /\.(ts|js|mjs)$/.test(n) ? [p] : []; }); }
const all = ['src', 'test', 'bench', 'scripts', 'bin'].filter((d) => existsSync(d)).flatMap((d) => files(resolve(root, d)));
const existedOld = (p) => movedOld.has(p) || (existsSync(p) && !newToOld.has(p));
let changed = 0;
for (const f of all) {
  const f0 = newToOld.get(f) ?? f;
  const text = readFileSync(f, 'utf8');
  const out = text.replace(/(['"])(\.\.?\/[^'"\n]*)\1/g, (m, q, spec) => {
    const t0 = resolve(dirname(f0), spec);
    if (!existedOld(t0)) return m;
    const t = oldToNew.get(t0) ?? t0;
    let s = relative(dirname(f), t);
    if (!s.startsWith('.')) s = './' + s;
    if (spec.endsWith('/') && !s.endsWith('/')) s += '/';
    return s === spec ? m : q + s + q;
  });
  if (out !== text) { writeFileSync(f, out); changed++; console.log('fixed', relative(root, f)); }
}
console.log(changed);
