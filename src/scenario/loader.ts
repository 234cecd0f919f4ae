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
import { ScenarioSchema, devicePath, toScenario, type Scenario } from './model.ts';
import { checkRules, checkDeviceRules } from './validate.ts';
import { loadDevice } from '../device-api/load.ts';

/**
 * `defaultDevice`: the device module of scenarios that name none (a lab file's `device`,
 * `from` says where it is named); without it, the sample device.
 */
export interface DeviceDefault {
  defaultDevice?: string | undefined;
  from?: { file: string; field: string } | undefined;
}

export async function loadScenarioPaths(paths: readonly string[], opts: DeviceDefault = {}): Promise<Scenario[]> {
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
    const s = await loadScenarioFile(f, opts);
    const prev = seen.get(s.name);
    if (prev) throw new InputError(`scenario name "${s.name}" is also used by ${prev}`, { file: f, field: 'name' });
    seen.set(s.name, f);
    out.push(s);
  }
  return out;
}

export async function loadScenarioFile(file: string, opts: DeviceDefault = {}): Promise<Scenario> {
  const text = await readInputText(file);
  const s = parseScenario(text, file);
  if (s.device === undefined && opts.defaultDevice !== undefined) {
    s.device = opts.defaultDevice;
    // A module that does not load is the lab file's problem, named there.
    await loadDevice(s.device, { file: opts.from?.file, field: opts.from?.field ?? 'device' });
  }
  await loadScenarioDevice(s, (field) => lineLocator(text)(field.replace(/\[(\d+)\]/g, '.$1').split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p))));
  return s;
}

/**
 * Loads the scenario's device module (the sample's when it names none) and checks the steps
 * against it: message sizes, holds on packets that want no completion. Bad module or step:
 * InputError naming the file, line and field.
 */
export async function loadScenarioDevice(s: Scenario, lineOfField: (field: string) => number | undefined = () => undefined): Promise<void> {
  const file = s.source?.file;
  const m = await loadDevice(devicePath(s), s.device === undefined ? { file } : { file, line: lineOfField('device'), field: 'device' });
  const v = checkDeviceRules(s, m)[0];
  if (v) throw new InputError(v.message, { file, line: lineOfField(v.field) ?? (v.step >= 0 ? s.source?.stepLines[v.step] : undefined), field: v.field });
}

/** The line of a field path in a YAML text (the last node of the path that exists). */
function lineLocator(text: string): (path: readonly PropertyKey[]) => number | undefined {
  const lc = new LineCounter();
  return nodeLines(parseDocument(text, { lineCounter: lc, prettyErrors: false }), lc);
}

function nodeLines(doc: ReturnType<typeof parseDocument>, lc: LineCounter): (path: readonly PropertyKey[]) => number | undefined {
  return (path) => {
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
  const lineOf = nodeLines(doc, lc);
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
