// A real lab's inventory names the device its hosts run (`device:`, for the lab and per
// host, relative to the inventory): scenarios that name no device take the lab's, a host
// whose module has no control interface is refused at load (exit 2, naming the device,
// the file and the line), and a scenario is planned only on hosts that run its device.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SAMPLE_DEVICE } from '../../../src/device-api/load.ts';
import { InputError } from '../../../src/errors.ts';
import { loadInventory } from '../../../src/lab/inventory.ts';
import { loadLab } from '../../../src/run/real/lab-run.ts';
import { devicePath } from '../../../src/scenario/model.ts';

const host = (name: string, extra = '') => `  - { name: ${name}, transport: local, vmRoot: 'D:\\bench\\vms', switch: sw, capacity: { vmSlots: 2, memoryMB: 8192 }${extra} }`;

/** A folder with an inventory, and a second device module: the sample under another name (a device with a control). */
function lab(lines: string[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'inventory-device-'));
  writeFileSync(join(dir, 'other.ts'), `import sample from ${JSON.stringify(resolve('devices/sample/device.ts'))};\nexport default { ...sample, name: 'other' };\n`);
  const file = join(dir, 'lab.yaml');
  writeFileSync(file, [...lines, ''].join('\n'));
  return { dir, file };
}

const SCENARIO = 'bench/scenarios/01-idle-save-restore.yaml';
const TEMPLATE = 'vm-templates/ubuntu-2404.yaml';

describe('the inventory\'s device', () => {
  it('resolves the lab\'s device and a host\'s own against the inventory, with their lines', async () => {
    const { dir, file } = lab(['version: 1', 'device: ./other.ts', 'hosts:', host('hv-a'), host('hv-b', `, device: ${JSON.stringify(resolve('devices/sample/device.ts'))}`)]);
    const inv = await loadInventory(file);
    expect(inv.device).toEqual({ path: join(dir, 'other.ts'), line: 2, field: 'device' });
    expect(inv.hosts[0]!.device).toEqual(inv.device);
    expect(inv.hosts[1]!.device).toEqual({ path: SAMPLE_DEVICE, line: 5, field: 'hosts[1].device' });
    // No device anywhere: nothing recorded, the sample is the default.
    const plain = await loadInventory(lab(['hosts:', host('hv-a')]).file);
    expect(plain.device).toBeUndefined();
    expect(plain.hosts[0]!.device).toBeUndefined();
  });

  it('refuses an empty device and one in defaults, naming the field and line', async () => {
    const empty = await loadInventory(lab(['hosts:', host('hv-a', ", device: ''")]).file).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(InputError);
    expect((empty as Error).message).toMatch(/lab\.yaml:2.*hosts\[0\]\.device/s);
    const inDefaults = await loadInventory(lab(['defaults: { device: ./other.ts }', 'hosts:', host('hv-a')]).file).catch((e: unknown) => e);
    expect(inDefaults).toBeInstanceOf(InputError);
    expect((inDefaults as Error).message).toMatch(/defaults/);
  });

  it('refuses a host whose device has no control interface (exit 2), naming the device, the inventory and the line', async () => {
    const { file } = lab(['version: 1', 'hosts:', host('hv-a'), host('hv-b', `, device: ${JSON.stringify(resolve('devices/blockq/device.ts'))}`)]);
    const e = await loadLab({ lab: file, templates: [TEMPLATE], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as Error).message).toContain('device blockq');
    expect((e as Error).message).toContain('host hv-b');
    expect((e as Error).message).toMatch(/lab\.yaml:4/);
  });

  it('gives scenarios that name none the lab\'s device, and plans a scenario only on the hosts that run its device', async () => {
    const { dir, file } = lab(['version: 1', 'device: ./other.ts', 'hosts:', host('hv-a', ', attach: loopback'), host('hv-b', `, attach: loopback, device: ${JSON.stringify(resolve('devices/sample/device.ts'))}`)]);
    const loaded = await loadLab({ lab: file, templates: [TEMPLATE], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined });
    expect(devicePath(loaded.scenarios[0]!)).toBe(join(dir, 'other.ts'));
    expect(loaded.plan.jobs.map((j) => j.host).sort()).toEqual(['hv-a', 'hv-a']);
    const notHere = loaded.plan.unplaced.filter((u) => u.host === 'hv-b');
    expect(notHere).toHaveLength(2); // the loopback job and the VM template's
    for (const u of notHere) expect(u.reason).toContain(`hv-b runs the drivers of ${SAMPLE_DEVICE}`);
  });
});
