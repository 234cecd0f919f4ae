// A real lab's inventory names the device its hosts run (`device:`, for the lab and per
// host, relative to the inventory): scenarios that name no device take the lab's, a host
// whose module has no control interface is refused at load (exit 2, naming the device,
// the file and the line), and a scenario is planned only on hosts that run its device.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SAMPLE_DEVICE } from '../../../src/device-api/load.ts';
import { InputError } from '../../../src/errors.ts';
import { loadInventory } from '../../../src/lab/inventory.ts';
import { loadLab } from '../../../src/run/real/lab-run.ts';
import { runProbe } from '../../../src/run/real/probe.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';
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
/** Another device's host packages, in defaults (a VSP and its loopback client). */
const pkg = (role: string) => `    ${role}: { files: 'C:\\my\\${role}', binary: my.sys, installed: 'C:\\Windows\\System32\\drivers\\my_${role}.sys', install: x, uninstall: y, trace: { format: etw, provider: "{11111111-2222-3333-4444-555555555555}" } }`;
const DRIVERS = ['defaults:', '  drivers:', pkg('vsp'), pkg('client')];
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
    // blockq has a control (its Linux guest's control file among it) but no control tool for a host.
    expect((e as Error).message).toContain('its control has no "tool"');
    expect((e as Error).message).toContain('host hv-b');
    expect((e as Error).message).toMatch(/lab\.yaml:4/);
  });

  it('refuses a host that runs another device than the sample but names no driver packages (the defaults are the sample\'s)', async () => {
    const { file } = lab(['version: 1', 'device: ./other.ts', 'hosts:', host('hv-a')]);
    const e = await loadLab({ lab: file, templates: [TEMPLATE], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/lab\.yaml:2.*host hv-a runs device other but names no driver packages/s);
  });

  it('`bench lab check` refuses such a host with exit 2 before reaching any host', () => {
    const { file } = lab(['version: 1', 'hosts:', host('hv-a', `, device: ${JSON.stringify(resolve('devices/blockq/device.ts'))}`)]);
    const r = spawnSync(process.execPath, [resolve('bin/bench.js'), 'lab', 'check', '--lab', file], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, BENCH_PWSH: '/nonexistent/pwsh' } });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/device blockq .*has no control interface/);
  });

  it('refuses to probe a host whose device has no control, before connecting to it', async () => {
    const { file } = lab(['version: 1', 'hosts:', host('hv-a', `, device: ${JSON.stringify(resolve('devices/blockq/device.ts'))}`)]);
    const e = await runProbe({ lab: file, out: join(tmpdir(), 'no-probe'), scenarios: [SCENARIO], connect: { modules: [], localPwsh: '/nonexistent/pwsh' }, clock: realClock }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/device blockq has no control interface .* host hv-a's drivers/);
    expect((e as Error).message).toMatch(/lab\.yaml:3/);
  });

  it('refuses a Linux template when the host\'s device names no Linux control file', async () => {
    const { dir, file } = lab(['version: 1', 'device: ./no-linux.ts', ...DRIVERS, 'hosts:', host('hv-a')]);
    writeFileSync(join(dir, 'no-linux.ts'), `import sample from ${JSON.stringify(resolve('devices/sample/device.ts'))};\nexport default { ...sample, name: 'windows-only', control: { ...sample.control, linuxGuest: undefined } };\n`);
    const e = await loadLab({ lab: file, templates: [TEMPLATE], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/device windows-only .* names no control file for a Linux guest driver .* template ubuntu-2404/);
    expect((e as InputError).location.file).toBe(TEMPLATE);
    // The Windows template alone is fine.
    await expect(loadLab({ lab: file, templates: ['vm-templates/windows-2025.yaml'], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined })).resolves.toBeDefined();
  });

  it('gives scenarios that name none the lab\'s device, and plans a scenario only on the hosts that run its device', async () => {
    const { dir, file } = lab(['version: 1', 'device: ./other.ts', ...DRIVERS, 'hosts:', host('hv-a', ', attach: loopback'), host('hv-b', `, attach: loopback, device: ${JSON.stringify(resolve('devices/sample/device.ts'))}`)]);
    const loaded = await loadLab({ lab: file, templates: [TEMPLATE], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined });
    expect(devicePath(loaded.scenarios[0]!)).toBe(join(dir, 'other.ts'));
    expect(loaded.plan.jobs.map((j) => j.host).sort()).toEqual(['hv-a', 'hv-a']);
    const notHere = loaded.plan.unplaced.filter((u) => u.host === 'hv-b');
    expect(notHere).toHaveLength(2); // the loopback job and the VM template's
    for (const u of notHere) expect(u.reason).toContain(`hv-b runs the drivers of ${SAMPLE_DEVICE}`);
  });
});
