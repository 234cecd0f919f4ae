// Attach modes in the inventory and the templates (src/lab/attach.ts): a host says which
// modes it offers; a combination that cannot work is refused at load with file, line and
// field (exit 2), never found out by failing jobs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDevice, SAMPLE_DEVICE } from '../../../src/device-api/load.ts';
import { InputError } from '../../../src/errors.ts';
import { loopbackNotApplicable, loopbackOp } from '../../../src/lab/attach.ts';
import { inventoryFromSource } from '../../../src/lab/inventory.ts';
import { templateFromSource } from '../../../src/lab/template.ts';
import { parseYamlText } from '../../../src/lab/yaml-input.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import type { Scenario, Step } from '../../../src/scenario/model.ts';
import { MemorySink } from '../../../src/trace/sink.ts';

const host = (extra: string) => `version: 1
name: t
defaults: { transport: local, vmRoot: 'D:\\vms', switch: s, capacity: { vmSlots: 1, memoryMB: 4096 } }
hosts:
  - name: a
${extra}`;

function refused(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('not refused');
}

describe('inventory attach', () => {
  it('defaults to loopback, and takes one mode or a list in a fixed order', () => {
    expect(inventoryFromSource(parseYamlText(host(''), 'lab.yaml')).hosts[0]).toMatchObject({ attach: ['loopback'], handleBroker: undefined });
    const both = inventoryFromSource(parseYamlText(host("    attach: [vm-handle, loopback]\n    handleBroker: { command: 'C:\\b\\broker.exe', args: [-Quiet] }\n"), 'lab.yaml')).hosts[0]!;
    expect(both.attach).toEqual(['loopback', 'vm-handle']);
    expect(both.handleBroker).toEqual({ command: 'C:\\b\\broker.exe', args: ['-Quiet'] });
  });

  it('refuses vm-handle without a broker, naming file, line and field', () => {
    const e = refused(() => inventoryFromSource(parseYamlText(host('    attach: vm-handle\n'), 'lab.yaml')));
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file: 'lab.yaml', line: 6, field: 'hosts[0].attach' });
    expect(e.message).toMatch(/vm-handle needs a handleBroker/);
  });

  it('refuses a broker on a host that never attaches to a VM, and an unknown mode', () => {
    const e = refused(() => inventoryFromSource(parseYamlText(host("    handleBroker: { command: x.exe }\n"), 'lab.yaml')));
    expect(e.location).toMatchObject({ line: 6, field: 'hosts[0].handleBroker' });
    const bad = refused(() => inventoryFromSource(parseYamlText(host('    attach: vmbus\n'), 'lab.yaml')));
    expect(bad.location).toMatchObject({ line: 6, field: 'hosts[0].attach' });
  });
});

describe('template attach', () => {
  const template = (extra: string) => `version: 1
parentDisk: 'D:\\p\\u.vhdx'
generation: 2
memoryMB: 2048
processors: 2
secureBoot: false
guest: { os: linux, osName: U, driver: { files: ., install: make, uninstall: rmmod d, trace: { format: jsonl, path: /sys/kernel/debug/d/trace } }, user: b, credentials: { keyEnv: K } }
provisioning: { cloudInit: ../../fixtures/lab/template/files/user-data.yaml }
${extra}`;
  it('refuses pairing a VM guest driver with a loopback offer', () => {
    const e = refused(() => templateFromSource(parseYamlText(template('attach: loopback\n'), 'test/lab/inventory/t.yaml')));
    expect(e.location).toMatchObject({ file: 'test/lab/inventory/t.yaml', line: 9, field: 'attach' });
    expect(e.message).toMatch(/cannot be the peer of a loopback offer/);
    expect(templateFromSource(parseYamlText(template('attach: vm-handle\n'), 'test/lab/inventory/t.yaml')).name).toBe('t');
  });
});

describe('loopback step mapping', () => {
  const base: Omit<Scenario, 'steps'> = { name: 's', channels: [{ id: 0, g2hPages: 4, h2gPages: 4, quota: 0 }], saveBufferSize: 4096, host: 'h', choices: {} };
  it('maps save, restore, checkpoint, pause and resume to channel operations and says why the VM-only steps are not applicable', () => {
    expect(loopbackOp({ op: 'save' })).toEqual({ kind: 'save' });
    expect(loopbackOp({ op: 'restore' })).toEqual({ kind: 'restore' });
    expect(loopbackOp({ op: 'checkpoint', name: 'c' })).toEqual({ kind: 'save-continue' });
    expect(loopbackOp({ op: 'pause' })).toEqual({ kind: 'pause' });
    expect(loopbackOp({ op: 'resume' })).toEqual({ kind: 'resume' });
    for (const st of [{ op: 'migrate', to: 'x' }, { op: 'apply-checkpoint', name: 'c' }, { op: 'guest-close', channel: 0 }] as Step[]) expect(loopbackOp(st).kind).toBe('not-applicable');
    expect(loopbackNotApplicable({ ...base, steps: [{ op: 'save' }, { op: 'restore' }] })).toBeUndefined();
    expect(loopbackNotApplicable({ ...base, steps: [{ op: 'save' }, { op: 'restore' }, { op: 'migrate', to: 'x' }] })).toMatch(/^loopback: step 3 "migrate"/);
  });

  it('plans out a loopback job whose channel sets forceNewChannel, which the emulator\'s loopback topology refuses too', () => {
    const s = { ...base, channels: [{ ...base.channels[0]!, forceNewChannel: true }], steps: [{ op: 'save' }, { op: 'restore' }] } as Scenario;
    expect(loopbackNotApplicable(s)).toMatch(/^loopback: forceNewChannel/);
    expect(() => executeScenario({ ...s, topology: 'loopback' }, { seed: 1, sink: new MemorySink() })).toThrow(/topology: loopback cannot run forceNewChannel/);
  });

  it('plans out a loopback job of more channels than the device\'s client serves: the sample\'s has one control device', async () => {
    await loadDevice(SAMPLE_DEVICE);
    const two = { ...base, channels: [base.channels[0]!, { ...base.channels[0]!, id: 1 }], steps: [{ op: 'save' }, { op: 'restore' }] } as Scenario;
    expect(loopbackNotApplicable(two)).toMatch(/^loopback: 2 channels; the sample device's loopback client serves 1 \(its module's control\.loopbackChannels\)/);
    // A device whose client serves any number of channels (no loopbackChannels) runs it.
    const dir = mkdtempSync(join(tmpdir(), 'attach-device-'));
    const any = join(dir, 'any.ts');
    writeFileSync(any, `import sample from ${JSON.stringify(resolve('devices/sample/device.ts'))};\nexport default { ...sample, name: 'many', control: { ...sample.control, loopbackChannels: undefined } };\n`);
    await loadDevice(any);
    expect(loopbackNotApplicable({ ...two, device: any })).toBeUndefined();
  });

  it('plans out a host send into paused or saved channels (the VSP cannot send there), but not one after the resume', () => {
    const send: Step = { op: 'host-send', channel: 0, count: 1, size: 64, hold: 0 };
    expect(loopbackNotApplicable({ ...base, steps: [{ op: 'pause' }, send, { op: 'resume' }] })).toMatch(/^loopback: step 2 "host-send" sends from the host while the channels are paused/);
    expect(loopbackNotApplicable({ ...base, steps: [{ op: 'save' }, { op: 'notify', channel: 0, dir: 'h2g', count: 1, size: 64 }, { op: 'restore' }] })).toMatch(/step 2 "notify" .* saved/);
    // The client is never paused: its sends wait in its ring.
    expect(loopbackNotApplicable({ ...base, steps: [{ op: 'pause' }, { op: 'guest-send', channel: 0, count: 1, size: 64, mode: 'inline', hold: 0 }, { op: 'notify', channel: 0, dir: 'g2h', count: 1, size: 64 }, { op: 'resume' }, send] })).toBeUndefined();
  });
});
