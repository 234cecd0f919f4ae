import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { REDACTED, Redactor, resolveSecret } from '../../../src/lab/secrets.ts';

const dir = mkdtempSync(join(tmpdir(), 'bench-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pem = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACBvZm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5AAAAmA==',
  '-----END OPENSSH PRIVATE KEY-----',
  '',
].join('\n');

describe('resolveSecret', () => {
  it('reads an environment variable and registers it for redaction before returning it', async () => {
    const r = new Redactor();
    const value = await resolveSecret({ kind: 'env', name: 'BENCH_T_PW' }, { env: { BENCH_T_PW: 's3cr3t-value' }, redactor: r });
    expect(value).toBe('s3cr3t-value');
    expect(r.redact('login failed for s3cr3t-value')).toBe(`login failed for ${REDACTED}`);
  });

  it('reads a key file relative to the inventory folder', async () => {
    writeFileSync(join(dir, 'id_test'), pem);
    const r = new Redactor();
    expect(await resolveSecret({ kind: 'file', path: 'id_test' }, { baseDir: dir, redactor: r })).toBe(pem);
    expect(r.redact(`dump:\n${pem}`)).toBe(`dump:\n${REDACTED}`);
  });

  it('is an InputError naming the variable, never a value, when the variable is unset', async () => {
    const e = await resolveSecret({ kind: 'env', name: 'BENCH_T_MISSING' }, { env: {}, where: { file: 'lab/x.yaml', line: 7, field: 'hosts[0].credentials.keyEnv' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).message).toMatch(/^lab\/x\.yaml:7 hosts\[0\]\.credentials\.keyEnv: environment variable BENCH_T_MISSING is not set/);
  });

  it('is an InputError naming the path when the key file is missing', async () => {
    const e = await resolveSecret({ kind: 'file', path: 'nope' }, { baseDir: dir }).catch((x: unknown) => x);
    expect((e as InputError).exitCode).toBe(2);
    expect((e as InputError).message).toContain(`${join(dir, 'nope')} (ENOENT)`);
  });
});

describe('Redactor', () => {
  it('scrubs the value, its base64 form, and long lines of a multi-line secret', () => {
    const r = new Redactor();
    r.add(pem);
    r.add('pa55:word');
    const line = pem.split('\n')[1]!;
    const log = `cmd --b64 ${Buffer.from('pa55:word').toString('base64')} echoed pa55:word and a piece: ${line}`;
    const out = r.redact(log);
    expect(out).not.toContain('pa55:word');
    expect(out).not.toContain(Buffer.from('pa55:word').toString('base64'));
    expect(out).not.toContain(line);
    expect(out).toContain('cmd --b64');
  });

  it('scrubs messages and stacks of an error and its cause', () => {
    const r = new Redactor();
    r.add('tok-123456');
    const e = new Error('outer tok-123456', { cause: new Error('inner tok-123456') });
    r.redactError(e);
    expect(e.message).toBe(`outer ${REDACTED}`);
    expect((e.cause as Error).message).toBe(`inner ${REDACTED}`);
    expect(e.stack).not.toContain('tok-123456');
  });

  it('ignores empty secrets instead of scrubbing everything', () => {
    const r = new Redactor();
    r.add('');
    expect(r.redact('abc')).toBe('abc');
    expect(r.size).toBe(0);
  });
});
