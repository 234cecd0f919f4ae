// Which PowerShell the lab tests run on: the real `pwsh` when it is installed, else the
// console host around the real PowerShell engine that scripts/test-deps.d/20-pwsh.sh
// builds when NuGet has no PowerShell tool. Tests name the one they used in their title,
// and are skipped with the reason when there is neither.
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

export interface PwshFound {
  path: string;
  /** `pwsh` for the PowerShell distribution, `bench-pwsh` for the engine host. */
  flavour: 'pwsh' | 'bench-pwsh';
}

const repo = resolve(import.meta.dirname, '../../..');

export function findPwsh(env: NodeJS.ProcessEnv = process.env): PwshFound | undefined {
  if (env.BENCH_PWSH && existsSync(env.BENCH_PWSH)) return { path: env.BENCH_PWSH, flavour: env.BENCH_PWSH.endsWith('bench-pwsh') ? 'bench-pwsh' : 'pwsh' };
  const dirs = [...(env.PATH ?? '').split(delimiter), join(env.HOME ?? '', '.dotnet', 'tools')];
  for (const d of dirs) {
    const p = join(d, 'pwsh');
    if (d && existsSync(p)) return { path: p, flavour: 'pwsh' };
  }
  const host = join(repo, 'test-artifacts', 'pwsh-host', 'bench-pwsh');
  if (existsSync(host)) return { path: host, flavour: 'bench-pwsh' };
  return undefined;
}

export const pwsh = findPwsh();
export const pwshSkipReason = pwsh ? undefined : 'no PowerShell: neither pwsh (PATH, ~/.dotnet/tools) nor test-artifacts/pwsh-host/bench-pwsh; run scripts/test-deps.d/20-pwsh.sh';
export const pwshLabel = pwsh ? `on ${pwsh.flavour}` : `(skipped: ${pwshSkipReason})`;
export const standinModule = join(repo, 'test', 'lab', 'standin', 'HyperVStandin', 'HyperVStandin.psd1');
