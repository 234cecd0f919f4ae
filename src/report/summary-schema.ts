// Reading summary.json: parse, validate with zod, and turn the first problem into an
// InputError that names the file and the field (`jobs[3].verdict`). The shape is
// documented in summary.ts; this file only checks it.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InputError } from '../errors.ts';
import type { RunSummary } from './summary.ts';

const nonEmpty = z.string().min(1, 'must be a non-empty string');
const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date');
const ms = z.number().nonnegative('must be a duration in milliseconds (>= 0)');

// Trace events are checked only for the fields every event has (src/trace/TRACE-SCHEMA.md);
// new events and fields may be added, so the rest passes through unchanged.
const traceEvent = z.looseObject({
  v: z.literal(1),
  seq: z.number().int().nonnegative(),
  src: nonEmpty,
  side: z.enum(['host', 'guest', 'bench']),
  ev: nonEmpty,
});

const jobResult = z.object({
  // Job ids name evidence folders and HTML anchors: letters, digits and ._-@+= only.
  jobId: z.string().regex(/^[\w@+=-][\w.@+=-]*$/, 'must be letters, digits and . _ - @ + = (not starting with .)'),
  host: nonEmpty,
  hostBuild: nonEmpty,
  guest: nonEmpty,
  template: nonEmpty,
  scenario: nonEmpty,
  seed: z.number().int(),
  attach: z.enum(['loopback', 'vm-handle']).optional(),
  device: nonEmpty.optional(),
  verdict: z.enum(['pass', 'diverge', 'error', 'hang', 'skipped']),
  divergenceClass: nonEmpty.optional(),
  message: z.string().optional(),
  failedProperties: z.array(z.string()).optional(),
  notChecked: z.array(z.string()).optional(),
  firstUnexplained: z
    .object({ file: nonEmpty, line: z.number().int().positive(), event: traceEvent })
    .optional(),
  expected: z.array(z.string()).optional(),
  timeline: z.array(traceEvent).optional(),
  durationsMs: z.object({ emulator: ms.optional(), real: ms.optional(), check: ms.optional() }),
  evidence: z.object({
    trace: nonEmpty.optional(),
    hostTrace: nonEmpty.optional(),
    guestTrace: nonEmpty.optional(),
    minimizedScenario: nonEmpty.optional(),
    artefacts: z.array(nonEmpty).optional(),
  }),
  attempts: z.number().int().positive().optional(),
  quarantined: z.object({ reason: nonEmpty, until: isoDate }).optional(),
  reproduce: z
    .object({
      scenarioFile: nonEmpty.optional(),
      choices: z.record(z.string(), z.union([z.string(), z.boolean()])).optional(),
      faults: z.array(nonEmpty).optional(),
    })
    .optional(),
  hostFacts: z.object({
    osBuild: z.string().optional(), hypervVersion: z.string().optional(), kmclVersion: z.string().optional(),
    label: z.string().optional(), warning: z.string().optional(), guestOs: z.string().optional(),
  }).optional(),
  drivers: z.array(z.object({
    name: nonEmpty, where: z.enum(['host', 'guest']), sha256: nonEmpty, fileVersion: z.string().optional(), sourceCommit: z.string().optional(),
  })).optional(),
});

const runSummary = z
  .object({
    version: z.literal(1),
    runId: nonEmpty,
    lab: nonEmpty,
    startedAt: isoDate,
    finishedAt: isoDate,
    benchVersion: z.string().optional(),
    jobs: z.array(jobResult),
  })
  .superRefine((s, ctx) => {
    // jobId names evidence folders and HTML anchors, so it must be unique.
    const seen = new Set<string>();
    s.jobs.forEach((j, i) => {
      if (seen.has(j.jobId)) ctx.addIssue({ code: 'custom', path: ['jobs', i, 'jobId'], message: `duplicate jobId "${j.jobId}"` });
      seen.add(j.jobId);
    });
  });

/** `['jobs', 3, 'verdict']` -> `jobs[3].verdict` */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(document)';
}

/** Validates an already parsed document. `file` only names the source in errors. */
export function parseSummary(doc: unknown, file: string): RunSummary {
  const r = runSummary.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0];
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : '';
    throw new InputError(`${issue?.message ?? 'invalid summary'}${more}`, {
      file,
      field: fieldPath(issue?.path ?? []),
    });
  }
  // The loose trace-event schema checks only the common fields; the rest is the producer's word,
  // hence the cast from the schema's output to the documented types.
  return r.data as unknown as RunSummary;
}

/** Reads and validates a summary.json file. Never returns a partly valid summary. */
export async function loadSummary(file: string): Promise<RunSummary> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no summary.json here (is this a run directory?)' : `cannot read: ${(e as Error).message}`, { file }, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InputError(`not valid JSON: ${(e as Error).message}`, { file, line: jsonErrorLine(text, e) }, { cause: e });
  }
  return parseSummary(doc, file);
}

/** V8 reports a character position; people want a line. */
function jsonErrorLine(text: string, e: unknown): number | undefined {
  const m = /position (\d+)/.exec(String((e as Error).message));
  if (!m) return undefined;
  const pos = Number(m[1]);
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
