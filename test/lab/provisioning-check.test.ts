// Provisioning files are checked when a template is loaded (issue 16): an empty or garbage
// user-data or unattend.xml passed `bench run --dry-run` and failed only at first boot.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkProvisioningFile } from '../../src/lab/provisioning-check.ts';

const dir = mkdtempSync(join(tmpdir(), 'provisioning-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('checkProvisioningFile', () => {
  it('accepts the templates shipped in vm-templates/', () => {
    checkProvisioningFile('cloud-init', 'vm-templates/ubuntu-2404/user-data.yaml');
    checkProvisioningFile('unattend', 'vm-templates/windows-2025/unattend.xml');
  });

  it.each([
    ['cloud-init', 'empty', '', ':1: the cloud-init user-data file is empty'],
    ['cloud-init', 'garbage', '\u0000\u0001binary junk', ':1: cloud-init user-data must start with "#cloud-config"'],
    ['cloud-init', 'a shell script', '#!/bin/sh\necho hi\n', ':1: cloud-init user-data must start with "#cloud-config"'],
    ['cloud-init', 'bad YAML', '#cloud-config\nusers: [\n', ':3'],
    ['cloud-init', 'a list, not a mapping', '#cloud-config\n- a\n- b\n', ':2: cloud-init user-data must be a YAML mapping'],
    ['unattend', 'empty', '  \n', ':1: the unattend.xml file is empty'],
    ['unattend', 'garbage', 'not xml at all', ':1: unattend.xml is not XML'],
    ['unattend', 'another root', '<?xml version="1.0"?>\n<settings/>\n', ':2: unattend.xml\'s root element is <settings>'],
    ['unattend', 'no namespace', '<unattend>\n</unattend>\n', ':1: <unattend> must declare xmlns'],
    ['unattend', 'cut short', '<unattend xmlns="urn:schemas-microsoft-com:unattend">\n  <settings pass="specialize">\n', ':3: unattend.xml does not end with </unattend>'],
  ] as const)('refuses a %s file that is %s', (kind, name, text, want) => {
    const p = file(`${kind}-${name.replace(/\W/g, '_')}`, text);
    expect(() => checkProvisioningFile(kind, p)).toThrow(`${p}${want}`);
  });

  it('bench run --dry-run refuses a template whose user-data is empty, exit 2 naming the file', async () => {
    const lab = mkdtempSync(join(tmpdir(), 'provisioning-run-'));
    mkdirSync(join(lab, 'files'));
    copyFileSync('test/fixtures/lab/template/valid-linux.yaml', join(lab, 'linux.yaml'));
    writeFileSync(join(lab, 'files', 'user-data.yaml'), '');
    const inventory = readFileSync('test/fixtures/lab/inventory/valid.yaml', 'utf8');
    writeFileSync(join(lab, 'lab.yaml'), inventory.replace(/keyFile: keys\/hosts_ed25519/, 'keyEnv: BENCH_HV_A_KEY').replace(/knownHosts: known_hosts/, 'fingerprint: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"'));
    const r = await execa('node', ['bin/bench.js', 'run', '--lab', join(lab, 'lab.yaml'), '--template', join(lab, 'linux.yaml'), '--dry-run'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${join(lab, 'files', 'user-data.yaml')}:1: the cloud-init user-data file is empty`);
  });
});
