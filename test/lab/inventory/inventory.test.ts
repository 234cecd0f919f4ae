import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { loadInventory } from '../../../src/lab/inventory.ts';

const dir = 'test/fixtures/lab/inventory';

async function failure(name: string): Promise<InputError> {
  const error = await loadInventory(join(dir, name)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

describe('loadInventory', () => {
  it('resolves defaults, references and pins of a valid inventory', async () => {
    const inv = await loadInventory(join(dir, 'valid.yaml'));
    expect(inv.name).toBe('fixture-lab');
    const [a, b, local] = inv.hosts;
    expect(a).toMatchObject({
      name: 'hv-a',
      vmRoot: 'D:\\bench\\vms',
      switchName: 'bench-internal',
      migrationPartner: 'hv-b',
      capacity: { vmSlots: 4, memoryMB: 16384 },
      transport: {
        kind: 'ssh', address: '127.0.0.1', port: 2222, user: 'bench-admin',
        credential: { kind: 'key', key: { kind: 'file', path: resolve(dir, 'keys/hosts_ed25519') } },
        hostKey: { kind: 'fingerprint', sha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      },
      source: { line: 10 },
    });
    expect(b?.transport).toMatchObject({
      port: 22,
      credential: { kind: 'key', key: { kind: 'env', name: 'BENCH_HV_B_KEY' }, passphrase: { kind: 'env', name: 'BENCH_HV_B_PASSPHRASE' } },
      hostKey: { kind: 'known-hosts', path: resolve(dir, 'known_hosts') },
    });
    expect(b?.build).toBe('26100.2314');
    expect(local).toMatchObject({ name: 'local-host', transport: { kind: 'local' }, capacity: { vmSlots: 1, memoryMB: 4096 } });
  });

  it('loads the example lab shipped in lab/', async () => {
    const inv = await loadInventory('lab/example.yaml');
    expect(inv.hosts.map((h) => h.name)).toEqual(['hv-a', 'hv-b', 'workstation']);
    // Windows PowerShell 5.1 unless a host names pwsh: it is what every Hyper-V host has.
    expect(inv.hosts.map((h) => h.shell)).toEqual(['powershell', 'pwsh', 'powershell']);
  });

  // Each fixture holds one kind of mistake: the error must name the line and field path
  // where the user has to act, and say what to do.
  const cases: Array<[file: string, line: number, field: string, says: RegExp]> = [
    ['unknown-key-typo.yaml', 3, 'hosts[0].adress', /unknown key "adress".*did you mean "address"/],
    ['inline-password.yaml', 10, 'hosts[0].credentials.password', /inline password is not allowed.*passwordEnv/],
    ['inline-private-key.yaml', 11, 'hosts[0].credentials.keyFile', /key pasted inline.*keyFile: PATH/],
    ['missing-host-key.yaml', 11, 'hosts[1]', /missing hostKey.*unpinned hosts are refused/],
    ['bad-fingerprint.yaml', 11, 'hosts[0].hostKey.fingerprint', /SHA256 fingerprint/],
    ['duplicate-host-name.yaml', 11, 'hosts[1].name', /"hv-a" is already used by hosts\[0\]/],
    ['unknown-migration-partner.yaml', 11, 'hosts[0].migrationPartner', /no host named "hv-c".*known hosts: hv-a, hv-b/],
    ['wrong-type-capacity.yaml', 11, 'hosts[0].capacity.vmSlots', /expected a number, got a string/],
    ['two-credentials.yaml', 11, 'hosts[0].credentials', /exactly one of keyFile, keyEnv, passwordEnv/],
    ['local-with-address.yaml', 8, 'hosts[0].address', /not used with transport local/],
    ['posix-vm-root.yaml', 10, 'hosts[0].vmRoot', /absolute Windows path/],
    ['no-hosts.yaml', 2, 'hosts', /at least one host/],
    ['missing-vm-root.yaml', 2, 'hosts[0]', /missing vmRoot/],
    ['bad-shell.yaml', 10, 'hosts[0].shell', /must be pwsh \(PowerShell 7\) or powershell \(Windows PowerShell 5\.1\)/],
  ];
  it.each(cases)('%s: names line %i and field %s', async (file, line, field, says) => {
    const e = await failure(file);
    expect(e.exitCode).toBe(2);
    expect(e.location).toMatchObject({ file: join(dir, file), line, field });
    expect(e.message).toMatch(says);
    expect(e.message.startsWith(`${join(dir, file)}:${line} ${field}: `)).toBe(true);
  });

  it('says so when the file is empty', async () => {
    const e = await failure('empty.yaml');
    expect(e.message).toMatch(/^test\/fixtures\/lab\/inventory\/empty\.yaml:1: the file is empty \(see lab\/example\.yaml/);
  });

  it('reports YAML syntax errors and duplicate keys with their line', async () => {
    expect((await failure('yaml-syntax-error.yaml')).message).toMatch(/YAML syntax error/);
    const dup = await failure('duplicate-yaml-key.yaml');
    expect(dup.location.line).toBe(4);
    expect(dup.message).toMatch(/unique/);
  });

  it('never repeats an inline secret in its error', async () => {
    const password = await failure('inline-password.yaml');
    expect(password.message).not.toContain('Hunter2');
    const key = await failure('inline-private-key.yaml');
    const keyBody = readFileSync(join(dir, 'inline-private-key.yaml'), 'utf8').split('\n')[12]!.trim();
    expect(key.message).not.toContain(keyBody);
    expect(key.message).not.toContain('BEGIN OPENSSH');
  });

  it('lists every problem in the file, the first one located and the rest below it', async () => {
    const e = await failure('several-problems.yaml');
    expect(e.location).toMatchObject({ line: 4, field: 'hosts[0].swtich' });
    const lines = e.message.split('\n');
    expect(lines[0]).toMatch(/unknown key "swtich".*did you mean "switch"/);
    expect(lines.slice(1).join('\n')).toMatch(/also .*several-problems\.yaml:6 hosts\[0\]\.capacity\.vmSlots: .*>=1/);
  });

  it('is an InputError naming the file when the file cannot be read', async () => {
    const e = await failure('does-not-exist.yaml');
    expect(e.message).toMatch(/does-not-exist\.yaml.*no such file or directory/);
  });
});
