// Key bytes never leave through ssh2's own messages (issue 16). ssh2's key parser quotes
// bytes it decoded from a malformed key ("Unsupported OpenSSH key magic: " and 15 of
// them); those are neither the key's text nor its base64, so only recognising the
// message helps. Each malformed key below goes through the real ssh2 parser first, to
// show the message does quote key bytes, then through the bench.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { InputError } from '../../src/errors.ts';
import { checkPrivateKey, Redactor } from '../../src/lab/secrets.ts';

const dir = mkdtempSync(join(tmpdir(), 'key-bytes-'));

function keygen(type: string, format: 'openssh' | 'pem'): string {
  const file = join(dir, `${type}-${format}-${Math.random().toString(36).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file, ...(format === 'pem' ? ['-m', 'PEM'] : [])]);
  return readFileSync(file, 'utf8');
}

/** The key with its base64 body changed by `edit` (decoded bytes in, bytes out). */
function withBody(pem: string, edit: (b: Buffer) => Buffer): string {
  const lines = pem.trim().split('\n');
  const body = Buffer.from(lines.slice(1, -1).join(''), 'base64');
  const b64 = edit(body).toString('base64').match(/.{1,70}/g)!.join('\n');
  return `${lines[0]}\n${b64}\n${lines.at(-1)}\n`;
}

/** Every occurrence of `from` (in the public and the private part) becomes `to`. */
const replaceAscii = (from: string, to: string) => (b: Buffer): Buffer => {
  const out = Buffer.from(b);
  let n = 0;
  for (let at = out.indexOf(from); at >= 0; at = out.indexOf(from, at + 1), n++) out.write(to, at, 'latin1');
  expect(n).toBeGreaterThan(0);
  return out;
};

/** Malformed keys of each type, as ssh2 reports them. */
const CASES: Array<[string, () => string]> = [
  // The body starts 52 bytes in: the "magic" ssh2 quotes is key material.
  ...['ed25519', 'rsa', 'ecdsa'].map((t): [string, () => string] => [`${t} (OpenSSH) with its first line lost`, () => withBody(keygen(t, 'openssh'), (b) => b.subarray(52))]),
  ['ed25519 (OpenSSH) with an unknown key type', () => withBody(keygen('ed25519', 'openssh'), replaceAscii('ssh-ed25519', 'ssh-ed25518'))],
  ['rsa (OpenSSH) with an unknown cipher', () => withBody(keygen('rsa', 'openssh'), replaceAscii('none', 'nona'))],
  // An EC key (PEM) whose curve OID is not one ssh2 knows: the last OID byte changed.
  ['ecdsa (PEM) with an unknown curve', () => withBody(keygen('ecdsa', 'pem'), (b) => {
    const oid = Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    const at = b.indexOf(oid);
    expect(at).toBeGreaterThanOrEqual(0);
    const out = Buffer.from(b);
    out[at + oid.length - 1] = 0x09;
    return out;
  })],
];

/** What ssh2 quotes after the colon (trimmed; empty when it quotes nothing). */
function quoted(key: string): { message: string; bytes: string } {
  const r = ssh2.utils.parseKey(key);
  expect(r).toBeInstanceOf(Error);
  const message = (r as Error).message;
  return { message, bytes: message.slice(message.indexOf(':') + 1).trim() };
}

describe('key bytes in ssh2 messages', () => {
  it.each(CASES)('%s: ssh2 quotes it, the bench does not', (_name, make) => {
    const key = make();
    const { message, bytes } = quoted(key);
    expect(message).toMatch(/^Unsupported /);
    expect(bytes.length).toBeGreaterThan(0);
    // The redactor, even knowing nothing of this key, drops the quoted part.
    expect(new Redactor().redact(`job failed: Cannot parse privateKey: ${message} (after 3 ms)`)).not.toContain(bytes);
    // Checking the key before connecting refuses it as bad input, without the bytes.
    let err: unknown;
    try {
      checkPrivateKey(key, undefined, { file: 'lab.yaml', line: 3, field: 'hosts[a].credentials' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toContain('the private key cannot be used: Unsupported');
    expect((err as InputError).message).not.toContain(bytes);
  });

  it('bench lab check with such a key file exits 2 and prints none of its bytes', async () => {
    const key = CASES[0]![1]();
    const { bytes } = quoted(key);
    const lab = mkdtempSync(join(tmpdir(), 'key-bytes-lab-'));
    writeFileSync(join(lab, 'bad_key'), key);
    writeFileSync(join(lab, 'lab.yaml'), [
      'version: 1', 'name: keylab', 'defaults:', '  user: bench', '  credentials: { keyFile: bad_key }', '  vmRoot: D:\\bench\\vms', '  switch: s', '  capacity: { vmSlots: 1, memoryMB: 1024 }',
      'hosts:', '  - name: hv-a', '    address: 127.0.0.1', '    port: 1', '    hostKey: { fingerprint: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }', '',
    ].join('\n'));
    const r = await execa('node', ['bin/bench.js', 'lab', 'check', '--lab', join(lab, 'lab.yaml')], { reject: false, timeout: 60_000 });
    expect(`${r.stdout}\n${r.stderr}`).not.toContain(bytes);
    expect(`${r.stdout}\n${r.stderr}`).toContain('the private key cannot be used');
    expect(r.exitCode).toBe(2);
  });
});
