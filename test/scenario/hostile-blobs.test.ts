// A saved VM whose checksum is right but whose content is not (issue 16): a blob made by
// another program, or one damaged before it was sealed. Restoring it must either work or
// be refused with a RestoreError before anything is built; never a TypeError, never a
// run that loops for ever. The blobs are the golden ones (test/fixtures/saved), decoded,
// changed in one field, and encoded again, so the checksum is recomputed and only the
// record's own checks stand between the change and the restore.
import { readFileSync } from 'node:fs';
import { deserialize } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resumeScenario, type MigrationHandoff } from '../../src/scenario/execute.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { RestoreError, encodeSavedVm, type SavedVmV1 } from '../../src/vmbus/saved-state.ts';
import { GOLDEN_SCENARIO } from '../fixtures/saved/golden-scenario.ts';

type Path = (string | number)[];

/** Every place in the record a value could be changed: fields, list items, map values, and the numbers of typed number arrays. */
function paths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  if (at.length > 0) out.push(at);
  if (v instanceof Float64Array) v.forEach((_, i) => out.push([...at, i]));
  else if (v instanceof Uint8Array) return out; // bytes: the rings and KMCL streams have checks of their own
  else if (v instanceof Map) [...v.keys()].forEach((k) => out.push([...at, `map:${String(k)}`]));
  else if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

const DELETE = Symbol('delete');
const REPLACEMENTS: unknown[] = [NaN, DELETE, -1, 1.5, 2 ** 53, Infinity, 'x', null, {}, [], new Uint8Array(3), true, 0];

function changed(rec: SavedVmV1, path: Path, value: unknown): SavedVmV1 {
  const copy = deserialize(Buffer.from(encodeSavedVm(rec).subarray(20))) as SavedVmV1;
  let parent: unknown = copy;
  for (const k of path.slice(0, -1)) parent = parent instanceof Map ? parent.get(Number(String(k).slice(4))) : (parent as Record<string | number, unknown>)[k];
  const last = path.at(-1)!;
  if (parent instanceof Float64Array) {
    parent[last as number] = typeof value === 'number' ? value : NaN;
  } else if (parent instanceof Map) {
    const key = Number(String(last).slice(4));
    if (value === DELETE) parent.delete(key);
    else parent.set(key, value);
  } else if (value === DELETE) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete (parent as Record<string | number, unknown>)[last];
  } else {
    (parent as Record<string | number, unknown>)[last] = value;
  }
  return copy;
}

describe.each([2, 3])('restoring golden blob vm-v%i.bin changed in one field, checksum recomputed', (version) => {
  const blob = new Uint8Array(readFileSync(new URL(`../fixtures/saved/vm-v${version}.bin`, import.meta.url)));
  const rest = JSON.parse(readFileSync(new URL(`../fixtures/saved/vm-v${version}.json`, import.meta.url), 'utf8')) as Omit<MigrationHandoff, 'blob'>;
  const rec = deserialize(Buffer.from(blob.subarray(20))) as SavedVmV1;
  const all = paths(rec);

  const restore = (r: SavedVmV1): unknown => {
    try {
      const seg = resumeScenario(GOLDEN_SCENARIO, { seed: 7, sink: new MemorySink(), maxSteps: 5_000 }, { ...rest, blob: encodeSavedVm(r) });
      return seg.kind;
    } catch (e) {
      return e;
    }
  };

  it('restores, or throws a RestoreError (bad-record); nothing else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...all), fc.constantFrom(...REPLACEMENTS), (path, value) => {
        const got = restore(changed(rec, path, value));
        if (got instanceof Error) {
          expect(got, `${path.join('.')} = ${String(value)}: ${got.stack}`).toBeInstanceOf(RestoreError);
          expect((got as RestoreError).code).toBe('bad-record');
        } else {
          expect(got).toBe('done');
        }
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['a NaN due', ['guest', 'takenAt'], NaN],
    ['no takenAt', ['guest', 'takenAt'], DELETE],
    ['channels that are not a list', ['guest', 'channels'], {}],
    ['a channel record for a channel not in the layout', ['channels', 0, 'ch'], 9],
    ['a guest channel not in the layout', ['guest', 'channels', 0, 'ch'], 9],
  ] as const)('refuses %s with a RestoreError', (_what, path, value) => {
    const got = restore(changed(rec, [...path], value));
    expect(got).toBeInstanceOf(RestoreError);
  });
});
