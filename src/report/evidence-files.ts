// Evidence files of a run (traces, minimised scenarios, host logs) as the report and the
// published site read them. Their paths come from summary.json, which a person or another
// program may have written: a path is used only when it stays inside the run directory,
// through any symbolic link, and names a regular file; anything else is treated as absent.
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { JobResult } from './summary.ts';

/** The absolute path of `rel` in `runDir`, or undefined when it is not a regular file inside it. */
export async function evidenceFile(runDir: string, rel: string): Promise<{ path: string; size: number } | undefined> {
  if (isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) return undefined;
  const root = resolve(runDir);
  const abs = resolve(root, rel);
  try {
    const [realRoot, real] = await Promise.all([realpath(root), realpath(abs)]);
    const inside = relative(realRoot, real);
    if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) return undefined;
    const s = await stat(real);
    if (!s.isFile()) return undefined;
    return { path: real, size: s.size };
  } catch {
    return undefined;
  }
}

/** The evidence paths of failing jobs that name files present in the run directory. */
export async function presentEvidence(runDir: string, jobs: readonly JobResult[]): Promise<Set<string>> {
  const paths = new Set<string>();
  for (const j of jobs) {
    if (j.verdict !== 'diverge' && j.verdict !== 'hang' && j.verdict !== 'error') continue;
    const ev = j.evidence;
    for (const p of [ev.minimizedScenario, ev.trace, ev.hostTrace, ev.guestTrace, ...(ev.artefacts ?? [])]) if (p) paths.add(p);
  }
  const present = new Set<string>();
  for (const p of paths) if (await evidenceFile(runDir, p)) present.add(p);
  return present;
}

/** Minimised scenarios are shown inline up to this size; longer ones are cut, saying so. */
export const INLINE_MAX_BYTES = 64 * 1024;

/** The text of every minimised scenario of the failing jobs, by evidence path, for renderReport. */
export async function readInlineScenarios(runDir: string, jobs: readonly JobResult[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const j of jobs) {
    const rel = j.evidence.minimizedScenario;
    if (!rel || out.has(rel)) continue;
    const f = await evidenceFile(runDir, rel);
    if (!f) continue;
    const fh = await open(f.path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(f.size, INLINE_MAX_BYTES));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const text = buf.subarray(0, bytesRead).toString('utf8');
      out.set(rel, f.size > INLINE_MAX_BYTES ? `${text}\n… (cut at ${INLINE_MAX_BYTES / 1024} KiB of ${f.size} bytes; the file has the rest)` : text);
    } finally {
      await fh.close();
    }
  }
  return out;
}

