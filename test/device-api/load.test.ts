// Loading a device module by path (src/device-api/load.ts): the module a scenario names is
// loaded and checked against the interface; a bad path or a module that does not implement
// it is bad input (exit 2) naming the scenario file, the `device` field and the module's
// field. `bench emulate` says so too.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { SAMPLE_DEVICE, checkDeviceModule, deviceOf, loadDevice } from '../../src/device-api/load.ts';
import { loadScenarioPaths } from '../../src/scenario/loader.ts';
import sample from '../../devices/sample/device.ts';
import blockq from '../../devices/blockq/device.ts';

const bench = (args: string[]) => execa('node', ['bin/bench.js', ...args], { reject: false });

/** A scenario file naming `device` (and the module's text beside it, if given). */
function scenarioWith(device: string, moduleText?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'device-'));
  if (moduleText !== undefined) writeFileSync(join(dir, device), moduleText);
  const file = join(dir, 's.yaml');
  writeFileSync(file, `name: x\ndevice: ./${device}\nsteps:\n  - { op: guest-send, count: 2, size: 64 }\n`);
  return file;
}

async function inputErrorOf(p: Promise<unknown>): Promise<InputError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(InputError);
  return e as InputError;
}

const REQUIRED = ['name', 'messageSize', 'completions', 'statusRule'] as const;
const EMULATOR = ['hostVsp', 'newGuestState', 'guest', 'snapshotGuest', 'reviveGuest'] as const;

describe('device modules', () => {
  it('a scenario without `device` runs the sample, loaded by path like any other module', async () => {
    const [s] = await loadScenarioPaths(['bench/scenarios/01-idle-save-restore.yaml']);
    expect(s!.device).toBeUndefined();
    expect(deviceOf(SAMPLE_DEVICE)).toBe(sample);
    expect(await loadDevice(SAMPLE_DEVICE)).toBe(sample);
  });

  it('`device:` is resolved against the scenario file', async () => {
    const [s] = await loadScenarioPaths(['devices/blockq/scenarios/01-save-restore.yaml']);
    expect(s!.device).toBe(resolve('devices/blockq/device.ts'));
    expect(deviceOf(s!.device!)).toBe(blockq);
  });

  it('the sample and blockq implement the interface', () => {
    expect(checkDeviceModule(sample)).toBeNull();
    expect(checkDeviceModule(blockq)).toBeNull();
  });

  it('property: a module missing any required field, or with one of the wrong kind, is refused naming that field', () => {
    const fields = [...REQUIRED.map((f) => [f] as const), ...EMULATOR.map((f) => ['emulator', f] as const)];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.constantFrom<unknown>(undefined, 7, null, [], ''), (path, value) => {
        const m = { ...blockq, emulator: { ...blockq.emulator! } } as Record<string, unknown>;
        const holder = (path.length === 2 ? m['emulator'] : m) as Record<string, unknown>;
        holder[path[path.length - 1]!] = value;
        const problem = checkDeviceModule(m);
        if (path[0] === 'statusRule' && value === undefined) expect(problem).toContain('"statusRule"');
        else expect(problem, `${path.join('.')} = ${String(value)}`).toContain(`"${path.join('.')}`);
      }),
    );
  });

  it('property: a control missing any of its functions, or with a field of the wrong kind, is refused naming that field', () => {
    const fields = ['command', 'channelInstance', 'channel', 'counters', 'tool', 'linuxGuest', 'loopbackChannels', 'begin'] as const;
    // No tool is allowed (a device for the emulator only: a real lab refuses it, test/lab/inventory/inventory-device.test.ts).
    const optional = new Set(['tool', 'linuxGuest', 'loopbackChannels', 'begin']);
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.constantFrom<unknown>(undefined, 7, null, [7], '', 'relative/control'), (field, value) => {
        const m = { ...sample, control: { ...sample.control!, [field]: value } };
        const problem = checkDeviceModule(m);
        if (value === undefined && optional.has(field)) expect(problem).toBeNull();
        else if (field === 'loopbackChannels' && value === 7) expect(problem).toBeNull();
        else expect(problem, `control.${field} = ${JSON.stringify(value)}`).toContain(`"control.${field}`);
      }),
    );
  });

  it('a Linux guest\'s fullRing is wait or queue, or absent; anything else is refused naming the field', () => {
    const withFullRing = (fullRing: unknown) => ({ ...sample, control: { ...sample.control!, linuxGuest: { controlFile: '/sys/kernel/debug/x/control', fullRing } } });
    for (const ok of [undefined, 'wait', 'queue']) expect(checkDeviceModule(withFullRing(ok)), String(ok)).toBeNull();
    for (const bad of ['sleep', 7, null]) expect(checkDeviceModule(withFullRing(bad))).toContain('"control.linuxGuest.fullRing"');
  });

  it('a device field naming no file: exit 2 naming the scenario file, line and field', async () => {
    const file = scenarioWith('no-such-device.ts');
    const e = await inputErrorOf(loadScenarioPaths([file]));
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file, line: 2, field: 'device' });
    expect(e.message).toContain('no such file');
  });

  it('a module that does not implement the interface: exit 2 naming the module\'s field', async () => {
    const file = scenarioWith('half.mjs', "export default { name: 'half', messageSize: { min: 8, max: 64 }, completions: { guestSend: true, hostSend: true }, statusRule: 'opaque', emulator: { hostVsp() {} } };\n");
    const e = await inputErrorOf(loadScenarioPaths([file]));
    expect(e.location).toMatchObject({ file, field: 'device' });
    expect(e.message).toMatch(/half\.mjs .*does not implement the device module interface: field "emulator\.newGuestState"/);
  });

  it('a module that does not load (a syntax error): exit 2 saying so', async () => {
    const file = scenarioWith('broken.mjs', 'export default {{;\n');
    const e = await inputErrorOf(loadScenarioPaths([file]));
    expect(e.message).toMatch(/broken\.mjs .*does not load/);
  });

  it('a step the device cannot send (a size outside its messageSize) is refused at its line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-'));
    const file = join(dir, 's.yaml');
    writeFileSync(file, `name: x\ndevice: ${resolve('devices/blockq/device.ts')}\nsteps:\n  - op: host-send\n    count: 1\n    size: 9000\n`);
    const e = await inputErrorOf(loadScenarioPaths([file]));
    expect(e.location).toMatchObject({ file, line: 6, field: 'steps[0].size' });
    expect(e.message).toContain('device blockq sends messages of 20 to 8192 bytes');
  });

  it('bench emulate with a bad device module exits 2 and names file and field', async () => {
    const file = scenarioWith('half.mjs', "export default { name: 'half' };\n");
    const r = await bench(['emulate', file, '--out', mkdtempSync(join(tmpdir(), 'emu-'))]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/device: .*field "messageSize"/);
  });

  it('an opaque device is checked on its properties alone, and says so', async () => {
    // blockq's twins, declared opaque: bench check replays nothing and names what it left out.
    const dir = mkdtempSync(join(tmpdir(), 'device-'));
    writeFileSync(join(dir, 'opaque.ts'), `import blockq from '${resolve('devices/blockq/device.ts')}';\nexport default { ...blockq, name: 'opaque-blockq', statusRule: 'opaque' };\n`);
    const scenario = join(dir, 's.yaml');
    writeFileSync(scenario, 'name: opaque-run\ndevice: ./opaque.ts\nsteps:\n  - { op: guest-send, count: 3, size: 64 }\n  - { op: save }\n  - { op: restore }\n  - { op: settle }\n');
    const out = mkdtempSync(join(tmpdir(), 'emu-'));
    expect((await bench(['emulate', scenario, '--out', out])).exitCode).toBe(0);
    const r = await bench(['check', '--scenario', scenario, '--trace', join(out, 'opaque-run.jsonl'), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.result.verdict).toBe('pass');
    expect(doc.notChecked.join(' ')).toMatch(/payload rules/);
  });
});
