// `bench report --publish DEST`: a self-contained static site of every indexed run:
//
//   DEST/index.html                  runs by lab, newest first, with the history chart;
//                                    it states the evidence cap
//   DEST/runs/<run-id>/report.html   each run's report, its evidence links working
//   DEST/runs/<run-id>/junit.xml, summary.json
//   DEST/runs/<run-id>/jobs/...      the evidence of the run's failing jobs, at the same
//                                    relative paths as in the run directory: minimised
//                                    scenarios first, then traces, then host logs and other
//                                    artefacts, while the run's total stays under the cap
//                                    (evidenceCapBytes); a file that would pass it is left
//                                    out, and its report says so beside the path
//   DEST/.bench-site                 marks DEST as ours, so a later publish may replace it
//
// No reader ever sees half a site: everything is built in a temp directory beside DEST
// (same file system), then swapped in by renames: DEST -> .DEST.old-*, temp -> DEST, then
// the old copy is removed. A failure while building removes the temp directory and leaves
// DEST exactly as it was. POSIX has no atomic exchange of two directories, so between the
// two renames DEST is briefly absent; it is never partly written.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, isBenchError } from '../errors.ts';
import { evidenceFile, readInlineScenarios } from './evidence-files.ts';
import { openHistory } from './history.ts';
import { renderReport } from './html-report.ts';
import { renderSiteIndex } from './html-index.ts';
import { serializeSummary } from './json-reporter.ts';
import { buildJunitXml } from './junit-reporter.ts';
import { JUNIT_FILE, REPORT_FILE, SUMMARY_FILE } from './run-dir.ts';
import { loadSummary } from './summary-schema.ts';
import type { JobResult } from './summary.ts';

const MARKER = '.bench-site';

/** Evidence published per run by default: 50 MiB. */
export const EVIDENCE_CAP_BYTES = 50 * 1024 * 1024;

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / (1024 * 1024)) * 10) / 10} MiB`;
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KiB`;
  return `${n} bytes`;
}

/** A failing job's evidence paths in the order they are worth publishing. */
export function evidenceOrder(jobs: readonly JobResult[]): string[] {
  const failing = jobs.filter((j) => j.verdict === 'diverge' || j.verdict === 'hang' || j.verdict === 'error');
  const tiers: (string | undefined)[][] = [
    failing.map((j) => j.evidence.minimizedScenario),
    failing.flatMap((j) => [j.evidence.trace, j.evidence.hostTrace, j.evidence.guestTrace]),
    failing.flatMap((j) => j.evidence.artefacts ?? []),
  ];
  return [...new Set(tiers.flat().filter((p): p is string => p !== undefined))];
}

export interface PublishOptions {
  historyPath: string;
  resultsRoot: string;
  onWarning?: (message: string) => void;
  /** Evidence bytes published per run (default EVIDENCE_CAP_BYTES); the index states it. */
  evidenceCapBytes?: number;
  /** Test hook: called after each file is written into the temp directory. */
  afterWrite?: (relPath: string) => Promise<void> | void;
}

export interface PublishResult {
  dest: string;
  runs: string[];
  files: number;
  /** Evidence files copied, and those left out (over the cap, or missing from the run directory). */
  evidence: { copied: number; bytes: number; overCap: number; missing: number };
}

/** A run id as one safe path segment (run ids are directory names already; this is a guard). */
export function siteSegment(runId: string): string {
  const s = runId.replace(/[^\w.@+=-]/g, '_');
  return s === '.' || s === '..' || s === '' ? `_${s}` : s;
}

export async function publishSite(destArg: string, options: PublishOptions): Promise<PublishResult> {
  const dest = resolve(destArg);
  await checkReplaceable(dest);
  await mkdir(dirname(dest), { recursive: true });
  const token = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(dirname(dest), `.${basename(dest)}.publish-${token}`);
  const old = join(dirname(dest), `.${basename(dest)}.old-${token}`);

  let files = 0;
  const published: string[] = [];
  const cap = options.evidenceCapBytes ?? EVIDENCE_CAP_BYTES;
  const evidence = { copied: 0, bytes: 0, overCap: 0, missing: 0 };
  try {
    await mkdir(tmp);
    const write = async (rel: string, data: string) => {
      await mkdir(dirname(join(tmp, rel)), { recursive: true });
      await writeFile(join(tmp, rel), data);
      files++;
      await options.afterWrite?.(rel);
    };
    const opened = await openHistory(options.historyPath, options.resultsRoot);
    try {
      opened.warnings.forEach((w) => options.onWarning?.(w));
      const runs = opened.history.runs();
      for (const run of runs) {
        const dir = opened.history.dirOf(run.runId);
        if (!dir) continue;
        let summary;
        try {
          summary = await loadSummary(join(dir, SUMMARY_FILE));
        } catch (e) {
          if (!isBenchError(e)) throw e;
          options.onWarning?.(`publish: skipped run ${run.runId}: ${e.message}`);
          continue;
        }
        const base = `runs/${siteSegment(run.runId)}`;
        // Evidence first, so the report links exactly what was copied.
        const why = new Map<string, string>();
        const copied = new Set<string>();
        let budget = cap;
        for (const rel of evidenceOrder(summary.jobs)) {
          const f = await evidenceFile(dir, rel);
          if (!f) {
            why.set(rel, 'not found in the run directory when this site was published');
            evidence.missing++;
          } else if (f.size > budget) {
            why.set(rel, `not published: over this site's evidence cap of ${formatBytes(cap)} per run; it is in the run directory`);
            evidence.overCap++;
          } else {
            const to = join(tmp, base, rel);
            await mkdir(dirname(to), { recursive: true });
            await copyFile(f.path, to);
            files++;
            await options.afterWrite?.(`${base}/${rel}`);
            budget -= f.size;
            copied.add(rel);
            evidence.copied++;
            evidence.bytes += f.size;
          }
        }
        const inline = await readInlineScenarios(dir, summary.jobs.filter((j) => j.verdict === 'diverge' || j.verdict === 'hang'));
        await write(`${base}/${REPORT_FILE}`, renderReport(summary, opened.history.trends(summary), {
          evidenceLinks: (p) => copied.has(p),
          unlinkedNote: (p) => why.get(p) ?? 'in the run directory',
          inline,
        }));
        await write(`${base}/${JUNIT_FILE}`, buildJunitXml(summary));
        await write(`${base}/${SUMMARY_FILE}`, serializeSummary(summary));
        published.push(run.runId);
      }
      const included = new Set(published);
      await write('index.html', renderSiteIndex(runs.filter((r) => included.has(r.runId)), (id) => (included.has(id) ? `runs/${siteSegment(id)}/${REPORT_FILE}` : undefined), { evidenceCap: formatBytes(cap) }));
      await write(MARKER, `${JSON.stringify({ publishedBy: 'vmbus-bench', runs: published.length })}\n`);
    } finally {
      opened.history.close();
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }

  // The swap. Only renames from here on.
  const hadOld = await isDir(dest);
  try {
    if (hadOld) await rename(dest, old);
    try {
      await rename(tmp, dest);
    } catch (e) {
      if (hadOld) await rename(old, dest);
      throw e;
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  if (hadOld) await rm(old, { recursive: true, force: true });
  return { dest, runs: published, files, evidence };
}

/**
 * DEST may be absent, empty, or a site we published before; anything else is not ours to
 * replace. Exported so the CLI can refuse before it writes anything else.
 */
export async function checkReplaceable(destArg: string): Promise<void> {
  const dest = resolve(destArg);
  let s;
  try {
    s = await stat(dest);
  } catch {
    return;
  }
  if (!s.isDirectory()) throw new InputError('publish destination exists and is not a directory', { field: '--publish', file: dest });
  const entries = await readdir(dest);
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new InputError('publish destination is a non-empty directory that bench did not publish; refusing to replace it', { field: '--publish', file: dest }, { hint: 'choose an empty or new directory' });
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
