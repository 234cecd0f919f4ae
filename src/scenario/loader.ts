// Loads scenario YAML files: parse with positions, validate, then normalise.
//
// Every problem becomes an InputError (exit 2) naming the file, the line and the field
// path, and saying how to fix it where that is not obvious. A directory loads every
// *.yaml / *.yml in it, in name order.

import { readdir } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../errors.ts';
import { readInputText, statInput } from '../input-files.ts';
import { yamlToData } from '../yaml-data.ts';
import { ScenarioSchema, toScenario, type Scenario } from './model.ts';
import { checkRules } from './validate.ts';

export async function loadScenarioPaths(paths: readonly string[]): Promise<Scenario[]> {
  const files: string[] = [];
  for (const p of paths) {
    // A symlink loop, a FIFO or a device is refused here, before anything reads it.
    const st = await statInput(p, { allowDir: true });
    if (st.isDirectory()) {
      const names = (await readdir(p)).filter((n) => ['.yaml', '.yml'].includes(extname(n))).sort();
      if (names.length === 0) throw new InputError('the directory holds no .yaml scenario files', { file: p });
      files.push(...names.map((n) => join(p, n)));
    } else {
      files.push(p);
    }
  }
  const out: Scenario[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const s = await loadScenarioFile(f);
    const prev = seen.get(s.name);
    if (prev) throw new InputError(`scenario name "${s.name}" is also used by ${prev}`, { file: f, field: 'name' });
    seen.set(s.name, f);
    out.push(s);
  }
  return out;
}

export async function loadScenarioFile(file: string): Promise<Scenario> {
  return parseScenario(await readInputText(file), file);
}

export function parseScenario(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new InputError(`not valid YAML: ${e.message.split('\n')[0]}`, { file, line: pos.line, column: pos.col });
  }
  const data: unknown = yamlToData(doc, lc, file);
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    let node: unknown = doc.contents;
    let last: Node | undefined = node as Node | undefined;
    for (const key of path) {
      if (isMap(node)) node = node.get(key as string, true);
      else if (isSeq(node)) node = node.get(key as number, true);
      else break;
      if (node) last = node as Node;
      else break;
    }
    const range = last?.range;
    return range ? lc.linePos(range[0]).line : undefined;
  };
  const parsed = ScenarioSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(describeIssue(issue), { file, line: lineOf(issue.path), field: fieldPath(issue.path) || '(document)' });
  }
  const stepLines = parsed.data.steps.map((_, i) => lineOf(['steps', i]) ?? 0);
  const scenario = toScenario(parsed.data, { file, stepLines });
  const violations = checkRules(scenario);
  if (violations.length > 0) {
    const v = violations[0]!;
    const path = v.field.replace(/\[(\d+)\]/g, '.$1').split('.');
    throw new InputError(v.message, { file, line: lineOf(path.map((p) => (/^\d+$/.test(p) ? Number(p) : p))), field: v.field });
  }
  return scenario;
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_union':
      return 'unknown or missing "op"; expected one of guest-send, host-send, notify, run, settle, save, restore, pause, resume, checkpoint, apply-checkpoint, migrate';
    default:
      return issue.message;
  }
}
