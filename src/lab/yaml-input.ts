// Reading a lab YAML file (inventory, VM template) with positions, and turning schema
// problems into InputErrors that name file, line, field path and a fix.
//
// The YAML is parsed into a Document with a LineCounter so that every zod issue path
// (['hosts', 2, 'capacity', 'vmSlots']) can be mapped back to the node it came from.
// When the node is missing (a required field left out) the nearest parent that exists
// is named instead, which is where the user has to add it.

import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../errors.ts';
import { readInputText } from '../input-files.ts';
import { yamlToData } from '../yaml-data.ts';

export type FieldPath = readonly PropertyKey[];

export interface YamlSource {
  file: string;
  doc: Document;
  lines: LineCounter;
  data: unknown;
}

/** Reads and parses `file`; unreadable files and YAML syntax errors are InputErrors. */
export async function readYamlFile(file: string): Promise<YamlSource> {
  return parseYamlText(await readInputText(file), file);
}

export function parseYamlText(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = lines.linePos(first.pos[0]);
    // The parser's own message is about syntax only; it never quotes whole values.
    throw new InputError(`YAML syntax error: ${first.message.split('\n')[0]}`, { file, line: pos.line, column: pos.col }, {
      hint: first.code === 'DUPLICATE_KEY' ? 'each key may appear once per mapping' : 'fix the YAML syntax at this line',
    });
  }
  // Aliases that name no anchor, or multiply: an InputError at the alias's line.
  return { file, doc, lines, data: yamlToData(doc, lines, file) };
}

export function formatPath(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** 1-based line of the node at `path`, or of its nearest existing ancestor. */
export function lineOf(src: YamlSource, path: FieldPath, key?: string): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = src.doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    const target = n === path.length && key !== undefined && isMap(node) ? keyNode(node, key) : node;
    const range = target && typeof target === 'object' && 'range' in target ? target.range : undefined;
    if (range) return src.lines.linePos(range[0]).line;
    if (n === 0) {
      const contents = src.doc.contents as { range?: [number, number, number] } | null;
      return contents?.range ? src.lines.linePos(contents.range[0]).line : 1;
    }
  }
  return undefined;
}

function keyNode(map: unknown, key: string): { range?: [number, number, number] } | undefined {
  if (!isMap(map)) return undefined;
  for (const pair of map.items) if (isScalar(pair.key) && pair.key.value === key) return pair.key as { range?: [number, number, number] };
  return undefined;
}

export interface Problem {
  path: FieldPath;
  message: string;
  hint?: string | undefined;
  /** An unknown key: point at the key itself. */
  key?: string | undefined;
  /** For an unknown key, the known key it probably meant. */
  guess?: string | undefined;
  /** A required field that is absent. */
  missing?: boolean | undefined;
}

/** One InputError for all problems: the first one located, the others listed below it. */
export function problemsToError(src: YamlSource, problems: Problem[]): InputError {
  const located = problems
    .map((p) => {
      const field = formatPath(p.key !== undefined ? [...p.path, p.key] : p.path);
      return { p, field, line: lineOf(src, p.path, p.key) };
    })
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const [first, ...rest] = located;
  if (!first) return new InputError('invalid input', { file: src.file });
  const others = rest.map((o) => `\n  also ${src.file}:${o.line ?? '?'} ${o.field || '(top level)'}: ${o.p.message}${o.p.hint ? ` (${o.p.hint})` : ''}`);
  return new InputError(first.p.message + (first.p.hint ? ` (${first.p.hint})` : '') + others.join(''), {
    file: src.file,
    line: first.line,
    field: first.field || '(top level)',
  });
}

/**
 * Validates `src.data` with `schema`. Zod messages are rewritten so they never quote a
 * value (an inline secret could be one) and unknown keys get a "did you mean".
 */
export function validate<S extends z.ZodType>(src: YamlSource, schema: S): z.output<S> {
  if (src.data === null || src.data === undefined) {
    throw new InputError('the file is empty', { file: src.file, line: 1 }, { hint: 'see lab/example.yaml or vm-templates/ for a complete example' });
  }
  const result = schema.safeParse(src.data);
  if (result.success) return result.data;
  const problems: Problem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path);
      for (const key of issue.keys) {
        const guess = closest(key, known);
        problems.push({
          path: issue.path,
          key,
          message: `unknown key "${key}"`,
          guess,
          hint: guess ? `did you mean "${guess}"?` : known.length > 0 ? `known keys: ${known.join(', ')}` : undefined,
        });
      }
    } else if (issue.code === 'invalid_type') {
      const missing = getIn(src.data, issue.path) === undefined;
      problems.push({
        path: issue.path,
        missing,
        message: missing ? `missing required field` : `expected ${describeExpected(issue.expected)}, got ${typeName(getIn(src.data, issue.path))}`,
      });
    } else {
      problems.push({ path: issue.path, message: issue.message });
    }
  }
  // A misspelt required key shows up twice: unknown "memoryMb" and missing "memoryMB".
  // Keep only the unknown key, whose "did you mean" already says what to do.
  const guessed = new Set(problems.filter((p) => p.guess !== undefined).map((p) => formatPath([...p.path, p.guess!])));
  throw problemsToError(src, problems.filter((p) => !(p.missing && guessed.has(formatPath(p.path)))));
}

function describeExpected(expected: string): string {
  return expected === 'object' ? 'a mapping' : expected === 'array' ? 'a list' : `a ${expected}`;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

function getIn(data: unknown, path: FieldPath): unknown {
  let cur = data;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}

/** The keys a strict object schema accepts at `path` (walks zod's definitions). */
export function knownKeys(schema: z.ZodType, path: FieldPath): string[] {
  let cur: unknown = schema;
  const step = (s: unknown): unknown => {
    // Unwrap wrappers that do not change the shape.
    for (let i = 0; i < 10; i++) {
      const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return s;
      if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch'].includes(def.type as string)) s = def.innerType;
      else if (def.type === 'pipe') s = def.in;
      else return s;
    }
    return s;
  };
  for (const part of path) {
    const def = (step(cur) as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === 'object' && typeof part === 'string') cur = (def.shape as Record<string, unknown>)[part];
    else if (def.type === 'array') cur = def.element;
    else if (def.type === 'record') cur = def.valueType;
    else return [];
    if (cur === undefined) return [];
  }
  const def = (step(cur) as { _zod: { def: Record<string, unknown> } })._zod.def;
  return def.type === 'object' ? Object.keys(def.shape as object).filter((k) => !HIDDEN_KEYS.has(k)) : [];
}

/** Keys that exist in schemas only to refuse them with a better message (inline secrets). */
export const HIDDEN_KEYS = new Set(['password', 'privateKey', 'key', 'passphrase']);

/** The known key within edit distance 2 (or a case-insensitive match), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) (best = c), (bestDistance = d);
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(prev[j]! + 1, next[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = next;
  }
  return prev[b.length]!;
}
