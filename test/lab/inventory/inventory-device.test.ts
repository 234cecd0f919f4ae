// A real lab's inventory names the device its hosts run (`device:`, for the lab and per
// host, relative to the inventory): scenarios that name no device take the lab's, a host
// whose module has no control interface is refused at load (exit 2, naming the device,
// the file and the line), and a scenario is planned only on hosts that run its device.
// blockq, with its control tool and its own packages file (`driversFile`), is planned:
// its VM jobs with a Linux guest, not its loopback or Windows-guest ones.
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
import { loadScenarioFile } from '../../../src/scenario/loader.ts';
import { loopbackNotApplicable } from '../../../src/lab/attach.ts';

const host = (name: string, extra = '') => `  - { name: ${name}, transport: local, vmRoot: 'D:\\bench\\vms', switch: sw, capacity: { vmSlots: 2, memoryMB: 8192 }${extra} }`;

/**
 * A folder with an inventory, and two more device modules: the sample under another name
 * (a device with a control), and one for the emulator only (a control without a tool).
 */
function lab(lines: string[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'inventory-device-'));
  writeFileSync(join(dir, 'other.ts'), `import sample from ${JSON.stringify(resolve('devices/sample/device.ts'))};\nexport default { ...sample, name: 'other' };\n`);
  writeFileSync(join(dir, 'notool.ts'), `import sample from ${JSON.stringify(resolve('devices/sample/device.ts'))};\nexport default { ...sample, name: 'notool', control: { ...sample.control, tool: undefined } };\n`);
  const file = join(dir, 'lab.yaml');
  writeFileSync(file, [...lines, ''].join('\n'));
  return { dir, file };
}

const SCENARIO = 'bench/scenarios/01-idle-save-restore.yaml';
/** Another device's host packages, in defaults (a VSP and its loopback client). */
const pkg = (role: string) => `    ${role}: { files: 'C:\\my\\${role}', binary: my.sys, installed: 'C:\\Windows\\System32\\drivers\\my_${role}.sys', install: x, uninstall: y, trace: { format: etw, provider: "{11111111-2222-3333-4444-555555555555}" } }`;
const DRIVERS = ['defaults:', '  drivers:', pkg('vsp'), pkg('client')];
const TEMPLATE = 'vm-templates/ubuntu-2404.yaml';
const BLOCKQ_TEMPLATE = 'devices/blockq/vm-templates/ubuntu-2404-blockq.yaml';

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
    const { file } = lab(['version: 1', 'hosts:', host('hv-a'), host('hv-b', ', device: ./notool.ts')]);
    const e = await loadLab({ lab: file, templates: [TEMPLATE], scenarios: [SCENARIO], hosts: undefined, seeds: undefined, quarantine: undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as Error).message).toContain('device notool');
    // It has a control (its Linux guest's control file among it) but no control tool for a host.
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
    const { file } = lab(['version: 1', 'hosts:', host('hv-a', ', device: ./notool.ts')]);
    const r = spawnSync(process.execPath, [resolve('bin/bench.js'), 'lab', 'check', '--lab', file], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, BENCH_PWSH: '/nonexistent/pwsh' } });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/device notool .*has no control interface/);
  });

  it('refuses to probe a host whose device has no control, before connecting to it', async () => {
    const { file } = lab(['version: 1', 'hosts:', host('hv-a', ', device: ./notool.ts')]);
    const e = await runProbe({ lab: file, out: join(tmpdir(), 'no-probe'), scenarios: [SCENARIO], connect: { modules: [], localPwsh: '/nonexistent/pwsh' }, clock: realClock }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/device notool has no control interface .* host hv-a's drivers/);
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

  it('plans blockq on hosts with its tool and its own packages file: VM jobs with its Linux guest template; a Windows guest not applicable, saying why', async () => {
    const broker = ", attach: vm-handle, handleBroker: { command: 'C:\\bench\\bin\\handle-broker.exe' }";
    const { file } = lab(['version: 1', `device: ${JSON.stringify(resolve('devices/blockq/device.ts'))}`, 'defaults:', `  driversFile: ${JSON.stringify(resolve('devices/blockq/c/packages.yaml'))}`, 'hosts:',
      host('hv-a', `${broker}, migrationPartner: hv-b`), host('hv-b', `${broker}, migrationPartner: hv-a`)]);
    const loaded = await loadLab({ lab: file, templates: [BLOCKQ_TEMPLATE, 'vm-templates/windows-2025.yaml'], scenarios: ['devices/blockq/scenarios'], hosts: undefined, seeds: undefined, quarantine: undefined });
    const na = (j: (typeof loaded.plan.jobs)[number]) => (j as { notApplicable?: string }).notApplicable;
    const runs = loaded.plan.jobs.filter((j) => na(j) === undefined);
    // Each scenario on each host (the migration from each to its partner), with blockq's guest template.
    // The rescind and the guest's close run too: the Linux guest unbinds and binds blockq's module (control.guestUnbind).
    const names = ['blockq-checkpoint', 'blockq-guest-close-and-reopen', 'blockq-migrate', 'blockq-rescind-and-reoffer', 'blockq-save-restore'];
    expect(runs.map((j) => `${j.scenario}@${j.host}`).sort()).toEqual(names.flatMap((n) => [`${n}@hv-a`, `${n}@hv-b`]));
    expect(new Set(runs.map((j) => j.template))).toEqual(new Set(['ubuntu-2404-blockq']));
    const windows = loaded.plan.jobs.filter((j) => j.template === 'windows-2025');
    expect(windows).toHaveLength(2 * names.length);
    for (const j of windows) expect(na(j)).toBe('vm-handle: the blockq device has no Windows guest driver (its control\'s windowsGuestChannels is 0)');
    expect(loaded.plan.unplaced).toEqual([]);
    // The hosts' packages are blockq's, from its file.
    expect(loaded.inventory.hosts.map((h) => h.drivers?.vsp.sys)).toEqual(['C:\\bench\\drivers\\blockq-vsp\\vmbus_blockq_vsp.sys', 'C:\\bench\\drivers\\blockq-vsp\\vmbus_blockq_vsp.sys']);
    expect(loaded.inventory.hosts[0]!.drivers?.vsp.trace).toEqual({ format: 'etw', provider: '{6c1f2d0e-8b3a-4f57-9e21-5a7c40d213b8}' });
    expect(loaded.inventory.hosts[0]!.drivers?.client).toBeUndefined();
  });

  it('refuses to probe a blockq host, whose device has no loopback client to ask, before connecting (exit 2)', async () => {
    const { file } = lab(['version: 1', 'hosts:', host('hv-a', `, attach: vm-handle, handleBroker: { command: broker.exe }, device: ${JSON.stringify(resolve('devices/blockq/device.ts'))}, driversFile: ${JSON.stringify(resolve('devices/blockq/c/packages.yaml'))}`)]);
    const e = await runProbe({ lab: file, out: join(tmpdir(), 'no-probe'), scenarios: [], connect: { modules: [], localPwsh: '/nonexistent/pwsh' }, clock: realClock }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as Error).message).toMatch(/device blockq has no loopback client .* cannot probe host hv-a/);
    expect((e as Error).message).toMatch(/lab\.yaml:3/);
  });

  it('a blockq scenario is never a loopback job: blockq has no loopback client', async () => {
    const s = await loadScenarioFile('devices/blockq/scenarios/01-save-restore.yaml');
    expect(loopbackNotApplicable(s)).toBe('loopback: the blockq device has no loopback client (its module\'s control.loopbackChannels is 0)');
  });

  it('refuses a driversFile that is missing, or given beside drivers, naming the inventory\'s line (exit 2); a wrong one is named at its own line', async () => {
    const missing = await loadInventory(lab(['hosts:', host('hv-a', ', attach: vm-handle, driversFile: ./nope.yaml')]).file).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InputError);
    expect((missing as InputError).exitCode).toBe(2);
    expect((missing as Error).message).toMatch(/lab\.yaml:2.*hosts\[0\]\.driversFile.*packages file not found: .*nope\.yaml/s);
    const both = await loadInventory(lab(['hosts:', host('hv-a', `, attach: vm-handle, driversFile: ./p.yaml, drivers: { vsp: { files: 'C:\\x', binary: x.sys, installed: 'C:\\x.sys', install: x, uninstall: y, trace: { format: etw, provider: "{11111111-2222-3333-4444-555555555555}" } } }`)]).file).catch((e: unknown) => e);
    expect((both as Error).message).toMatch(/hosts\[0\]\.driversFile.*drivers or driversFile, not both/s);
    const { dir, file } = lab(['hosts:', host('hv-a', ', attach: vm-handle, driversFile: ./p.yaml')]);
    writeFileSync(join(dir, 'p.yaml'), 'vsp:\n  files: C:\\x\n  binary: x.sys\n  installed: C:\\x.sys\n  install: x\n  uninstall: y\n  trace: { format: etw, provider: nope }\n');
    const wrong = await loadInventory(file).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(InputError);
    expect((wrong as Error).message).toMatch(/p\.yaml:7.*trace\.provider/s);
  });
});
