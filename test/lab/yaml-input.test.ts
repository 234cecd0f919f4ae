// The lab's YAML files (inventory, templates, emulated labs) on hostile input: aliases
// that name no anchor or multiply, and paths that are not regular files, are refused
// with exit 2 naming the file and the line.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { parseYamlText, readYamlFile } from '../../src/lab/yaml-input.ts';
import { loadInventory } from '../../src/lab/inventory.ts';

function errorOf(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('lab YAML input', () => {
  it('names the line of an alias that names no anchor', () => {
    const e = errorOf(() => parseYamlText('version: 1\nhosts:\n  - *nope\n', 'lab.yaml'));
    expect(e.location).toMatchObject({ file: 'lab.yaml', line: 3 });
    expect(e.message).toContain('*nope');
  });

  it('names the line of aliases that multiply', () => {
    const text = 'a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n';
    const e = errorOf(() => parseYamlText(text, 'lab.yaml'));
    expect(e.location).toMatchObject({ file: 'lab.yaml', line: 3 });
    expect(e.message).toContain('aliases expand to more than');
  });

  it('refuses a FIFO and a symlink loop without blocking, naming what they are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yaml-input-'));
    execFileSync('mkfifo', [join(dir, 'lab.yaml')]);
    await expect(readYamlFile(join(dir, 'lab.yaml'))).rejects.toThrow(/lab\.yaml: not a regular file \(it is a FIFO\)/);
    symlinkSync(join(dir, 'l.yaml'), join(dir, 'l.yaml'));
    await expect(readYamlFile(join(dir, 'l.yaml'))).rejects.toThrow(/l\.yaml: symbolic link loop/);
  });

  it('an inventory with an unresolved alias is an InputError at its line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'yaml-input-'));
    const file = join(dir, 'lab.yaml');
    writeFileSync(file, 'version: 1\nname: x\nhosts:\n  - name: a\n    address: *addr\n');
    const e = await loadInventory(file).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).message).toContain(`${file}:5`);
  });
});
