// The emulated lab file: what lab/emulated.yaml holds, and how a bad one is refused.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { loadScenarioPaths } from '../../../src/scenario/loader.ts';
import { SAMPLE_DEVICE, deviceOf } from '../../../src/device-api/load.ts';
import { devicePath } from '../../../src/scenario/model.ts';
import { isBenchError } from '../../../src/errors.ts';
import { loadLabFile } from '../../../src/run/emulated/emulated-lab.ts';
import { GAP_CHOICES } from '../../../src/vmbus/choices.ts';

function labFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'lab-')), 'lab.yaml');
  writeFileSync(file, text);
  return file;
}

const HEAD = `version: 1\nkind: emulated\nname: t\nscenarios: ${resolve('bench/scenarios')}\nseeds: [1]\n`;

async function refusal(text: string): Promise<{ message: string; exitCode: number; file: string }> {
  const file = labFile(text);
  const e = await loadLabFile(file).then(() => undefined, (err: unknown) => err);
  if (!isBenchError(e)) throw new Error(`expected an InputError, got ${String(e)}`);
  return { message: e.message, exitCode: e.exitCode, file };
}

describe('loadLabFile', () => {
  it('reads lab/emulated.yaml: hosts with different sets of gap choices, a guest, the bench scenarios', async () => {
    const lab = await loadLabFile('lab/emulated.yaml');
    if (lab.kind !== 'emulated') throw new Error('lab/emulated.yaml must be an emulated lab');
    expect(lab.hosts.length).toBeGreaterThanOrEqual(3);
    const sets = lab.hosts.map((h) => JSON.stringify(h.choices));
    expect(new Set(sets).size).toBe(lab.hosts.length);
    expect(new Set(lab.hosts.map((h) => h.build)).size).toBe(lab.hosts.length);
    expect(lab.hosts[0]!.choices).toEqual({});
    // Between them the hosts try a non-default option of every choice.
    const tried = new Set(lab.hosts.flatMap((h) => Object.keys(h.choices)));
    expect([...tried].sort()).toEqual(GAP_CHOICES.map((c) => c.key).sort());
    expect(lab.guests).toEqual(['linux-twin']);
    // Two devices: the sample's suite and blockq's, each a group of rows in the matrix.
    expect(lab.scenarioPaths).toEqual([resolve('bench/scenarios'), resolve('devices/blockq/scenarios')]);
  });

  it('`device:` names the device module of the scenarios that name none, relative to the lab file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-'));
    writeFileSync(join(dir, 's.yaml'), 'name: plain\nsteps:\n  - { op: guest-send, count: 2, size: 64 }\n');
    const file = join(dir, 'lab.yaml');
    writeFileSync(file, `version: 1\nkind: emulated\nname: t\nscenarios: s.yaml\nseeds: [1]\ndevice: ${relative(dir, resolve('devices/blockq/device.ts'))}\nhosts:\n  - { name: a, build: b }\nguests: [g]\n`);
    const lab = await loadLabFile(file);
    if (lab.kind !== 'emulated') throw new Error('an emulated lab');
    expect(lab.device).toBe(resolve('devices/blockq/device.ts'));
    const [s] = await loadScenarioPaths(lab.scenarioPaths, { defaultDevice: lab.device, from: { file, field: 'device' } });
    expect(deviceOf(devicePath(s!)).name).toBe('blockq');
    // A scenario that names its own device keeps it.
    const [own] = await loadScenarioPaths(['devices/blockq/scenarios/01-save-restore.yaml'], { defaultDevice: SAMPLE_DEVICE });
    expect(deviceOf(devicePath(own!)).name).toBe('blockq');
  });

  it('refuses a device module path that names no file, at its line', async () => {
    const r = await refusal(`${HEAD}device: ./nowhere.ts\nhosts:\n  - { name: a, build: b }\nguests: [g]\n`);
    expect(r.exitCode).toBe(2);
    expect(r.message).toContain(`${r.file}:6 device: no such device module`);
  });

  it('names the file, line and field of an unknown choice and says what is known', async () => {
    const r = await refusal(`${HEAD}hosts:\n  - name: a\n    build: b\n    choices: { sendOrder: fifo }\nguests: [g]\n`);
    expect(r.exitCode).toBe(2);
    expect(r.message).toContain(`${r.file}:9 hosts[0].choices.sendOrder: unknown key "sendOrder"`);
    expect(r.message).toContain('sendOrdering');
  });

  it('refuses duplicate host names and guests, at their lines', async () => {
    const r = await refusal(`${HEAD}hosts:\n  - { name: a, build: b }\n  - { name: a, build: c }\nguests: [g, g]\n`);
    expect(r.message).toContain(`${r.file}:8 hosts[1].name: host name "a" is already used by hosts[0]`);
    expect(r.message).toContain(`${r.file}:9 guests[1]`);
  });

  it('refuses a missing field at the nearest line, and an unknown kind', async () => {
    const missing = await refusal(`version: 1\nkind: emulated\nname: t\nseeds: [1]\nhosts: [{ name: a, build: b }]\nguests: [g]\n`);
    expect(missing.message).toMatch(/lab\.yaml:1 scenarios: missing required field/);
    const kind = await refusal('version: 1\nkind: vmware\nname: t\n');
    expect(kind.message).toContain(`${kind.file}:2 kind: unknown lab kind "vmware"`);
  });

  it('takes a file without kind as a Hyper-V inventory', async () => {
    const lab = await loadLabFile('lab/example.yaml');
    expect(lab).toMatchObject({ kind: 'hyperv', name: 'example-lab' });
  });
});
