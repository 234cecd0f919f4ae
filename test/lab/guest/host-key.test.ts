import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { knownHostsFingerprints, sha256Fingerprint } from '../../../src/lab/guest/host-key.ts';

const blobA = Buffer.from('key-a-blob').toString('base64');
const blobB = Buffer.from('key-b-blob').toString('base64');
const fpA = sha256Fingerprint(Buffer.from('key-a-blob'));
const fpB = sha256Fingerprint(Buffer.from('key-b-blob'));

describe('sha256Fingerprint', () => {
  it('prints like ssh-keygen -l: SHA256 and unpadded base64', () => {
    const blob = Buffer.from('abc');
    expect(sha256Fingerprint(blob)).toBe(`SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`);
    expect(sha256Fingerprint(blob)).not.toMatch(/=$/);
  });
});

describe('knownHostsFingerprints', () => {
  it('uses the bare name for port 22 and [name]:port otherwise', () => {
    const text = `guest1 ssh-ed25519 ${blobA}\n[guest1]:2222 ssh-ed25519 ${blobB}\n`;
    expect(knownHostsFingerprints(text, 'guest1', 22)).toEqual([fpA]);
    expect(knownHostsFingerprints(text, 'guest1', 2222)).toEqual([fpB]);
    expect(knownHostsFingerprints(text, 'guest2', 22)).toEqual([]);
  });

  it('follows comma lists, wildcards and negations, and skips comments', () => {
    const text = `# lab guests\nvm-*,!vm-bad,10.0.0.? ssh-ed25519 ${blobA} comment here\n`;
    expect(knownHostsFingerprints(text, 'vm-1', 22)).toEqual([fpA]);
    expect(knownHostsFingerprints(text, '10.0.0.7', 22)).toEqual([fpA]);
    expect(knownHostsFingerprints(text, 'vm-bad', 22)).toEqual([]);
    expect(knownHostsFingerprints(text, '10.0.0.17', 22)).toEqual([]);
  });

  it('matches hashed names', () => {
    const salt = Buffer.from('0123456789abcdefghij');
    const hash = createHmac('sha1', salt).update('[h]:2200').digest('base64');
    const text = `|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${blobB}\n`;
    expect(knownHostsFingerprints(text, 'h', 2200)).toEqual([fpB]);
    expect(knownHostsFingerprints(text, 'h', 22)).toEqual([]);
  });

  it('never accepts a @revoked key and ignores @cert-authority lines', () => {
    const text = `h ssh-ed25519 ${blobA}\nh ssh-ed25519 ${blobB}\n@revoked * ssh-ed25519 ${blobA}\n@cert-authority h ssh-ed25519 ${blobA}\n`;
    expect(knownHostsFingerprints(text, 'h', 22)).toEqual([fpB]);
  });
});
