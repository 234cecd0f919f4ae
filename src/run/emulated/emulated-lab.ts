// The lab file a nightly run is given: either an emulated lab (`kind: emulated`), whose
// "hosts" are emulator instances, or a real Hyper-V inventory (src/lab/inventory.ts).
//
// An emulated lab stands in for a real one so the whole nightly pipeline (plan, journal,
// worker pool, traces, reports, history) runs on any machine. Each host carries a set of
// the documented-gap choices (src/vmbus/choices.ts): different configurations of the
// behaviours KMCL's documentation leaves open play the part of different host builds.
//
//   version: 1
//   kind: emulated
//   name: emulated                       # the lab name in summary.json and the history
//   scenarios: ../bench/scenarios        # a directory or file, or a list; relative to this file
//   device: ../devices/blockq/device.ts  # optional: the device module of scenarios that name none
//   seeds: [1, 2]
//   template: emulator                   # optional; the "VM template" column of results
//   hosts:
//     - { name: emu-defaults, build: emu-ws2022-like }
//     - { name: emu-ring-first, build: emu-ws2025-like, choices: { sendOrdering: ring-first } }
//   guests: [linux-twin]                 # labels; the emulator's guest is the Linux driver twin
//   devices: c                           # optional: the C VSP in WebAssembly as every host's VSP (c-linux / c-windows: and the C Linux / Windows guest driver as the guest; default twin)
//
// Every problem is an InputError (exit 2) naming the file, the line and the field.
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { DEVICES_MODES, type DevicesMode } from '../../scenario/model.ts';
import { inventoryFromSource } from '../../lab/inventory.ts';
import { problemsToError, readYamlFile, validate, type Problem, type YamlSource } from '../../lab/yaml-input.ts';
import { GAP_CHOICES, type GapChoices } from '../../vmbus/choices.ts';

const label = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'use letters, digits, dot, dash or underscore (at most 64, not starting with . - _)');
const nonEmpty = z.string().min(1, 'must not be empty');

const choicesSchema = z.strictObject(
  Object.fromEntries(
    GAP_CHOICES.map((c) => [c.key, (typeof c.options[0] === 'boolean' ? z.boolean() : z.enum(c.options as [string, ...string[]])).optional()]),
  ),
);

const emulatedLabSchema = z.strictObject({
  version: z.literal(1, 'must be 1'),
  kind: z.literal('emulated'),
  name: label,
  description: z.string().optional(),
  scenarios: z.union([nonEmpty, z.array(nonEmpty).min(1, 'list at least one scenario file or directory')], {
    error: (issue) => (issue.input === undefined ? 'missing required field' : 'expected a scenario file or directory, or a list of them'),
  }),
  seeds: z.array(z.number().int().min(0).max(0xffffffff, 'seeds are 32-bit unsigned integers')).min(1, 'list at least one seed'),
  device: nonEmpty.optional(),
  template: label.default('emulator'),
  hosts: z
    .array(z.strictObject({ name: label, build: nonEmpty, description: z.string().optional(), choices: choicesSchema.default({}) }))
    .min(1, 'list at least one emulated host'),
  guests: z.array(label).min(1, 'list at least one guest label'),
  devices: z.enum(DEVICES_MODES).optional(),
});

export interface EmulatedHost {
  name: string;
  build: string;
  choices: Partial<GapChoices>;
}

export interface EmulatedLab {
  kind: 'emulated';
  file: string;
  name: string;
  template: string;
  /** Absolute paths of scenario files or directories. */
  scenarioPaths: string[];
  /** The device module (absolute path) of the scenarios that name none; absent: the sample. */
  device?: string | undefined;
  seeds: number[];
  hosts: EmulatedHost[];
  guests: string[];
  /** every job's host VSPs (overrides each scenario's devices); absent: each scenario's own */
  devices?: DevicesMode | undefined;
}

export interface HypervLab {
  kind: 'hyperv';
  file: string;
  name: string;
}

export type LabFile = EmulatedLab | HypervLab;

/** Reads a lab file; a file without `kind: emulated` is checked as a Hyper-V inventory. */
export async function loadLabFile(path: string): Promise<LabFile> {
  const src = await readYamlFile(path);
  const kind = typeof src.data === 'object' && src.data !== null ? (src.data as Record<string, unknown>).kind : undefined;
  if (kind === undefined) {
    const inv = inventoryFromSource(src);
    return { kind: 'hyperv', file: src.file, name: inv.name };
  }
  if (kind !== 'emulated') {
    throw problemsToError(src, [{ path: ['kind'], message: `unknown lab kind ${JSON.stringify(kind)}`, hint: 'use kind: emulated, or leave kind out for a Hyper-V lab inventory' }]);
  }
  return emulatedLabFromSource(src);
}

export async function emulatedLabFromSource(src: YamlSource): Promise<EmulatedLab> {
  const raw = validate(src, emulatedLabSchema);
  const problems: Problem[] = [];
  unique(raw.hosts.map((h) => h.name), (i, first) => problems.push({ path: ['hosts', i, 'name'], message: `host name "${raw.hosts[i]!.name}" is already used by hosts[${first}]`, hint: 'host names must be unique' }));
  unique(raw.guests, (i, first) => problems.push({ path: ['guests', i], message: `guest "${raw.guests[i]}" is already listed as guests[${first}]` }));
  unique(raw.seeds.map(String), (i, first) => problems.push({ path: ['seeds', i], message: `seed ${raw.seeds[i]} is already listed as seeds[${first}]` }));
  const baseDir = dirname(resolve(src.file));
  const listed = typeof raw.scenarios === 'string' ? [raw.scenarios] : raw.scenarios;
  const scenarioPaths: string[] = [];
  for (const [i, p] of listed.entries()) {
    const abs = resolve(baseDir, p);
    const exists = await stat(abs).then(() => true, () => false);
    if (!exists) problems.push({ path: typeof raw.scenarios === 'string' ? ['scenarios'] : ['scenarios', i], message: `no such scenario file or directory: ${abs}`, hint: 'paths are relative to the lab file' });
    scenarioPaths.push(abs);
  }
  const device = raw.device === undefined ? undefined : resolve(baseDir, raw.device);
  if (device !== undefined && !(await stat(device).then((st) => st.isFile(), () => false))) {
    problems.push({ path: ['device'], message: `no such device module: ${device}`, hint: 'the path is relative to the lab file' });
  }
  if (problems.length > 0) throw problemsToError(src, problems);
  return {
    kind: 'emulated',
    file: src.file,
    name: raw.name,
    template: raw.template,
    scenarioPaths,
    device,
    seeds: raw.seeds,
    hosts: raw.hosts.map((h) => ({ name: h.name, build: h.build, choices: h.choices as Partial<GapChoices> })),
    guests: raw.guests,
    ...(raw.devices ? { devices: raw.devices } : {}),
  };
}

function unique(values: readonly string[], onDuplicate: (index: number, first: number) => void): void {
  const seen = new Map<string, number>();
  values.forEach((v, i) => {
    const first = seen.get(v);
    if (first !== undefined) onDuplicate(i, first);
    else seen.set(v, i);
  });
}
