import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { guestEndpoint } from '../../../src/lab/guest-ssh.ts';
import { loadTemplate, loadTemplates } from '../../../src/lab/template.ts';

const dir = 'test/fixtures/lab/template';

async function failure(name: string): Promise<InputError> {
  const error = await loadTemplate(join(dir, name)).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

describe('loadTemplate', () => {
  it('loads a Linux template with its cloud-init file and key reference', async () => {
    const t = await loadTemplate(join(dir, 'valid-linux.yaml'));
    expect(t).toMatchObject({
      name: 'valid-linux', generation: 2, memoryMB: 2048, processors: 2, secureBoot: false,
      guest: { os: 'linux', user: 'bench', sshPort: 22, credential: { kind: 'key', key: { kind: 'env', name: 'BENCH_GUEST_KEY' } } },
      provisioning: { kind: 'cloud-init', file: resolve(dir, 'files/user-data.yaml') },
    });
    expect(t.guest.driver).toEqual({
      files: resolve(dir), include: undefined, remoteDir: '/var/tmp/bench-driver', install: 'make && insmod my_driver.ko', uninstall: 'rmmod my_driver',
      sudo: true, binary: undefined, installTimeoutMs: 600_000, trace: { format: 'jsonl', path: '/sys/kernel/debug/my_driver/trace' },
    });
  });

  it('loads a Windows template with its unattend file', async () => {
    const t = await loadTemplate(join(dir, 'valid-windows.yaml'));
    expect(t.guest).toMatchObject({ os: 'windows', driver: { remoteDir: 'C:\\bench\\driver', trace: { path: 'C:\\bench\\guest-trace.jsonl' } }, credential: { key: { kind: 'file', path: resolve(dir, 'files/guest_key') } } });
    expect(t.provisioning).toEqual({ kind: 'unattend', file: resolve(dir, 'files/unattend.xml') });
  });

  const cases: Array<[file: string, line: number, field: string, says: RegExp]> = [
    ['secure-boot-gen1.yaml', 5, 'secureBoot', /needs a generation 2 VM/],
    // Bad driver package fields (driver-package.ts).
    ['driver-trace-path.yaml', 9, 'guest.driver.trace.path', /absolute path in the linux guest/],
    ['driver-etw-guest.yaml', 14, 'guest.driver.trace.format', /guest driver's trace must be jsonl/],
    ['driver-no-install.yaml', 10, 'guest.driver.install', /missing required field/],
    ['driver-files-missing.yaml', 10, 'guest.driver.files', /folder not found: .*no-such-folder/],
    ['driver-control-tool-linux.yaml', 9, 'guest.driver.controlTool', /Linux guest driver takes its control lines through its control file/],
    ['provisioning-file-missing.yaml', 14, 'provisioning.cloudInit', /file not found.*relative to the template/],
    ['unknown-key-memory.yaml', 3, 'memoryMb', /unknown key "memoryMb".*did you mean "memoryMB"/],
    ['odd-memory.yaml', 3, 'memoryMB', /multiple of 2/],
    ['linux-with-unattend.yaml', 14, 'provisioning.unattend', /provisioned with cloudInit/],
    ['inline-guest-password.yaml', 12, 'guest.credentials.password', /inline password is not allowed/],
    ['bad-generation.yaml', 2, 'generation', /must be 1 or 2/],
  ];
  it.each(cases)('%s: names line %i and field %s', async (file, line, field, says) => {
    const e = await failure(file);
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file: join(dir, file), line, field });
    expect(e.message).toMatch(says);
  });

  it('reports a misspelt required key once, as the unknown key', async () => {
    const e = await failure('unknown-key-memory.yaml');
    expect(e.message).not.toMatch(/missing required/);
  });

  it('never repeats an inline guest password', async () => {
    expect((await failure('inline-guest-password.yaml')).message).not.toContain('Pa55word');
  });
});

describe('the templates in vm-templates/', () => {
  it('load, and their provisioning files are well formed', async () => {
    const linux = await loadTemplate('vm-templates/ubuntu-2404.yaml');
    const windows = await loadTemplate('vm-templates/windows-2025.yaml');
    // The sample drivers are packages like any other: sources built in a Linux guest, a
    // staged package installed in a Windows one, each with its trace's place.
    expect(linux.guest.driver).toMatchObject({ include: ['guest-linux', 'common', 'trace-lib'], sudo: true, binary: 'guest-linux/vmbus_sample_guest.ko',
      trace: { format: 'jsonl', path: '/sys/kernel/debug/vmbus_sample_guest/trace', counters: '/sys/kernel/debug/vmbus_sample_guest/counters' } });
    expect(linux.guest.driver.install).toMatch(/make -C guest-linux\n.*\ninsmod guest-linux\/vmbus_sample_guest\.ko\n/s);
    expect(windows.guest.driver).toMatchObject({ binary: 'vmbus_sample_guest.sys', trace: { format: 'jsonl', collect: expect.stringMatching(/^sample-ctl guest trace /) } });
    const userData = readFileSync(linux.provisioning.file, 'utf8');
    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    const doc = parse(userData) as { users: Array<{ name: string; ssh_authorized_keys: string[] }>; ssh_pwauth: boolean };
    expect(doc.users[0]).toMatchObject({ name: linux.guest.user, ssh_authorized_keys: ['@@BENCH_GUEST_PUBLIC_KEY@@'] });
    expect(doc.ssh_pwauth).toBe(false);
    const unattend = readFileSync(windows.provisioning.file, 'utf8');
    expect(unattend).toContain('@@BENCH_GUEST_PUBLIC_KEY@@');
    expect(unattend).not.toMatch(/<Password>|<AdministratorPassword>/);
  });

  it.skipIf(!existsSync('/usr/bin/xmllint'))('unattend.xml is well-formed XML (xmllint)', () => {
    execFileSync('/usr/bin/xmllint', ['--noout', 'vm-templates/windows-2025/unattend.xml']);
  });
});

describe('loadTemplates', () => {
  it('loads every template of a folder', async () => {
    const all = await loadTemplates('vm-templates');
    expect(all.map((t) => t.name)).toEqual(['ubuntu-2404', 'windows-2025']);
  });

  it('refuses two templates with one name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-templates-'));
    try {
      const text = readFileSync(join('test/fixtures/lab/template', 'valid-linux.yaml'), 'utf8')
        .replace('files/user-data.yaml', resolve('test/fixtures/lab/template/files/user-data.yaml'));
      writeFileSync(join(dir, 'a.yaml'), `name: twin\n${text}`);
      writeFileSync(join(dir, 'b.yaml'), `name: twin\n${text}`);
      await expect(loadTemplates(dir)).rejects.toThrow(/b\.yaml name: template name "twin" is also used by .*a\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('guestEndpoint', () => {
  it('takes user, port and key from the template and refuses an unpinned guest', async () => {
    const t = await loadTemplate(join(dir, 'valid-linux.yaml'));
    const pin = { kind: 'fingerprint' as const, sha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
    expect(guestEndpoint(t, { name: 'vm-1', address: '10.0.0.5', hostKey: pin })).toEqual({
      name: 'vm-1', host: '10.0.0.5', port: 22, user: 'bench', credential: t.guest.credential, hostKey: pin,
    });
    expect(() => guestEndpoint(t, { name: 'vm-1', address: '10.0.0.5' })).toThrow(/no host key pin for guest vm-1/);
  });
});
