// Driver packages (src/lab/driver-package.ts) as a lab inventory describes them: the
// sample's own (lab/drivers/packages.yaml) load like any author's, an inventory's
// `drivers` reach its hosts, and every bad field is an exit 2 naming file, line and field.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { DEFAULT_HOST_DRIVERS_FILE, loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { inventoryFromSource } from '../../../src/lab/inventory.ts';
import { parseYamlText } from '../../../src/lab/yaml-input.ts';

const FILE = 'lab/test-inventory.yaml';
/** A one-host local inventory whose defaults carry `drivers` (the text after "drivers:"). */
const inventory = (drivers: string, attach = 'loopback') => `version: 1
defaults:
  vmRoot: D:\\bench\\vms
  switch: bench
  capacity: { vmSlots: 2, memoryMB: 8192 }
  attach: ${attach}
  drivers:
${drivers}
hosts:
  - name: hv-a
    transport: local
`;
const VSP = `    vsp:
      files: D:\\drivers\\my-vsp
      binary: bin/my_vsp.sys
      installed: C:\\Windows\\System32\\drivers\\my_vsp.sys
      install: pnputil /add-driver "$PackageDir\\my_vsp.inf" /install
      uninstall: pnputil /delete-driver my_vsp.inf /uninstall
      trace: { format: etw, provider: "{11111111-2222-3333-4444-555555555555}" }
`;
const CLIENT = VSP.replace('vsp:', 'client:').replaceAll('my_vsp', 'my_client').replace('my-vsp', 'my-client');

function refused(text: string): InputError {
  try {
    inventoryFromSource(parseYamlText(text, FILE));
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('accepted');
}

describe('driver packages', () => {
  it('the sample drivers are described in lab/drivers/packages.yaml like any other', () => {
    const { vsp, client } = loadHostDrivers();
    expect(DEFAULT_HOST_DRIVERS_FILE).toMatch(/lab\/drivers\/packages\.yaml$/);
    expect(vsp).toMatchObject({ name: 'vsp', files: 'C:\\bench\\drivers\\vsp', sys: 'C:\\bench\\drivers\\vsp\\vmbus_sample_vsp.sys',
      installed: 'C:\\Windows\\System32\\drivers\\vmbus_sample_vsp.sys', trace: { format: 'etw', provider: '{dd84f5b2-2614-4623-b28a-6b85d3a4202c}' } });
    expect(vsp.install).toMatch(/^pnputil \/add-driver "\$PackageDir\\vmbus_sample_vsp\.inf" \/install\n/);
    expect(client).toMatchObject({ name: 'client', sys: 'C:\\bench\\drivers\\guest-windows\\vmbus_sample_guest.sys', trace: { format: 'jsonl' } });
  });

  it('an inventory\'s packages reach its hosts, the binary resolved inside the package folder', () => {
    const inv = inventoryFromSource(parseYamlText(inventory(VSP + CLIENT), FILE));
    expect(inv.hosts[0]!.drivers).toMatchObject({
      vsp: { name: 'vsp', files: 'D:\\drivers\\my-vsp', sys: 'D:\\drivers\\my-vsp\\bin\\my_vsp.sys', installTimeoutMs: 300_000 },
      client: { name: 'client', sys: 'D:\\drivers\\my-client\\bin\\my_client.sys' },
    });
    // A host without vm-handle or loopback clients needs no client package.
    expect(inventoryFromSource(parseYamlText(inventory(VSP, 'vm-handle\n  handleBroker: { command: C:\\b.exe }'), FILE)).hosts[0]!.drivers?.client).toBeUndefined();
  });

  const cases: Array<[what: string, text: string, line: number, field: string, says: RegExp]> = [
    ['an empty install command', inventory(VSP.replace(/install: .*/, "install: '  '") + CLIENT), 12, 'defaults.drivers.vsp.install', /must not be empty/],
    ['a binary outside the package', inventory(VSP.replace('bin/my_vsp.sys', '../other.sys') + CLIENT), 10, 'defaults.drivers.vsp.binary', /inside the package folder/],
    ['a relative package folder', inventory(VSP.replace('D:\\drivers\\my-vsp', 'drivers/my-vsp') + CLIENT), 9, 'defaults.drivers.vsp.files', /absolute Windows path/],
    ['an unknown trace format', inventory(VSP.replace('format: etw', 'format: text') + CLIENT), 14, 'defaults.drivers.vsp.trace.format', /jsonl .* or etw/],
    ['a provider that is no GUID', inventory(VSP.replace('{11111111-2222-3333-4444-555555555555}', 'MyProvider') + CLIENT), 14, 'defaults.drivers.vsp.trace.provider', /provider GUID/],
    ['a loopback host without a client package', inventory(VSP), 8, 'defaults.drivers', /offers loopback, so it runs the client driver too/],
    ['a misspelt key', inventory(VSP.replace('uninstall:', 'uninstal:') + CLIENT), 13, 'defaults.drivers.vsp.uninstal', /did you mean "uninstall"/],
  ];
  it.each(cases)('refuses %s with file, line and field (exit 2)', (_what, text, line, field, says) => {
    const e = refused(text);
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file: FILE, line, field });
    expect(e.message).toMatch(says);
  });
});
