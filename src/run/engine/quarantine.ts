// Known-bad scenarios and hosts (`lab/quarantine.yaml`): each entry names what it covers
// (a scenario, a host, a template, or a combination), why, and until when. A quarantined
// job still runs and is reported; its failure does not fail the run while the entry is
// live (report/summary.ts, JobResult.quarantined). An expired entry excuses nothing and
// is listed as a warning, so the file is cleaned up rather than growing forever.
//
// The file is validated like the inventory: unknown keys, bad dates and entries that
// match nothing are errors naming file, line and field.

import { z } from 'zod';
import { problemsToError, readYamlFile, validate, type Problem, type YamlSource } from '../../lab/yaml-input.ts';
import type { JobSpec } from '../../report/summary.ts';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date like 2026-12-31' });

const entrySchema = z.strictObject({
  scenario: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  template: z.string().min(1).optional(),
  reason: z.string().min(3, { message: 'say why (at least a few words, or an issue link)' }),
  until: isoDate,
  issue: z.string().min(1).optional(),
});

export const quarantineSchema = z.strictObject({
  version: z.literal(1).optional(),
  entries: z.array(entrySchema).default([]),
});

export interface QuarantineEntry {
  scenario: string | undefined;
  host: string | undefined;
  template: string | undefined;
  reason: string;
  /** The last day the entry applies (inclusive), as written. */
  until: string;
  issue: string | undefined;
  line: number | undefined;
}

export interface QuarantineList {
  file: string;
  entries: QuarantineEntry[];
}

export const NO_QUARANTINE: QuarantineList = { file: '(none)', entries: [] };

export async function loadQuarantine(file: string): Promise<QuarantineList> {
  return quarantineFromSource(await readYamlFile(file));
}

export function quarantineFromSource(src: YamlSource): QuarantineList {
  const raw = src.data === null || src.data === undefined ? { entries: [] } : validate(src, quarantineSchema);
  const problems: Problem[] = [];
  const entries: QuarantineEntry[] = raw.entries.map((e, i) => {
    if (e.scenario === undefined && e.host === undefined && e.template === undefined) {
      problems.push({ path: ['entries', i], message: 'the entry covers nothing', hint: 'name a scenario, a host or a template (or several)' });
    }
    const d = new Date(`${e.until}T00:00:00Z`);
    if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== e.until) {
      problems.push({ path: ['entries', i, 'until'], message: `${e.until} is not a calendar date` });
    }
    const node = src.doc.getIn(['entries', i], true) as { range?: [number, number, number] } | undefined;
    const line = node?.range ? src.lines.linePos(node.range[0]).line : undefined;
    return { scenario: e.scenario, host: e.host, template: e.template, reason: e.reason, until: e.until, issue: e.issue, line };
  });
  if (problems.length > 0) throw problemsToError(src, problems);
  return { file: src.file, entries };
}

/** Whether the entry still applies on `asOf` (an ISO time): through the whole `until` day, UTC. */
export function isLive(e: QuarantineEntry, asOf: string): boolean {
  return asOf.slice(0, 10) <= e.until;
}

export function matches(e: QuarantineEntry, job: Pick<JobSpec, 'scenario' | 'host' | 'template'> & { partner?: string | undefined }): boolean {
  if (e.scenario !== undefined && e.scenario !== job.scenario) return false;
  if (e.template !== undefined && e.template !== job.template) return false;
  if (e.host !== undefined && e.host !== job.host && e.host !== job.partner) return false;
  return true;
}

/** The live entry that covers the job, as JobResult.quarantined, or undefined. */
export function quarantineFor(list: QuarantineList, job: Pick<JobSpec, 'scenario' | 'host' | 'template'> & { partner?: string | undefined }, asOf: string): { reason: string; until: string } | undefined {
  for (const e of list.entries) {
    if (!matches(e, job) || !isLive(e, asOf)) continue;
    const where = e.line !== undefined ? ` (${list.file}:${e.line})` : '';
    return { reason: `${e.reason}${e.issue ? ` [${e.issue}]` : ''}${where}`, until: `${e.until}T23:59:59Z` };
  }
  return undefined;
}

/**
 * Warnings about the list against a plan: entries past their date, and entries naming a
 * scenario, host or template the run does not have (likely a typo or a removed item).
 */
export function quarantineWarnings(list: QuarantineList, asOf: string, known: { scenarios: readonly string[]; hosts: readonly string[]; templates: readonly string[] }): string[] {
  const out: string[] = [];
  for (const e of list.entries) {
    const at = `${list.file}:${e.line ?? '?'}`;
    if (!isLive(e, asOf)) out.push(`${at}: quarantine expired on ${e.until} and excuses nothing; remove it or extend it (${e.reason})`);
    if (e.scenario !== undefined && !known.scenarios.includes(e.scenario)) out.push(`${at}: quarantined scenario ${e.scenario} is not in this run`);
    if (e.host !== undefined && !known.hosts.includes(e.host)) out.push(`${at}: quarantined host ${e.host} is not in this lab`);
    if (e.template !== undefined && !known.templates.includes(e.template)) out.push(`${at}: quarantined template ${e.template} is not in this run`);
  }
  return out;
}
