// Dependencies point one way (DESIGN.md, "Layout"):
//   cli -> run -> {lab, check, report} -> {scenario, trace} -> {vmbus, devices}
// A module may import its own layer and the layers below it, never one above. One
// exception, by design: the device twins write trace events (issue 2) through the sink
// interface, so devices may import the *types* of trace/schema.ts and trace/sink.ts,
// which themselves import nothing from above.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const RANK: Record<string, number> = {
  vmbus: 0, devices: 0, // the emulator's core and the device twins (devices may use vmbus)
  scenario: 1, trace: 1, 'device-api': 1, // the device module interface (src/device-api) is the scenario's
  lab: 2, check: 2, report: 2,
  run: 3,
  cli: 4,
};
// Within a rank, these may not import each other (the layers are siblings).
const SIBLINGS_APART: Array<[string, string]> = [
  ['vmbus', 'devices'], // vmbus knows nothing of the devices
  ['lab', 'check'],
  ['lab', 'report'],
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const SRC = resolve('src');
const layerOf = (file: string): string => relative(SRC, file).split('/')[0]!;

describe('layers', () => {
  it('the core imports no device module: nothing of src reaches outside src (devices/ are loaded by path)', () => {
    const out: string[] = [];
    for (const f of files(SRC)) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\(\s*|import\s+)'(\.[^']+)'/g)) {
        const target = resolve(dirname(f), m[1]!);
        if (relative(SRC, target).startsWith('..')) out.push(`${relative(SRC, f)} imports ${m[1]}`);
      }
      // A type spelled as an import() type reaches the module too.
      for (const m of text.matchAll(/typeof import\('([^']+)'\)/g)) {
        if (relative(SRC, resolve(dirname(f), m[1]!)).startsWith('..')) out.push(`${relative(SRC, f)} names the type of ${m[1]}`);
      }
    }
    expect(out).toEqual([]);
  });

  it('imports only point down (or stay within a layer)', () => {
    const bad: string[] = [];
    for (const f of files(SRC)) {
      const from = layerOf(f);
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(import type|import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
        const spec = m[2] ?? m[3]!;
        const target = resolve(dirname(f), spec);
        const to = layerOf(target);
        const typeOnlyTrace = m[1] === 'import type' && from === 'devices' && /trace\/(schema|sink)\.ts$/.test(target);
        if (typeOnlyTrace) continue;
        if (!(to in RANK) || !(from in RANK)) continue; // src/errors.ts and friends are shared by all
        const up = RANK[to]! > RANK[from]!;
        const apart = SIBLINGS_APART.some(([a, b]) => from === a && to === b);
        if (up || apart) bad.push(`${relative(SRC, f)} imports ${spec} (${from} -> ${to})`);
      }
    }
    expect(bad).toEqual([]);
  });
});

// Inside src/run, the parts point one way too (issue 15): the engine and the worker threads
// know nothing of the labs; the simulated, emulated and real labs and the single commands
// build on them; the real lab also checks its traces as `bench check` does (commands).
const RUN_RANK: Record<string, number> = {
  engine: 0, workers: 0,
  sim: 1, emulated: 1, commands: 1,
  real: 2,
};
const RUN_APART: Array<[string, string]> = [
  ['engine', 'workers'], ['workers', 'engine'],
  ['sim', 'emulated'], ['emulated', 'sim'], ['sim', 'commands'], ['commands', 'sim'], ['emulated', 'commands'], ['commands', 'emulated'],
];
const RUN = join(SRC, 'run');
const partOf = (file: string): string | undefined => {
  const rel = relative(RUN, file);
  return rel.startsWith('..') ? undefined : rel.split('/')[0];
};

describe('src/run parts', () => {
  it('every file of src/run sits in one of its parts', () => {
    expect(files(RUN).map((f) => partOf(f)!).filter((p) => !(p in RUN_RANK))).toEqual([]);
  });

  it('imports between the parts point one way', () => {
    const bad: string[] = [];
    for (const f of files(RUN)) {
      const from = partOf(f)!;
      for (const m of readFileSync(f, 'utf8').matchAll(/(import type|import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)|new URL\(\s*'(\.[^']+\.ts)'/g)) {
        const spec = m[2] ?? m[3] ?? m[4]!;
        const to = partOf(resolve(dirname(f), spec));
        if (to === undefined || to === from) continue;
        const up = (RUN_RANK[to] ?? 99) > (RUN_RANK[from] ?? -1);
        const apart = RUN_APART.some(([a, b]) => from === a && to === b);
        if (up || apart) bad.push(`${relative(SRC, f)} imports ${spec} (${from} -> ${to})`);
      }
    }
    expect(bad).toEqual([]);
  });
});
