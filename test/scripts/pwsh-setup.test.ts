// scripts/test-deps.d/20-pwsh.sh on a machine where pwsh cannot be had (no pwsh on PATH or
// in ~/.dotnet/tools, no dotnet to install it with): under CI it fails the setup, elsewhere
// it says the lab PowerShell tests will be skipped.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = resolve(import.meta.dirname, '../../scripts/test-deps.d/20-pwsh.sh');
const home = mkdtempSync(join(tmpdir(), 'bench-no-pwsh-'));
const run = (ci: string) => spawnSync('/bin/bash', [script], { env: { HOME: home, PATH: join(home, 'no-such-dir'), CI: ci }, encoding: 'utf8' });

describe('20-pwsh.sh without any way to get pwsh', () => {
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('fails the setup when CI=true', () => {
    const r = run('true');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no dotnet SDK.*\n.*CI=true: pwsh is required/s);
  });

  it('lets a developer machine go on, saying the lab tests will be skipped', () => {
    const r = run('');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/lab PowerShell tests will be skipped/);
  });
});
