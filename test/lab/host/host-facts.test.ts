// Host facts read from the host (src/lab/host-facts.ts): the build with its revision, file
// versions cut to their numbers, a label that no longer matches said out loud, and what a
// Move-VM started over SSH still lacks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildMismatch, fileVersionOf, migrationFindings, osBuildOf } from '../../../src/lab/host-facts.ts';

describe('host facts', () => {
  it('reads the build and its update revision, and file versions', () => {
    expect(osBuildOf('26100', 2314)).toBe('26100.2314');
    expect(osBuildOf('26100', '')).toBe('26100');
    expect(osBuildOf('', 5)).toBeUndefined();
    expect(osBuildOf(undefined, undefined)).toBeUndefined();
    expect(fileVersionOf('10.0.26100.2314 (WinBuild.160101.0800)')).toBe('10.0.26100.2314');
    expect(fileVersionOf('garbage')).toBeUndefined();
    expect(fileVersionOf(null)).toBeUndefined();
  });

  it('warns when the inventory label is not the build read, at a dot boundary only', () => {
    const facts = { osBuild: '26100.2314', hypervVersion: undefined, kmclVersion: undefined };
    expect(buildMismatch('hv-a', '26100', facts)).toBeUndefined();
    expect(buildMismatch('hv-a', '26100.2314', facts)).toBeUndefined();
    expect(buildMismatch('hv-a', '2610', facts)).toMatch(/inventory says build 2610, the host runs 26100\.2314/);
    expect(buildMismatch('hv-a', '26100.2033', facts)).toMatch(/hv-a/);
    expect(buildMismatch('hv-a', undefined, facts)).toBeUndefined();
    // Invariant: a label built from the read build's leading parts never warns.
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 99999 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 4 }), (parts, k) => {
      const build = parts.join('.');
      return buildMismatch('h', parts.slice(0, k).join('.'), { osBuild: build, hypervVersion: undefined, kmclVersion: undefined }) === undefined;
    }));
  });

  it('says what a Move-VM over SSH lacks, and always names constrained delegation', () => {
    const ok = migrationFindings({ enabled: true, authentication: 'Kerberos', useAnyNetwork: false, networks: ['10.20.0.0/24'] });
    expect(ok.missing).toEqual([]);
    expect(ok.note).toMatch(/constrained delegation/);
    const bad = migrationFindings({ enabled: false, authentication: 0, useAnyNetwork: false, networks: [] });
    expect(bad.missing).toHaveLength(3);
    expect(bad.missing.join(' ')).toMatch(/Enable-VMMigration.*CredSSP.*Kerberos.*Add-VMMigrationNetwork/);
  });
});
