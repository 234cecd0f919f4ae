import { describe, expect, it } from 'vitest';
import { parseScenario, loadScenarioPaths } from '../../src/scenario/loader.ts';
import { InputError } from '../../src/errors.ts';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function errorOf(text: string): InputError {
  try {
    parseScenario(text, 's.yaml');
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('scenario loader', () => {
  it('loads every scenario of the suite', async () => {
    const all = await loadScenarioPaths(['bench/scenarios']);
    expect(all.length).toBeGreaterThanOrEqual(8);
    expect(new Set(all.map((s) => s.name)).size).toBe(all.length);
  });

  it('expands `channels: N` into N default channels', () => {
    const s = parseScenario('name: x\nchannels: 3\nsteps:\n  - { op: settle }\n', 's.yaml');
    expect(s.channels.map((c) => c.id)).toEqual([0, 1, 2]);
    expect(s.channels[0]).toMatchObject({ g2hPages: 4, h2gPages: 4, quota: 0 });
  });

  it('names file, line and field of an unknown key', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: settle }\n  - { op: host-send, count: 2, size: 64, holdd: 5 }\n');
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file: 's.yaml', line: 4, field: 'steps[1]' });
    expect(e.message).toContain('"holdd"');
  });

  it('names the field of a value out of range', () => {
    const e = errorOf('name: x\nsteps:\n  - op: guest-send\n    count: 0\n    size: 64\n');
    expect(e.location.field).toBe('steps[0].count');
    expect(e.location.line).toBe(4);
  });

  it('names the field of a message size outside what the device sends (the sample: 24 to 16384 bytes)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-'));
    const file = join(dir, 's.yaml');
    writeFileSync(file, 'name: x\nsteps:\n  - op: guest-send\n    count: 2\n    size: 8\n');
    const e = await loadScenarioPaths([file]).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).location).toMatchObject({ file, line: 5, field: 'steps[0].size' });
    expect((e as InputError).message).toContain('device sample sends messages of 24 to 16384 bytes');
  });

  it('rejects an unknown op with the list of known ones', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: reboot }\n');
    expect(e.location.line).toBe(3);
    expect(e.message).toContain('apply-checkpoint');
  });

  it('reports YAML syntax errors with their line', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: settle\n');
    expect(e.message).toContain('not valid YAML');
    expect(e.location.line).toBeGreaterThanOrEqual(3);
  });

  it('refuses a restore without a save, naming the step', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: run, ms: 1 }\n  - { op: restore }\n');
    expect(e.location).toMatchObject({ line: 4, field: 'steps[1].op' });
  });

  it('refuses anything but restore after a save', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: save }\n  - { op: guest-send, count: 1, size: 64 }\n');
    expect(e.message).toContain('only "restore" can follow "save"');
  });

  it('refuses applying a checkpoint that was never taken', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: apply-checkpoint, name: nope }\n');
    expect(e.location.field).toBe('steps[0].name');
  });

  it('refuses a step on a channel that does not exist', () => {
    const e = errorOf('name: x\nchannels: 2\nsteps:\n  - { op: host-send, channel: 5, count: 1, size: 64 }\n');
    expect(e.location.field).toBe('steps[0].channel');
  });

  it('refuses migrating to the host the VM is on', () => {
    const e = errorOf('name: x\nhost: a\nsteps:\n  - { op: migrate, to: a }\n');
    expect(e.message).toContain('already on "a"');
  });

  it('refuses unknown gap choices and values', () => {
    expect(errorOf('name: x\nchoices: { sendOrdering: random }\nsteps:\n  - { op: settle }\n').location.field).toBe('choices.sendOrdering');
    expect(errorOf('name: x\nchoices: { nope: 1 }\nsteps:\n  - { op: settle }\n').message).toContain('"nope"');
  });

  it('refuses a directory with two scenarios of one name', async () => {
    await expect(loadScenarioPaths(['bench/scenarios/01-idle-save-restore.yaml', 'bench/scenarios/01-idle-save-restore.yaml'])).rejects.toThrow(/also used by/);
  });
});

describe('scenario rules on ring sizes', () => {
  it('refuses a message larger than its ring can ever hold, naming the field', () => {
    try {
      parseScenario('name: x\nchannels: [{ id: 0, h2gPages: 1 }]\nsteps:\n  - { op: host-send, count: 1, size: 8000 }\n', 's.yaml');
      throw new Error('expected an InputError');
    } catch (e) {
      expect((e as InputError).location).toMatchObject({ line: 4, field: 'steps[0].size' });
      expect((e as Error).message).toContain('h2gPages');
    }
  });
});

// Found by a hostile run (issue 16): each of these crashed or misled before.
describe('scenario loader on hostile input', () => {
  const LAUGHS =
    'name: x\n' +
    'a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n' +
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n' +
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n' +
    'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n' +
    'steps: [*d]\n';

  it('refuses an alias that names no anchor, at its line', () => {
    const e = errorOf('name: x\nsteps:\n  - *nope\n');
    expect(e.location).toMatchObject({ file: 's.yaml', line: 3 });
    expect(e.message).toContain('alias *nope names no anchor');
  });

  it('refuses aliases that multiply (billion laughs), at the first alias that nests', () => {
    const e = errorOf(LAUGHS);
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file: 's.yaml', line: 4 });
    expect(e.message).toContain('aliases expand to more than');
  });

  it('still reads a scenario that uses an anchor and its alias', () => {
    const s = parseScenario('name: x\nsteps:\n  - &r { op: run, ms: 1 }\n  - *r\n', 's.yaml');
    expect(s.steps.length).toBe(2);
  });

  it('refuses a scenario that ends paused, at the last step', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: run, ms: 1 }\n  - { op: pause }\n');
    expect(e.location).toMatchObject({ line: 4, field: 'steps[1]' });
    expect(e.message).toContain('ends with the VM paused');
  });

  it('refuses a scenario that ends saved, at the last step', () => {
    const e = errorOf('name: x\nsteps:\n  - { op: run, ms: 1 }\n  - { op: save }\n');
    expect(e.location).toMatchObject({ line: 4, field: 'steps[1]' });
    expect(e.message).toContain('ends with the VM saved');
  });

  it('says "symbolic link loop" for a looping link, and refuses a FIFO without blocking', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-'));
    symlinkSync(join(dir, 'loop.yaml'), join(dir, 'loop.yaml'));
    await expect(loadScenarioPaths([join(dir, 'loop.yaml')])).rejects.toThrow(/loop\.yaml: symbolic link loop/);
    execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
    await expect(loadScenarioPaths([join(dir, 'pipe.yaml')])).rejects.toThrow(/pipe\.yaml: not a regular file \(it is a FIFO\)/);
    // A FIFO inside a scenario directory is refused too, not read.
    const suite = mkdtempSync(join(tmpdir(), 'loader-'));
    execFileSync('mkfifo', [join(suite, 'a.yaml')]);
    await expect(loadScenarioPaths([suite])).rejects.toThrow(/a\.yaml: not a regular file/);
  });
});
